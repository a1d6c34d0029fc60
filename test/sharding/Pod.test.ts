/**
 * `Pod` by itself on the memory store, its time driven by the test: when a run is told its lease
 * ran out by the pod's own clock (`mayWrite`, asked before each write and whenever a fiber of a
 * run resumes), the pod stops every run at once, without waiting for its watchdog (which a
 * renewal succeeding in between would keep from acting); once renewed, it takes its shards again,
 * so their executions are resumed rather than left with their runs stopped. A pod that joins again
 * gives up its old registration (which frees its shards for others) only once its runs ended.
 */
import { describe, expect, it } from "@effect/vitest"
import { Clock, Deferred, Effect } from "effect"
import { TestClock } from "effect/testing"
import { MemoryJournal } from "../../src/index.ts"
import * as Pod from "../../src/sharding/Pod.ts"

const SHARDS = 4

/**
 * The test's clock, plus a jump that no sleeper sees: the pod finds time gone by, as after a
 * stall, while its watchdog still sleeps.
 */
const jumpingClock = Effect.map(Clock.Clock, (test) => {
  const jump = { millis: 0 }
  const shifted = () => BigInt(jump.millis) * 1_000_000n
  const clock: Clock.Clock = {
    currentTimeMillisUnsafe: () => test.currentTimeMillisUnsafe() + jump.millis,
    currentTimeMillis: Effect.sync(() => test.currentTimeMillisUnsafe() + jump.millis),
    currentTimeNanosUnsafe: () => test.currentTimeNanosUnsafe() + shifted(),
    currentTimeNanos: Effect.sync(() => test.currentTimeNanosUnsafe() + shifted()),
    monotonicTimeNanosUnsafe: () => test.monotonicTimeNanosUnsafe() + shifted(),
    monotonicTimeNanos: Effect.sync(() => test.monotonicTimeNanosUnsafe() + shifted()),
    sleep: (duration) => test.sleep(duration)
  }
  return { clock, jump }
})

/** A pod of its own: 1 s lease, a round every 100 ms. */
const podSettings = Pod.settings({
  podId: "a",
  shardCount: SHARDS,
  leaseTtl: "1 second",
  ownershipInterval: "100 millis",
  network: false
})

/**
 * A pod on a memory cluster whose runs stop slowly (each shard's stop waits for `stopped`), whose
 * store stops listing it once `listed.now` is false (its session ended), on a jumping clock;
 * `acquired` records every shard it takes, as `shard@epoch`.
 */
const stallingPod = Effect.gen(function* () {
  const cluster = yield* MemoryJournal.makeCluster
  const { clock, jump } = yield* jumpingClock
  const stopped = yield* Deferred.make<void>()
  const stopping: Array<number> = []
  const acquired: Array<string> = []
  const listener: Pod.ShardListener = {
    acquired: (shard, epoch) => Effect.sync(() => void acquired.push(`${shard}@${epoch}`)),
    lost: (shard) =>
      Effect.andThen(
        Effect.sync(() => void stopping.push(shard)),
        Deferred.await(stopped)
      ),
    handOver: () => Effect.void
  }
  const listed = { now: true }
  const store = {
    ...cluster.shards,
    renew: (podId: string, ttl: number) =>
      listed.now ? cluster.shards.renew(podId, ttl) : Effect.succeed(false)
  }
  const withClock = Effect.provideService(Clock.Clock, clock)
  const pod = yield* Pod.make(store, yield* podSettings, listener).pipe(withClock)
  yield* pod.start.pipe(withClock)
  /** Waits (in real time) until every shard's stop has begun. */
  const allStopping = Effect.gen(function* () {
    while (stopping.length < SHARDS) yield* Effect.sleep("10 millis")
  }).pipe(Effect.timeout("5 seconds"), TestClock.withLive)
  return { cluster, pod, jump, stopped, acquired, listed, allStopping }
})

