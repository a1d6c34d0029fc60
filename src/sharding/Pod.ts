/**
 * A pod: one engine process as a member of the cluster (the talk's waiter).
 *
 * `make` registers the pod in the `ShardStore` (a process restarted with the pod id of one that
 * may still be running, `suspect`, waits for that one's lease or a proof that it stopped), then,
 * every `ownershipInterval`, two loops:
 * - renewals of the pod's lease (by the store's clock), in a fiber of their own: nothing else the
 *   pod does with the store (a round, a wait for a lock) can delay them;
 * - ownership rounds: the pod takes or renews the shard manager's lease and, if it holds it, plans
 *   and applies one round of assignments (`Rebalance.plan`): unowned shards and a dead pod's
 *   shards at once, a bounded number of handovers between live pods; then it reconciles the
 *   shards the store says it owns with the ones it runs: acquires new ones (the listener resumes
 *   their executions), stops the ones it lost, and hands over the ones the manager asked for
 *   (stops their runs, then releases them with epoch + 1).
 *
 * A round that gives up waiting for the ownership lock (`ShardStoreError.busy`: another pod holds
 * it, perhaps frozen inside its transaction) is skipped, logged at debug level, and tried again at
 * the next interval; the pod goes on renewing and running its shards.
 *
 * A pod stops its runs **by its own clock** (`LeaseClock`) when its lease was not renewed in
 * time: a watchdog fires at `lastRenewalSentAt + TTL - TTL/5`, before any other pod can see the
 * lease as expired, so a pod whose database connection hangs does not keep running beside the new
 * owner. After the event loop stalled past that point (the process paused, a long synchronous
 * block), the watchdog's timer is one among the runs' timers: each run asks `mayWrite` whenever
 * one of its fibers resumes, before its next step (`LeaseGuard`), stops there, and the pod stops
 * the others. If a write is sent anyway, the store refuses it with `StaleEpochError` and `fenced`
 * stops the shard's runs.
 *
 * A pod that others see as suspect (on PostgreSQL its session ended while its lease runs: it may
 * not know) may be asked to stand down over the network (`standDown`, see `internal/Suspects.ts`):
 * it starts no run from then on, stops its runs, says so once they ended, and joins again with a
 * new registration at its next renewal.
 *
 * When the scope closes (graceful shutdown, after the engine stopped its runs), the pod hands its
 * shards back and unregisters, so other pods take them at once instead of after the TTL.
 */
import { Clock, Deferred, Duration, Effect, Exit, Fiber, Random, Schedule, Scheduler, Scope } from "effect"
import { urgentOf } from "../internal/BudgetScheduler.ts"
import * as Instrument from "../observability/internal/instrument.ts"
import * as LeaseClock from "./internal/LeaseClock.ts"
import type { NetworkOptions } from "./PodNetwork.ts"
import { plan } from "./Rebalance.ts"
import { DEFAULT_SHARD_COUNT, isValidShardCount, shardOf } from "./ShardId.ts"
import {
  type DuplicatePodError,
  InvalidShardingConfigError,
  type ShardCountMismatchError,
  ShardStoreError
} from "./ShardingErrors.ts"
import type { PodRecord, ShardRecord, ShardStore } from "./ShardStore.ts"

/** Ownership options of an engine (all optional: one process needs none). */
export interface PodOptions {
  /** This pod's id, unique among live pods. Default: generated (`host-pid-random`). */
  readonly podId?: string | undefined
  /**
   * The number of shards (default 300). Recorded in the store by the first pod; a pod configured
   * with another number refuses to start.
   */
  readonly shardCount?: number | undefined
  /**
   * How long a pod's lease lasts without renewal (default 10 seconds). Only pods that may still be
   * alive (paused, cut off from the store) make others wait this long: a pod whose process is
   * provably gone (its file lock released on SQLite) loses its shards at once. On PostgreSQL a
   * pod whose session ended may still be running, so its shards wait for its lease.
   * Shorter means faster failover of a partitioned pod, but a pod that misses renewals for
   * `TTL × 4/5` (a long GC pause, a slow store) stops its runs.
   */
  readonly leaseTtl?: Duration.Input | undefined
  /** How often the pod renews, reconciles and (as manager) rebalances. Default TTL / 10, at most 1 s. */
  readonly ownershipInterval?: Duration.Input | undefined
  /** Live-to-live handovers the manager asks for per round. Default: a tenth of the shards, at least 1. */
  readonly maxHandoversPerRound?: number | undefined
  /**
   * The direct path to other pods (see `PodNetwork`): on by default when the store's layer
   * provides it (SQLite, PostgreSQL), listening on loopback at any free port. `false`: the store
   * is the only path between pods.
   */
  readonly network?: NetworkOptions | false | undefined
}

