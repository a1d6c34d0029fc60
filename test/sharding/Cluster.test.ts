/**
 * Ownership in one process: several engines (pods) on one in-memory store with ownership
 * (`MemoryJournal.makeCluster`). Fast checks of the protocol — assignment, rebalancing, delivery
 * between pods, fencing, stopping by the pod's own clock, graceful handover. The same guarantees
 * with real processes, SIGKILL and real stores are in `test/cluster/`.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Duration, Effect, Exit, Fiber, Schema, Scope } from "effect"
import {
  Activity,
  ActivityContext,
  DurableExecutionJournal,
  MemoryJournal,
  PodTransport,
  ShardId,
  ShardStore,
  Workflow,
  WorkflowEngine
} from "../../src/index.ts"
import * as OffsetClock from "../support/OffsetClock.ts"

class Job extends Workflow.TaggedRequest<Job>()("Job", {
  payload: { id: Schema.String },
  success: Schema.String,
  failure: Schema.Never
}) {}

/** What every activity attempt saw: which pod ran it, at which epoch of which shard. */
interface Attempt {
  readonly executionId: string
  readonly attempt: number
  readonly podId: string
  readonly shard: number | null
  readonly epoch: number | null
}

type Cluster = MemoryJournal.MemoryCluster

const SHARDS = 16

const fastPod = {
  shardCount: SHARDS,
  leaseTtl: "2 seconds",
  ownershipInterval: "40 millis",
  deliveryPollInterval: "20 millis",
  timerPollInterval: "50 millis"
} as const

/** A workflow of one activity that logs its attempts and, for ids starting with "block", waits for `gate`. */
const jobs = (log: Array<Attempt>, podOf: () => string, gate?: Deferred.Deferred<void>) =>
  Workflow.make(
    Job,
    (request) => request.id,
    (request) =>
      Effect.gen(function* () {
        const done = yield* Effect.gen(function* () {
          const context = yield* ActivityContext.ActivityContext
          log.push({
            executionId: request.id,
            attempt: context.attempt,
            podId: podOf(),
            shard: context.fence?.shard ?? null,
            epoch: context.fence?.epoch ?? null
          })
          if (gate !== undefined && request.id.startsWith("block")) yield* Deferred.await(gate)
          return "done"
        }).pipe(Activity.make("work", Schema.String, Schema.Never))
        return `${request.id}:${done}`
      })
  )

/** Starts a pod on `cluster` in its own scope (closing it is a graceful shutdown). */
const startPod = (
  cluster: Cluster,
  podId: string,
  log: Array<Attempt>,
  options: WorkflowEngine.EngineOptions = {},
  gate?: Deferred.Deferred<void>,
  transport?: PodTransport.PodTransport["Service"]
) =>
  Effect.gen(function* () {
    const scope = yield* Scope.make()
    const make = WorkflowEngine.makeScoped(Workflow.union(jobs(log, () => podId, gate)), {
      ...fastPod,
      podId,
      ...options
    }).pipe(
      Effect.provideService(DurableExecutionJournal.DurableExecutionJournal, cluster.journal),
      Effect.provideService(ShardStore.ShardStore, cluster.shards),
      Scope.provide(scope)
    )
    const engine = yield* transport === undefined
      ? make
      : Effect.provideService(make, PodTransport.PodTransport, transport)
    return { engine, scope }
  })

/** Polls `check` until it holds (every 20 ms, at most `within`). */
const eventually = <E, R>(check: Effect.Effect<boolean, E, R>, within: Duration.Input = "5 seconds") =>
  Effect.gen(function* () {
    const deadline = Date.now() + Duration.toMillis(Duration.fromInputUnsafe(within))
    while (!(yield* check)) {
      if (Date.now() > deadline) return yield* Effect.die(new Error("condition not met in time"))
      yield* Effect.sleep("20 millis")
    }
  })

const ownedBy = (cluster: Cluster, podId: string) =>
  Effect.map(cluster.shards.shards, (shards) => shards.filter((shard) => shard.owner === podId).length)