describe("Pod", () => {
  it.effect(
    "a run told its lease ran out makes the pod stop every run at once; renewed, it takes its shards again",
    () =>
      Effect.gen(function* () {
        const cluster = yield* MemoryJournal.makeCluster
        const { clock, jump } = yield* jumpingClock
        const acquired: Array<string> = []
        const lost: Array<number> = []
        const allLost = yield* Deferred.make<void>()
        const listener: Pod.ShardListener = {
          acquired: (shard, epoch) => Effect.sync(() => void acquired.push(`${shard}@${epoch}`)),
          lost: (shard) =>
            Effect.suspend(() => {
              lost.push(shard)
              return lost.length === SHARDS ? Deferred.succeed(allLost, undefined) : Effect.void
            }),
          handOver: () => Effect.void
        }
        const settings = yield* podSettings
        const withClock = Effect.provideService(Clock.Clock, clock)
        const pod = yield* Pod.make(cluster.shards, settings, listener).pipe(withClock)
        yield* pod.start.pipe(withClock)
        expect(acquired).toHaveLength(SHARDS)
        const [shard, epoch] = acquired[0]!.split("@").map(Number) as [number, number]
        expect(pod.mayWrite(shard, epoch)).toBe(true)

        // One round: the loops run, renew, and go back to sleep (the watchdog until 200 ms at most).
        yield* TestClock.adjust("100 millis")
        // 850 ms pass unseen: past the pod's own deadline (renewed at 100 ms: 900 ms), not the
        // store's (1.1 s).
        jump.millis = 850
        expect(pod.mayWrite(shard, epoch)).toBe(false)
        // No test time passes: the watchdog sleeps on. Only the pod reacting to the "no" stops the runs.
        yield* Deferred.await(allLost).pipe(Effect.timeout("5 seconds"), TestClock.withLive)
        expect(lost.sort()).toEqual(acquired.map((entry) => Number(entry.split("@")[0])).sort())

        // The store still lists the pod: the next renewal succeeds, and a round takes the shards again.
        for (let step = 0; step < 20 && acquired.length < 2 * SHARDS; step++)
          yield* TestClock.adjust("100 millis")
        expect(acquired.slice(SHARDS).sort()).toEqual(acquired.slice(0, SHARDS).sort())
        expect(pod.mayWrite(shard, epoch)).toBe(true)
      }).pipe(Effect.scoped)
  )

  it.effect(
    "a pod that joins again (the store no longer lists it) waits for the runs a lapse was still stopping before it gives up its old registration",
    () =>
      Effect.gen(function* () {
        const { cluster, pod, jump, stopped, listed, allStopping } = yield* stallingPod
        const registeredAt = pod.registration()
        const epochs = Effect.map(cluster.shards.shards, (shards) =>
          shards.map((s) => `${s.owner}@${s.epoch}`)
        )
        const before = yield* epochs
        yield* TestClock.adjust("100 millis")
        // 850 ms pass unseen: past the pod's own deadline (900 ms), not its lease (1.1 s). A run
        // told so makes the pod stop every run; their stops hang.
        jump.millis = 850
        const [shard, epoch] = [1, pod.epochOf(1) ?? 1]
        expect(pod.mayWrite(shard, epoch)).toBe(false)
        yield* allStopping
        // The next renewal hears it is no longer listed: it joins again, but its old runs have not
        // ended, and its lease (by its clock, until 1.1 s) still runs: it keeps its registration.
        listed.now = false
        yield* TestClock.adjust("100 millis")
        expect(pod.registration()).toBe(registeredAt)
        expect(yield* epochs).toEqual(before)
        // The runs end: now it joins again with a new registration.
        yield* Deferred.succeed(stopped, undefined)
        listed.now = true
        for (let step = 0; step < 20 && pod.registration() === registeredAt; step++)
          yield* TestClock.adjust("10 millis")
        expect(pod.registration()).not.toBe(registeredAt)
      }).pipe(Effect.scoped)
  )

  /**
   * A pod whose runs hang while they stop joins again (the store stopped listing it) and is given
   * its shards back at new epochs; `then` gets what was taken before and the shards given again.
   */
  const givenBackWhileStopping = <A>(
    then: (setup: {
      readonly first: ReadonlyArray<string>
      readonly again: ReadonlyArray<string>
      readonly stopped: Deferred.Deferred<void>
      readonly acquired: Array<string>
    }) => Effect.Effect<A>
  ) =>
    Effect.gen(function* () {
      const { cluster, pod, jump, stopped, acquired, listed, allStopping } = yield* stallingPod
      const registeredAt = pod.registration()
      const first = [...acquired]
      expect(first).toHaveLength(SHARDS)
      yield* TestClock.adjust("100 millis")
      // A stall past the pod's own deadline: its runs are told to stop, and their stops hang.
      jump.millis = 850
      expect(pod.mayWrite(1, pod.epochOf(1) ?? 1)).toBe(false)
      yield* allStopping
      // The store no longer lists it: it joins again once its old lease passed, the old runs
      // still stopping, and the store gives it the same shards at new epochs.
      listed.now = false
      yield* TestClock.adjust("100 millis")
      listed.now = true
      for (let step = 0; step < 300 && pod.registration() === registeredAt; step++)
        yield* TestClock.adjust("10 millis")
      expect(pod.registration()).not.toBe(registeredAt)
      const given = () =>
        Effect.map(cluster.shards.shardsOf("a"), (rows) => rows.map((row) => `${row.shard}@${row.epoch}`))
      for (let step = 0; step < 20 && (yield* given()).length < SHARDS; step++)
        yield* TestClock.adjust("100 millis")
      const again = yield* given()
      expect(again).toHaveLength(SHARDS)
      expect(again.filter((shard) => first.includes(shard))).toEqual([])
      // Given, but not taken: the runs of the earlier epochs have not ended (well within a TTL).
      for (let step = 0; step < 2; step++) yield* TestClock.adjust("100 millis")
      expect(acquired).toEqual(first)
      return yield* then({ first, again, stopped, acquired })
    }).pipe(Effect.scoped)

  it.effect("a shard given again at a new epoch is taken once the runs of its earlier epoch have ended", () =>
    givenBackWhileStopping(({ again, stopped, acquired }) =>
      Effect.gen(function* () {
        yield* Deferred.succeed(stopped, undefined)
        for (let step = 0; step < 3 && acquired.length < 2 * SHARDS; step++)
          yield* TestClock.adjust("100 millis")
        expect(acquired.slice(SHARDS).sort()).toEqual([...again].sort())
      })
    )
  )

  it.effect("runs of the earlier epoch that never end hold the shard one TTL at most", () =>
    givenBackWhileStopping(({ again, acquired }) =>
      Effect.gen(function* () {
        for (let step = 0; step < 20 && acquired.length < 2 * SHARDS; step++)
          yield* TestClock.adjust("100 millis")
        expect(acquired.slice(SHARDS).sort()).toEqual([...again].sort())
      })
    )
  )
})