/** What the pod tells the engine. */
export interface ShardListener {
  /**
   * The pod owns `shard` at `epoch` from now on: resume its executions (without blocking). Called
   * once the `lost` or `handOver` of an earlier epoch of the shard has returned, or one TTL after
   * it began (runs still going then hang on writes their epoch fences).
   */
  readonly acquired: (shard: number, epoch: number) => Effect.Effect<void>
  /** The pod no longer runs `shard`: stop its runs; returns once they ended. */
  readonly lost: (shard: number) => Effect.Effect<void>
  /**
   * The pod hands `shard` over to another pod, its lease still valid: let attempts in progress
   * finish (for at most `deadlineMillis`), start no new one; returns once its runs ended.
   */
  readonly handOver: (shard: number, deadlineMillis: number) => Effect.Effect<void>
}

/** A pod as inspection shows it. */
export interface PodInfo extends PodRecord {
  /** The shards it owns. */
  readonly shards: ReadonlyArray<number>
  /** Whether it holds the shard manager's lease. */
  readonly manager: boolean
}

/** A running pod. */
export interface Pod {
  readonly podId: string
  readonly shardCount: number
  /** The shard of an execution id. */
  readonly shardOf: (id: string) => number
  /**
   * The epoch to start a run of `shard` with, if this pod may start one now: it owns the shard,
   * is not handing it over, and its lease is valid by its own clock. Undefined otherwise.
   */
  readonly epochOf: (shard: number) => number | undefined
  /**
   * Whether a run of `shard` may still write with `epoch`: the pod owns the shard at that epoch
   * (a shard being handed over included: its runs record what they delivered as they stop) and
   * its lease is valid by its own clock. Checked before every write, and whenever a fiber of a run
   * resumes (`LeaseGuard`); the store checks the epoch again. The first "no" because the lease ran
   * out makes the pod stop all its runs.
   */
  readonly mayWrite: (shard: number, epoch: number) => boolean
  /** The shards this pod runs now. */
  readonly ownedShards: () => ReadonlyArray<number>
  /** The store refused a write of `shard` at `epoch`: stop the shard's runs now. */
  readonly fenced: (shard: number, epoch: number) => void
  /**
   * A run of `shard` did not send a write at `epoch` because `mayWrite` said no (the lease ran out
   * by this pod's own clock, or the shard is gone): reported once per shard and epoch.
   */
  readonly withheld: (shard: number, epoch: number) => void
  /** The `registeredAt` of the pod's current registration (store clock). */
  readonly registration: () => number
  /**
   * Another pod sees the registration `registeredAt` as suspect (its store session ended while its
   * lease runs: it may not know). If it is the current one, the pod stands down: it starts no run
   * from now on, stops every run, and joins again with a new registration at its next renewal.
   * Returns true once no run of that registration is left (also for an earlier registration of
   * this pod, whose runs stopped before it was replaced); false for one it never had, or when its
   * runs did not end in time (one waits for a store that does not answer).
   */
  readonly standDown: (registeredAt: number) => Effect.Effect<boolean>
  /** Every pod with its lease and shards. */
  readonly pods: Effect.Effect<ReadonlyArray<PodInfo>, ShardStoreError>
  /** Every shard with its owner and epoch. */
  readonly shards: Effect.Effect<ReadonlyArray<ShardRecord>, ShardStoreError>
  /**
   * Marks the pod as leaving in the store, first thing when it starts shutting down, so the
   * manager moves its shards to pods that stay at once. Idempotent; a failure is only logged.
   */
  readonly leave: Effect.Effect<void>
  /**
   * Runs the first ownership round (the manager's, if this pod is elected, and taking the shards
   * assigned to it), then keeps the pod's loops running until the scope of `make` closes, when the
   * pod hands its shards back and unregisters. Call it once.
   */
  readonly start: Effect.Effect<void, ShardStoreError>
}