describe("ownership in one process (memory store)", () => {
  it.live("a lone pod owns every shard at once, at epoch 1, and is the manager", () =>
    Effect.gen(function* () {
      const cluster = yield* MemoryJournal.makeCluster
      const { engine } = yield* startPod(cluster, "a", [])
      const shards = yield* engine.shards()
      expect(shards).toHaveLength(SHARDS)
      expect(shards.every((shard) => shard.owner === "a" && shard.epoch === 1)).toBe(true)
      const pods = yield* engine.pods()
      expect(pods.map((pod) => [pod.podId, pod.manager, pod.liveness, pod.shards.length])).toEqual([
        ["a", true, "live", SHARDS]
      ])
      expect(yield* engine.send(new Job({ id: "first" }))).toBe("first:done")
    })
  )

  it.live("a second pod gets half the shards; work sent to either pod runs once, in its shard's owner", () =>
    Effect.gen(function* () {
      const cluster = yield* MemoryJournal.makeCluster
      const log: Array<Attempt> = []
      const a = yield* startPod(cluster, "a", log, { maxHandoversPerRound: 2 })
      const b = yield* startPod(cluster, "b", log)
      // Bounded rounds: never more than 2 shards in flight, yet it converges to 8 / 8.
      let maxInFlight = 0
      yield* eventually(
        Effect.gen(function* () {
          const shards = yield* cluster.shards.shards
          maxInFlight = Math.max(maxInFlight, shards.filter((shard) => shard.nextOwner !== null).length)
          return (
            shards.filter((shard) => shard.owner === "b" && shard.nextOwner === null).length === SHARDS / 2
          )
        })
      )
      expect(maxInFlight).toBeLessThanOrEqual(2)
      expect(yield* ownedBy(cluster, "a")).toBe(SHARDS / 2)
      const ids = Array.from({ length: 40 }, (_, i) => `job-${i}`)
      const results = yield* Effect.forEach(
        ids,
        (id, i) => (i % 2 === 0 ? a : b).engine.send(new Job({ id })),
        { concurrency: "unbounded" }
      )
      expect(results).toEqual(ids.map((id) => `${id}:done`))
      const owners = new Map((yield* cluster.shards.shards).map((shard) => [shard.shard, shard.owner]))
      for (const id of ids) {
        const attempts = log.filter((attempt) => attempt.executionId === id)
        expect(attempts).toHaveLength(1)
        expect(attempts[0]!.podId).toBe(owners.get(attempts[0]!.shard!))
      }
      // Both pods ran work, and some sends were answered by the other pod.
      expect(new Set(log.map((attempt) => attempt.podId))).toEqual(new Set(["a", "b"]))
    })
  )

  it.live(
    "a rebalance lets attempts in progress finish before the shard changes hands: none runs twice",
    () =>
      Effect.gen(function* () {
        const cluster = yield* MemoryJournal.makeCluster
        const log: Array<Attempt> = []
        const slowJobs = (podId: string) =>
          Workflow.make(
            Job,
            (request) => request.id,
            (request) =>
              Effect.gen(function* () {
                const context = yield* ActivityContext.ActivityContext
                log.push({
                  executionId: request.id,
                  attempt: context.attempt,
                  podId,
                  shard: context.fence?.shard ?? null,
                  epoch: context.fence?.epoch ?? null
                })
                yield* Effect.sleep("300 millis")
                return `${request.id}:done`
              }).pipe(Activity.make("slow", Schema.String, Schema.Never))
          )
        const pod = (podId: string) =>
          WorkflowEngine.makeScoped(Workflow.union(slowJobs(podId)), { ...fastPod, podId }).pipe(
            Effect.provideService(DurableExecutionJournal.DurableExecutionJournal, cluster.journal),
            Effect.provideService(ShardStore.ShardStore, cluster.shards)
          )
        const a = yield* pod("a")
        const ids = Array.from({ length: 48 }, (_, i) => `slow-${i}`)
        const sent = yield* Effect.forkChild(
          Effect.forEach(ids, (id) => a.send(new Job({ id })), { concurrency: "unbounded" })
        )
        yield* eventually(Effect.sync(() => log.length === ids.length))
        // Every execution is in the middle of its attempt on "a" when "b" joins and takes half.
        yield* pod("b")
        yield* eventually(Effect.map(ownedBy(cluster, "b"), (n) => n === SHARDS / 2))
        expect((yield* Fiber.join(sent)).sort()).toEqual(ids.map((id) => `${id}:done`).sort())
        // Each attempt finished where it started and was recorded: nothing ran a second time.
        expect(log.map((attempt) => attempt.attempt)).toEqual(ids.map(() => 1))
        const owners = new Map((yield* cluster.shards.shards).map((shard) => [shard.shard, shard.owner]))
        const moved = log.filter((attempt) => owners.get(attempt.shard!) === "b")
        expect(moved.length).toBeGreaterThan(0)
        expect(moved.every((attempt) => attempt.podId === "a")).toBe(true)
      })
  )

  it.live("graceful shutdown hands every shard to the other pod without waiting for the TTL", () =>
    Effect.gen(function* () {
      const cluster = yield* MemoryJournal.makeCluster
      const log: Array<Attempt> = []
      const a = yield* startPod(cluster, "a", log, { leaseTtl: "60 seconds", ownershipInterval: "40 millis" })
      const b = yield* startPod(cluster, "b", log, { leaseTtl: "60 seconds", ownershipInterval: "40 millis" })
      yield* eventually(Effect.map(ownedBy(cluster, "b"), (n) => n === SHARDS / 2))
      const started = Date.now()
      yield* Scope.close(a.scope, Exit.void)
      yield* eventually(Effect.map(ownedBy(cluster, "b"), (n) => n === SHARDS))
      expect(Date.now() - started).toBeLessThan(5_000)
      expect((yield* cluster.shards.pods).map((pod) => pod.podId)).toEqual(["b"])
      expect(yield* b.engine.send(new Job({ id: "after" }))).toBe("after:done")
    })
  )

  it.live(
    "a write with a stale epoch is refused in the store: the run stops, nothing is recorded, the owner resumes it",
    () =>
      Effect.gen(function* () {
        const cluster = yield* MemoryJournal.makeCluster
        const log: Array<Attempt> = []
        const gate = yield* Deferred.make<void>()
        const a = yield* startPod(cluster, "a", log, {}, gate)
        const id = "block-1"
        yield* a.engine.sendDiscard(new Job({ id }))
        yield* eventually(Effect.sync(() => log.length === 1))
        const shard = log[0]!.shard!
        // Behind the pod's back, the shard moves to a pod that does not exist (epoch + 1).
        expect(yield* cluster.shards.assign([{ shard, from: "a", to: "ghost" }])).toEqual([shard])
        yield* Deferred.succeed(gate, undefined)
        // The outcome's write carried the old epoch: refused, and the run stopped without it.
        yield* eventually(Effect.sync(() => a.engine.runningCount() === 0))
        const steps = yield* cluster.journal.steps(id)
        expect(steps.map((step) => step.outcome)).toEqual([null])
        // "ghost" is not a live pod: the manager gives the shard back to "a", which resumes it.
        const result = yield* a.engine.send(new Job({ id }))
        expect(result).toBe(`${id}:done`)
        expect(log.map((attempt) => [attempt.attempt, attempt.epoch])).toEqual([
          [1, log[0]!.epoch],
          [2, log[0]!.epoch! + 2]
        ])
      })
  )

  it.live("a pod shutting down is marked leaving before it stops its runs and unregisters", () =>
    Effect.gen(function* () {
      const cluster = yield* MemoryJournal.makeCluster
      const calls: Array<string> = []
      const shards: ShardStore.ShardStore["Service"] = {
        ...cluster.shards,
        leave: (podId) =>
          Effect.andThen(
            Effect.sync(() => calls.push(`leave ${podId}`)),
            cluster.shards.leave(podId)
          ),
        unregister: (podId) =>
          Effect.andThen(
            Effect.sync(() => calls.push(`unregister ${podId}`)),
            cluster.shards.unregister(podId)
          )
      }
      const scope = yield* Scope.make()
      yield* WorkflowEngine.makeScoped(Workflow.union(jobs([], () => "a")), { ...fastPod, podId: "a" }).pipe(
        Effect.provideService(DurableExecutionJournal.DurableExecutionJournal, cluster.journal),
        Effect.provideService(ShardStore.ShardStore, shards),
        Scope.provide(scope)
      )
      yield* Scope.close(scope, Exit.void)
      expect(calls).toEqual(["leave a", "unregister a"])
    })
  )

  /**
   * How the pod's wall clock is stepped once its renewals hang (NTP, a resumed VM): `wall` ms, and
   * whether the store's clock steps with it (SQLite: the store reads the same machine's clock) or
   * not (PostgreSQL: the server's).
   */
  const steps = [
    { name: "its clock left alone", wall: 0, storeToo: false },
    {
      name: "its wall clock stepped back 2 s (the store's clock another machine's)",
      wall: -2_000,
      storeToo: false
    },
    { name: "its wall clock and the store's stepped forward 0.4 s (one machine)", wall: 400, storeToo: true }
  ] as const
  for (const step of steps) {
    it.live(
      `a pod whose lease cannot be renewed stops its runs by its own clock, before the lease ends: ${step.name}`,
      () =>
        Effect.gen(function* () {
          const offset = { millis: 0 }
          const podClock = OffsetClock.layer(() => offset.millis)
          const cluster = yield* step.storeToo
            ? Effect.provide(MemoryJournal.makeCluster, podClock)
            : MemoryJournal.makeCluster
          const hang = { on: false, renewedAt: 0 }
          const shards: ShardStore.ShardStore["Service"] = {
            ...cluster.shards,
            renew: (podId, ttl) =>
              Effect.suspend(() => {
                if (hang.on) return Effect.never
                hang.renewedAt = Date.now()
                return cluster.shards.renew(podId, ttl)
              })
          }
          const stopped = yield* Deferred.make<number>()
          const log: Array<Attempt> = []
          const blocking = Workflow.make(
            Job,
            (request) => request.id,
            () =>
              Effect.gen(function* () {
                log.push({ executionId: "x", attempt: 1, podId: "a", shard: null, epoch: null })
                return yield* Effect.never
              }).pipe(
                Effect.onInterrupt(() => Deferred.succeed(stopped, Date.now())),
                Activity.make("forever", Schema.String, Schema.Never)
              )
          )
          hang.renewedAt = Date.now()
          const engine = yield* WorkflowEngine.makeScoped(Workflow.union(blocking), {
            ...fastPod,
            leaseTtl: "1 second",
            podId: "a"
          }).pipe(
            Effect.provideService(DurableExecutionJournal.DurableExecutionJournal, cluster.journal),
            Effect.provideService(ShardStore.ShardStore, shards),
            Effect.provide(podClock)
          )
          yield* engine.sendDiscard(new Job({ id: "x" }))
          yield* eventually(Effect.sync(() => log.length === 1))
          hang.on = true
          const lastRenewal = hang.renewedAt
          offset.millis = step.wall
          const at = yield* Deferred.await(stopped).pipe(Effect.timeout("4 seconds"))
          // The store would see the lease expire at lastRenewal + 1 s (or later), by its own clock:
          // the run stopped before.
          expect(at).toBeLessThan(lastRenewal + 1_000 - (step.storeToo ? step.wall : 0))
          yield* eventually(Effect.sync(() => engine.runningCount() === 0))
          expect((yield* cluster.journal.steps("x")).map((step) => step.outcome)).toEqual([null])
        })
    )
  }

  it.live(
    "a renewal answered later than an ownership interval still counts: a pod on a slow store keeps running",
    () =>
      Effect.gen(function* () {
        const cluster = yield* MemoryJournal.makeCluster
        // Every renewal is applied at once but answered 2.5 intervals later (a slow link to the store).
        const slow = { sent: 0 }
        const shards: ShardStore.ShardStore["Service"] = {
          ...cluster.shards,
          renew: (podId, ttl) =>
            Effect.suspend(() => {
              slow.sent++
              return cluster.shards.renew(podId, ttl).pipe(Effect.delay("100 millis"))
            })
        }
        const started = yield* Deferred.make<void>()
        const stopped = yield* Deferred.make<void>()
        const blocking = Workflow.make(
          Job,
          (request) => request.id,
          () =>
            Deferred.succeed(started, undefined).pipe(
              Effect.andThen(Effect.never),
              Effect.onInterrupt(() => Deferred.succeed(stopped, undefined)),
              Activity.make("forever", Schema.String, Schema.Never)
            )
        )
        yield* WorkflowEngine.makeScoped(Workflow.union(blocking), {
          ...fastPod,
          leaseTtl: "1 second",
          podId: "a"
        }).pipe(
          Effect.provideService(DurableExecutionJournal.DurableExecutionJournal, cluster.journal),
          Effect.provideService(ShardStore.ShardStore, shards),
          Effect.flatMap((engine) => engine.sendDiscard(new Job({ id: "x" })))
        )
        yield* Deferred.await(started)
        const from = slow.sent
        // 20 renewals span more than the TTL (20 × 40 ms at least, even if each were given up on
        // after an interval): the run goes on throughout.
        yield* eventually(
          Effect.sync(() => slow.sent >= from + 20),
          "10 seconds"
        )
        expect(yield* Deferred.isDone(stopped)).toBe(false)
      })
  )

  it.live(
    "with a PodTransport, work sent from a pod that does not own the shard is delivered and answered without waiting for the polls",
    () =>
      Effect.gen(function* () {
        const cluster = yield* MemoryJournal.makeCluster
        const transport = yield* PodTransport.inProcess
        const log: Array<Attempt> = []
        // Polls every minute: only the transport's announcements can deliver within the test.
        const slow = { deliveryPollInterval: "60 seconds" } as const
        const a = yield* startPod(cluster, "a", log, slow, undefined, transport)
        const b = yield* startPod(cluster, "b", log, slow, undefined, transport)
        yield* eventually(Effect.map(ownedBy(cluster, "b"), (n) => n === SHARDS / 2))
        const owners = new Map((yield* cluster.shards.shards).map((shard) => [shard.shard, shard.owner]))
        const ids = Array.from({ length: 20 }, (_, i) => `remote-${i}`)
        // Each id is sent from the pod that does NOT own its shard.
        const results = yield* Effect.forEach(
          ids,
          (id) => {
            const owner = owners.get(ShardId.shardOf(id, SHARDS))
            return (owner === "a" ? b : a).engine.send(new Job({ id }))
          },
          { concurrency: "unbounded" }
        ).pipe(Effect.timeout("10 seconds"))
        expect(results).toEqual(ids.map((id) => `${id}:done`))
        for (const id of ids) {
          expect(log.find((attempt) => attempt.executionId === id)?.podId).toBe(
            owners.get(ShardId.shardOf(id, SHARDS))
          )
        }
      })
  )

  it.live("a second engine on the same store with the same pod id refuses to start", () =>
    Effect.gen(function* () {
      const cluster = yield* MemoryJournal.makeCluster
      yield* startPod(cluster, "a", [])
      const second = yield* Effect.flip(startPod(cluster, "a", []))
      expect(second._tag).toBe("DuplicatePodError")
      expect(second.message).toContain('"a"')
    })
  )

  it.live("a pod configured with another shard count refuses to start and writes nothing", () =>
    Effect.gen(function* () {
      const cluster = yield* MemoryJournal.makeCluster
      yield* startPod(cluster, "a", [])
      const before = yield* cluster.shards.pods
      const error = yield* Effect.flip(startPod(cluster, "b", [], { shardCount: 32 }))
      expect(error._tag).toBe("ShardCountMismatchError")
      expect(error.message).toContain("32")
      expect(error.message).toContain(String(SHARDS))
      expect(yield* cluster.shards.pods).toEqual(before)
    })
  )
})