/** Resolved options. */
export interface Settings {
  /** Generated by `make` when not given. */
  readonly podId: string | undefined
  readonly shardCount: number
  readonly ttl: number
  readonly interval: number
  readonly maxHandovers: number
  /** The network's options; false: off. */
  readonly network: NetworkOptions | false
  /** The address the pod's network listener advertises, once it listens. */
  readonly address?: string | undefined
  /**
   * Removes `pod` from the store if it is proven stopped (over the pods' network: see
   * `internal/Suspects.ts`); returns whether it did. A registration waiting for an earlier process
   * of its pod id that is `suspect` asks this instead of waiting for that process's lease.
   */
  readonly evictIfStopped?: ((pod: PodRecord) => Effect.Effect<boolean>) | undefined
}

const DEFAULT_TTL = "10 seconds"

/** A duration in ms; NaN when the input is not a duration. */
const toMillis = (input: Duration.Input): number => {
  const duration = Duration.fromInput(input)
  return duration._tag === "Some" ? Duration.toMillis(duration.value) : Number.NaN
}

const invalid = (option: string, value: unknown, detail: string) =>
  new InvalidShardingConfigError({ option, value: String(value), detail })

/** Validates the options; generates the pod id if none is given. */
export const settings = (
  options: PodOptions | undefined
): Effect.Effect<Settings, InvalidShardingConfigError> =>
  Effect.gen(function* () {
    const shardCount = options?.shardCount ?? DEFAULT_SHARD_COUNT
    if (!isValidShardCount(shardCount)) {
      return yield* invalid("shardCount", shardCount, "it must be an integer from 1 to 65536")
    }
    const ttl = toMillis(options?.leaseTtl ?? DEFAULT_TTL)
    if (!(ttl >= 500 && Number.isFinite(ttl))) {
      return yield* invalid("leaseTtl", options?.leaseTtl, "it must be a finite duration of at least 500 ms")
    }
    const interval =
      options?.ownershipInterval === undefined
        ? Math.min(1_000, ttl / 10)
        : toMillis(options.ownershipInterval)
    if (!(interval >= 10 && interval <= ttl / 3)) {
      return yield* invalid(
        "ownershipInterval",
        options?.ownershipInterval,
        "it must be at least 10 ms and at most a third of leaseTtl"
      )
    }
    const maxHandovers = options?.maxHandoversPerRound ?? Math.max(1, Math.ceil(shardCount / 10))
    if (!(Number.isInteger(maxHandovers) && maxHandovers >= 1)) {
      return yield* invalid("maxHandoversPerRound", maxHandovers, "it must be a positive integer")
    }
    const podId = options?.podId
    if (podId !== undefined && (podId.length === 0 || podId.length > 128 || podId.includes("\u0000"))) {
      return yield* invalid("podId", JSON.stringify(podId), "it must be 1 to 128 characters without NUL")
    }
    return { podId, shardCount, ttl, interval, maxHandovers, network: options?.network ?? {} }
  })

export const generatedPodId = Effect.gen(function* () {
  const { hostname } = yield* Effect.promise(() => import("node:os"))
  const suffix = (yield* Random.nextIntBetween(0, 0xffffff)).toString(16).padStart(6, "0")
  return `${hostname()}-${process.pid}-${suffix}`
})

/** Registers the pod, runs its first round, and keeps it running until the scope closes. */
export const make = (
  store: ShardStore["Service"],
  settings: Settings,
  listener: ShardListener
): Effect.Effect<Pod, ShardCountMismatchError | DuplicatePodError | ShardStoreError, Scope.Scope> =>
  Effect.gen(function* () {
    const { shardCount, ttl, interval, maxHandovers } = settings
    const podId = settings.podId ?? (yield* generatedPodId)
    const clock = yield* Clock.Clock
    /** The caller's services (logger, clock): `fenced` runs outside any fiber of the pod. */
    const context = yield* Effect.context<never>()
    /** The pod's own clock for its lease: never goes back, never under-counts (see `LeaseClock`). */
    const now = LeaseClock.make(clock)
    // Joining waits for a store that does not answer yet (a server restarting, a full disk) or a
    // lock held, with backoff up to 5 s and a warning each time; any other error fails the start.
    const joining = <A, E>(what: string, effect: Effect.Effect<A, E>) =>
      effect.pipe(
        Effect.tapError((error) =>
          isTransient(error) && !isBusy(error)
            ? Effect.logWarning(`pod ${podId}: ${what} failed; trying again until the store answers`, error)
            : Effect.void
        ),
        Effect.retry({ while: isTransient, schedule: joinBackoff(interval) })
      )
    yield* joining("initializing the shards", store.init(shardCount))

    /**
     * Registers the pod, its marker held in `into`. An earlier process of this pod id that may
     * still be running (`suspect`: on PostgreSQL its session ended while its lease runs; most often
     * the process this one replaces, SIGKILLed a moment ago) makes the store answer busy: the pod
     * waits for it as long as its lease lasts, whatever this pod's own TTL, trying again every
     * interval (not `joining`'s backoff: it joins within an interval of that lease's end), unless
     * it is proven stopped first (`evictIfStopped`: nothing listens at its address on this host any
     * more, or it stood down when asked) and evicted. Other failures are `joining`'s.
     */
    const register = (into: Scope.Scope) => {
      /** The earlier registration this one waits for, once it said so. */
      let waitingFor: number | undefined
      const attempt: Effect.Effect<number, DuplicatePodError | ShardStoreError> = Effect.catchIf(
        Scope.provide(store.register(podId, ttl, settings.address), into),
        isBusy,
        (error) =>
          Effect.gen(function* () {
            const pods = yield* Effect.option(store.pods)
            const earlier =
              pods._tag === "Some"
                ? pods.value.find((pod) => pod.podId === podId && pod.liveness === "suspect")
                : undefined
            if (earlier === undefined) return yield* error
            if (waitingFor !== earlier.registeredAt) {
              waitingFor = earlier.registeredAt
              yield* Effect.logInfo(
                `pod ${podId}: an earlier process of this pod id lost its store session and may still be running until its lease ends (${earlier.leaseUntil}, store clock): waiting for that, or for a proof that it stopped`
              )
            }
            if (settings.evictIfStopped !== undefined && (yield* settings.evictIfStopped(earlier))) {
              yield* Effect.logInfo(
                `pod ${podId}: the earlier process of this pod id has stopped: joining now`
              )
              return yield* attempt
            }
            yield* Effect.sleep(interval)
            return yield* attempt
          })
      )
      return joining("registering", attempt)
    }

    const scope = yield* Effect.scope
    let membership = yield* Scope.fork(scope)
    /** The current registration (its `registeredAt`), and the earlier ones of this pod. */
    let registration = yield* register(membership)
    const former = new Set<number>()
    /** The current registration stood down (`standDown`): no run starts until the pod joins again. */
    let relinquished = false

    /** Shards being handed over now (their runs finishing, then released). */
    const handingOver = new Set<number>()
    /**
     * How long a handover lets attempts in progress finish: well inside the lease, since the pod
     * must still own the shard, by its own clock, when they record their outcomes.
     */
    const drainMillis = Math.min(5_000, ttl / 4)
    /** The shards this pod runs, with the epoch it runs them at, and whether they are stopping. */
    const active = new Map<
      number,
      {
        readonly epoch: number
        draining: boolean
        stopped: boolean
        refused: boolean
        /** When its runs were told to stop (the pod's clock), if they were. */
        stoppingSince: number | undefined
        /** Done once the shard's runs ended and it left `active`. */
        readonly ended: Deferred.Deferred<void>
      }
    >()
    /** By this pod's clock: when it must stop running, unless a renewal succeeds before. */
    const margin = ttl / 5
    let validUntil = now() + ttl - margin
    /** How long the pod may still run, in ms; 0 or less: it must stop now. */
    const left = () => validUntil - now()
    /** Whether the runs were stopped (`leaseHolds`) since the lease last ran out by the pod's clock. */
    let lapseHandled = false
    let leaving = false
    /** The (shard, epoch) pairs whose refusal was reported: once each. */
    const refusals = new Set<string>()

    /**
     * Stops the runs of `shard` if the pod still runs it at `epoch`: no new run starts from now on,
     * the runs in progress may write (fenced) while they stop, then the shard is forgotten.
     */
    const lose = (shard: number, epoch: number, gently = false): Effect.Effect<void> =>
      Effect.suspend(() => {
        const entry = active.get(shard)
        if (entry?.epoch !== epoch || entry.stopped || (gently && entry.draining)) return Effect.void
        entry.draining = true
        entry.stoppingSince ??= now()
        if (!gently) entry.stopped = true
        return Effect.ensuring(
          Instrument.shardLost(
            gently ? listener.handOver(shard, drainMillis) : listener.lost(shard),
            podId,
            shard,
            epoch,
            gently
          ),
          Effect.sync(() => {
            if (active.get(shard) === entry) active.delete(shard)
            Deferred.doneUnsafe(entry.ended, Exit.void)
          })
        )
      })

    const loseAll = (why: string) =>
      Effect.suspend(() => {
        // Shards already being stopped (their runs may hang on a store that does not answer) are
        // not stopped, nor reported, again.
        const entries = [...active].filter(([, entry]) => !entry.stopped)
        if (entries.length === 0) return Effect.void
        return Effect.andThen(
          Effect.logWarning(`pod ${podId}: ${why}; stopping the runs of its ${entries.length} shard(s)`),
          Effect.forEach(entries, ([shard, { epoch }]) => lose(shard, epoch), {
            concurrency: "unbounded",
            discard: true
          })
        )
      })

    /**
     * Whether the lease still holds by the pod's clock. When a run is told it does not (`mayWrite`:
     * it stops there), the pod stops every run at once, in a fiber of its own, without waiting for
     * its watchdog: a renewal that succeeds in between would keep the watchdog from acting, and
     * the shards would stay with some of their runs stopped. Stopped, they are taken again at the
     * next round (their executions resumed) if the store still gives them to this pod.
     */
    const leaseHolds = (): boolean => {
      if (now() < validUntil) return true
      if (!lapseHandled) {
        lapseHandled = true
        // After a yield: this may be called from inside another fiber's step (see `LeaseGuard`).
        Effect.runForkWith(context)(
          Effect.andThen(Effect.yieldNow, loseAll("a run found its lease run out by the pod's own clock"))
        )
      }
      return false
    }

    /** Asks the store for the pod's shards and makes the local view match. */
    const reconcile = Effect.gen(function* () {
      if (relinquished) return
      const mine = yield* store.shardsOf(podId)
      const owned = new Set<number>()
      const handovers: Array<ShardRecord> = []
      for (const row of mine) {
        owned.add(row.shard)
        if (row.nextOwner !== null) {
          handovers.push(row)
          continue
        }
        const current = active.get(row.shard)
        if (current?.epoch === row.epoch) continue
        if (current !== undefined) {
          yield* lose(row.shard, current.epoch)
          // Runs of an earlier epoch still stopping (a lapse or a stand-down began it) keep the
          // shard until they end: a shard is taken again once its `lost` returned, so no run of
          // it is resumed beside one still stopping. For one TTL at most: a run that has not ended
          // by then hangs (on a write its old epoch fences), and must not hold the shard for good.
          const stopping = active.get(row.shard)
          if (stopping !== undefined) {
            if (now() - (stopping.stoppingSince ?? now()) < ttl) continue
            yield* Effect.logWarning(
              `pod ${podId}: the runs of shard ${row.shard} at epoch ${stopping.epoch} have not ended ${ttl} ms after they were told to stop; taking it at epoch ${row.epoch} anyway`
            )
          }
        }
        // Checked with no yield before the shard is taken: a pod that stood down meanwhile takes none.
        if (relinquished) return
        active.set(row.shard, {
          epoch: row.epoch,
          draining: false,
          stopped: false,
          refused: false,
          stoppingSince: undefined,
          ended: Deferred.makeUnsafe<void>()
        })
        yield* Instrument.shardAcquired(listener.acquired(row.shard, row.epoch), podId, row.shard, row.epoch)
      }
      const gone = [...active].filter(([shard]) => !owned.has(shard))
      yield* Effect.forEach(gone, ([shard, { epoch }]) => lose(shard, epoch), {
        concurrency: "unbounded",
        discard: true
      })
      // Handing over: the runs finish their attempts in progress (at most `drainMillis`), then the
      // shard goes to the next owner (epoch + 1), which starts it only once this pod has stopped.
      // In the background: the rounds (and the lease renewals) go on meanwhile.
      for (const row of handovers) {
        if (handingOver.has(row.shard)) continue
        handingOver.add(row.shard)
        const entry = active.get(row.shard)
        yield* Effect.forkIn(
          (entry === undefined ? Effect.void : lose(row.shard, entry.epoch, true)).pipe(
            Effect.andThen(store.release(podId, row.shard, row.epoch)),
            Effect.catchCause((cause) =>
              Effect.logWarning(`pod ${podId}: handing over shard ${row.shard} failed`, cause)
            ),
            Effect.ensuring(Effect.sync(() => handingOver.delete(row.shard)))
          ),
          scope
        )
      }
    })

    const managerRound = Effect.gen(function* () {
      if (!(yield* store.acquireManager(podId, ttl))) return
      const [pods, shards] = yield* Effect.all([store.pods, store.shards])
      const next = plan({ shards, pods, maxHandovers })
      // Moves are cluster news when several pods are alive; a lone pod taking every shard (at its
      // first start, or after a restart) is not worth a line in the program's output.
      const log = pods.filter((pod) => pod.liveness === "live").length > 1 ? Effect.logInfo : Effect.logDebug
      const dead = new Set(
        pods.filter((pod) => pod.liveness === "expired" || pod.liveness === "gone").map((pod) => pod.podId)
      )
      if (next.assign.length > 0) {
        const moved = yield* store.assign(next.assign)
        const fromDead = next.assign.filter((move) => move.from !== null && dead.has(move.from)).length
        yield* log(
          `shard manager ${podId}: assigned ${moved.length} shard(s) ${describeMoves(next.assign)}${fromDead > 0 ? ` (${fromDead} of them from pods that died or stopped renewing: ${[...dead].join(", ")})` : ""}`
        )
      }
      if (next.handover.length > 0) {
        yield* store.requestHandover(next.handover)
        yield* log(`shard manager ${podId}: handing over ${describeMoves(next.handover)}`)
      }
      yield* Effect.forEach(next.removePods, store.removePod, { discard: true })
    })

    /**
     * Stops everything and joins again as a new member: the store no longer lists this pod, or it
     * stood down. The old registration's runs have stopped before it is replaced.
     */
    const rejoin = (why: string) =>
      Effect.gen(function* () {
        yield* loseAll(why)
        // The old registration counts as stopped (`standDown`) once every one of its runs ended,
        // those a stand-down was still stopping included.
        const old = registration
        const leftovers = [...active.values()]
        const allEnded = Effect.forEach(leftovers, (entry) => Deferred.await(entry.ended), { discard: true })
        yield* Effect.forkIn(
          Effect.andThen(
            allEnded,
            Effect.sync(() => former.add(old))
          ),
          scope
        )
        // Releasing the old marker makes the old registration gone at once, its shards free for
        // others: first let the runs still stopping end (`loseAll` above waited only for those it
        // stopped itself; a lapse or a stand-down may have begun stopping others). At most until the
        // old lease has passed by this pod's clock: from then on the store gives its shards away
        // anyway, and a run that has not ended is stuck on a write its epoch fences.
        const leaseLeft = left() + margin
        if (leaseLeft > 0 && (yield* Effect.timeoutOption(allEnded, leaseLeft))._tag === "None") {
          yield* Effect.logWarning(
            `pod ${podId}: some runs of its old registration had not ended when its lease passed; joining again anyway`
          )
        }
        yield* Scope.close(membership, Exit.void)
        membership = yield* Scope.fork(scope)
        const registering = now()
        registration = yield* register(membership)
        validUntil = registering + ttl - margin
        lapseHandled = false
        relinquished = false
      })

    /**
     * Renews the lease. The store extends it when it runs the renewal, after `sentAt`, so an
     * answer however late makes the pod valid until `sentAt + ttl - margin`, on the safe side: it
     * counts as long as that is still ahead. Waiting for it less would throw away the answers of a
     * slow link (round trips longer than an interval) while the store keeps extending the lease, and
     * leave the pod's shards run by nobody. Not answered by then, it counts as failed.
     */
    const renew = Effect.gen(function* () {
      // It stood down (another pod found its store session ended): join again with a new one.
      if (relinquished) return yield* rejoin("it stood down")
      const sentAt = now()
      const renewed = yield* store.renew(podId, ttl).pipe(Effect.timeoutOption(ttl - margin), Effect.option)
      const ok = renewed._tag === "Some" && renewed.value._tag === "Some" && renewed.value.value
      yield* Instrument.leaseRenewal(podId, ok)
      if (renewed._tag === "None" || renewed.value._tag === "None") return
      if (renewed.value.value) {
        validUntil = sentAt + ttl - margin
        lapseHandled = false
        return
      }
      // The manager declared this pod dead (it was paused or cut off past its lease), or its
      // session ended: its shards belong to others now, or will. Stop everything and join again.
      yield* rejoin("the store no longer lists this pod (its lease expired or its session ended)")
    })

    const standDown = (registeredAt: number): Effect.Effect<boolean> =>
      Effect.suspend(() => {
        if (former.has(registeredAt)) return Effect.succeed(true)
        if (registeredAt !== registration) return Effect.succeed(false)
        relinquished = true
        return Effect.gen(function* () {
          // Shards already stopping (not stopped again by loseAll) count too: wait for every one.
          const entries = [...active.values()]
          yield* Effect.forkIn(
            loseAll("another pod found its store session ended; it stands down and joins again"),
            scope
          )
          // A run whose write is on the wire to a store that does not answer cannot end: then this
          // proves nothing, and the asker waits for the lease (it may ask again meanwhile).
          const ended = yield* Effect.timeoutOption(
            Effect.forEach(entries, (entry) => Deferred.await(entry.ended), { discard: true }),
            drainMillis
          )
          return ended._tag === "Some"
        })
      })

    // Renewals run in a loop of their own: a manager round or a reconciliation stuck on the store
    // (a lock held by a frozen pod's open transaction) must not keep the lease from being renewed.
    const round = Effect.gen(function* () {
      if (leaving || relinquished) return
      if (left() <= 0) return yield* loseAll("its lease was not renewed in time")
      yield* managerRound
      if (leaving || left() <= 0) return
      yield* reconcile
    })

    /** Stops the runs by this pod's own clock when renewals stop succeeding. */
    const watchdog = Effect.gen(function* () {
      while (true) {
        const wait = left()
        if (wait > 0) {
          yield* Effect.sleep(Math.min(wait, interval))
          continue
        }
        yield* loseAll("its lease could not be renewed before it would expire")
        yield* Effect.sleep(interval)
      }
    })

    const logged = <A, E>(what: string, effect: Effect.Effect<A, E>) =>
      Effect.catchCause(effect, (cause) => Effect.logWarning(`pod ${podId}: ${what} failed`, cause))

    /**
     * A round that gave up waiting for the ownership lock (another pod holds it, perhaps frozen
     * inside its transaction) is skipped and tried again at the next interval; the pod keeps
     * renewing its lease (its own loop) and running its shards meanwhile.
     */
    const skipIfBusy = <A>(effect: Effect.Effect<A, ShardStoreError>) =>
      Effect.catchIf(effect, isBusy, (error) =>
        Effect.logDebug(
          `pod ${podId}: ownership round skipped, tried again in ${interval} ms: ${error.message}`
        )
      )

    /** The first round, then the loops; the engine calls it once it can take shards. */
    const start = Effect.gen(function* () {
      yield* skipIfBusy(managerRound.pipe(Effect.andThen(reconcile)))
      const loop = yield* Effect.forkIn(
        Effect.forever(
          Effect.andThen(Effect.sleep(interval), logged("an ownership round", skipIfBusy(round)))
        ),
        scope
      )
      // Urgent: on a BudgetScheduler its tasks run ahead of every other fiber's in each turn.
      const renewals = yield* Effect.forkIn(
        Effect.forever(
          Effect.andThen(
            Effect.sleep(interval),
            logged(
              "a lease renewal",
              Effect.suspend(() => (leaving ? Effect.void : renew))
            )
          )
        ).pipe(Effect.provideService(Scheduler.Scheduler, urgentOf(yield* Scheduler.Scheduler))),
        scope
      )
      const dog = yield* Effect.forkIn(watchdog, scope)
      // Runs after the engine's finalizer stopped every run (the engine forks the pod's scope first).
      yield* Scope.addFinalizer(
        scope,
        Effect.gen(function* () {
          leaving = true
          yield* Fiber.interrupt(loop)
          yield* Fiber.interrupt(renewals)
          yield* Fiber.interrupt(dog)
          active.clear()
          yield* logged("leaving the cluster", Effect.timeout(store.unregister(podId), ttl))
        })
      )
    })

    const pods = Effect.gen(function* () {
      const [records, shards, manager] = yield* Effect.all([store.pods, store.shards, store.manager])
      return records.map((pod) => ({
        ...pod,
        shards: shards.filter((shard) => shard.owner === pod.podId).map((shard) => shard.shard),
        manager: manager?.podId === pod.podId
      }))
    })

    let leaveMarked = false
    const leave = Effect.suspend(() => {
      if (leaveMarked) return Effect.void
      leaveMarked = true
      return logged("marking the pod as leaving", Effect.timeout(store.leave(podId), interval * 2))
    })

    return {
      podId,
      leave,
      shardCount,
      shardOf: (id) => shardOf(id, shardCount),
      epochOf: (shard) => {
        const entry = active.get(shard)
        return entry === undefined || entry.draining || relinquished || left() <= 0 ? undefined : entry.epoch
      },
      mayWrite: (shard, epoch) => {
        const entry = active.get(shard)
        return entry?.epoch === epoch && !entry.refused && !relinquished && leaseHolds()
      },
      ownedShards: () =>
        left() > 0 && !relinquished
          ? [...active].flatMap(([shard, entry]) => (entry.draining ? [] : [shard]))
          : [],
      registration: () => registration,
      standDown,
      fenced: (shard, epoch) => {
        const key = `${shard}@${epoch}`
        if (refusals.has(key)) return
        refusals.add(key)
        const entry = active.get(shard)
        const running = entry?.epoch === epoch && !entry.refused
        if (running) entry.refused = true
        Effect.runForkWith(context)(
          Effect.andThen(
            Effect.logWarning(
              `pod ${podId}: the store refused a write of shard ${shard} at epoch ${epoch}: another pod owns the shard now${running ? "; stopping its runs" : " (its runs had stopped already)"}`
            ),
            running ? lose(shard, epoch) : Effect.void
          )
        )
      },
      withheld: (shard, epoch) => {
        const lapsed = now() >= validUntil
        const entry = active.get(shard)
        // A run whose write was withheld stops. If the lease lapsed by the pod's own clock (it was
        // frozen or starved), a renewal may still succeed and keep the shard at the same epoch:
        // stop every run of the lapsed lease now, so that the shards the pod keeps are taken
        // again and their executions resumed, instead of left without a run.
        const running = lapsed && entry?.epoch === epoch && !entry.stopped
        const key = `withheld ${shard}@${epoch}`
        if (refusals.has(key) && !running) return
        refusals.add(key)
        const why = lapsed ? "its lease ran out by its own clock" : "it no longer owns the shard"
        Effect.runForkWith(context)(
          Effect.andThen(
            Effect.logWarning(
              `pod ${podId}: a write of shard ${shard} at epoch ${epoch} was refused before it was sent: ${why}; its runs record nothing more`
            ),
            running ? loseAll("its lease ran out by its own clock before a write") : Effect.void
          )
        )
      },
      pods,
      shards: store.shards,
      start
    } satisfies Pod
  })

/** Whether a store operation gave up waiting for a lock another pod holds (`ShardStoreError.busy`). */
const isBusy = (error: unknown): boolean => error instanceof ShardStoreError && error.busy === true

/** Whether a store operation failed for a passing reason (a busy lock included): worth retrying. */
const isTransient = (error: unknown): boolean =>
  error instanceof ShardStoreError && (error.transient || error.busy === true)

/** Joining's backoff: from the pod's round interval, doubling, at most 5 s apart. */
const joinBackoff = (interval: number) =>
  Schedule.exponential(interval).pipe(
    Schedule.modifyDelay(({ duration }) => Effect.succeed(Duration.min(duration, JOIN_BACKOFF_MAX)))
  )

const JOIN_BACKOFF_MAX = Duration.seconds(5)

const describeMoves = (moves: ReadonlyArray<{ readonly shard: number; readonly to: string }>): string => {
  const byPod = new Map<string, Array<number>>()
  for (const move of moves) byPod.set(move.to, [...(byPod.get(move.to) ?? []), move.shard])
  return [...byPod].map(([pod, shards]) => `${shards.length} to ${pod}`).join(", ")
}
