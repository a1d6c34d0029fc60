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
 *
 * `make` composes the parts, each in `internal/`: `Joining` (the first calls to the store,
 * registering), `ActiveShards` (the shards it runs, stopping them), `Lease` (its lease by its own
 * clock, the watchdog), `Registration` (renewals, joining again, standing down), `Reconcile`,
 * `ManagerRound`, `Refusals` (writes the store refused or the pod withheld) and `Loops` (the loops,
 * leaving, unregistering).
 */
import { Clock, Duration, Effect, Random, Scope } from "effect"
import * as ActiveShards from "./internal/ActiveShards.ts"
import * as Joining from "./internal/Joining.ts"
import * as Lease from "./internal/Lease.ts"
import * as LeaseClock from "./internal/LeaseClock.ts"
import * as Loops from "./internal/Loops.ts"
import * as ManagerRound from "./internal/ManagerRound.ts"
import * as Reconcile from "./internal/Reconcile.ts"
import * as Refusals from "./internal/Refusals.ts"
import * as Registration from "./internal/Registration.ts"
import type { NetworkOptions } from "./PodNetwork.ts"
import { DEFAULT_SHARD_COUNT, isValidShardCount, shardOf } from "./ShardId.ts"
import {
  type DuplicatePodError,
  InvalidShardingConfigError,
  type ShardCountMismatchError,
  type ShardStoreError
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

/**
 * A pod id for a process that names none: its host, its process id and a random suffix, e.g.
 * `web-1-4242-a3f09c` (unique enough that two processes on one host never share one).
 */
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
    yield* Joining.joining(podId, interval, "initializing the shards", store.init(shardCount))
    const registrant: Joining.Registrant = {
      store,
      podId,
      ttl,
      interval,
      address: settings.address,
      evictIfStopped: settings.evictIfStopped
    }
    const register = (into: Scope.Scope) => Joining.register(registrant, into)

    const scope = yield* Effect.scope
    const membership = yield* Scope.fork(scope)
    const registeredAt = yield* register(membership)
    /**
     * How long a handover lets attempts in progress finish: well inside the lease, since the pod
     * must still own the shard, by its own clock, when they record their outcomes.
     */
    const drainMillis = Math.min(5_000, ttl / 4)
    const active = ActiveShards.make({ podId, now, drainMillis, listener })
    const lease = Lease.make({ now, ttl, context, loseAll: active.loseAll })
    const registration = Registration.make({
      store,
      podId,
      ttl,
      drainMillis,
      scope,
      registeredAt,
      membership,
      register,
      active,
      lease
    })
    const { relinquished } = registration
    const refusals = Refusals.make({ podId, context, active, lease })
    const loops = Loops.make({
      store,
      podId,
      ttl,
      interval,
      scope,
      lease,
      active,
      relinquished,
      managerRound: ManagerRound.make({ store, podId, ttl, maxHandovers }),
      reconcile: Reconcile.make({ store, podId, ttl, now, scope, active, relinquished, listener }),
      renew: registration.renew
    })

    const pods = Effect.gen(function* () {
      const [records, shards, manager] = yield* Effect.all([store.pods, store.shards, store.manager])
      return records.map((pod) => ({
        ...pod,
        shards: shards.filter((shard) => shard.owner === pod.podId).map((shard) => shard.shard),
        manager: manager?.podId === pod.podId
      }))
    })

    return {
      podId,
      leave: loops.leave,
      shardCount,
      shardOf: (id) => shardOf(id, shardCount),
      epochOf: (shard) => {
        const entry = active.byShard.get(shard)
        return entry === undefined || entry.draining || relinquished() || lease.left() <= 0
          ? undefined
          : entry.epoch
      },
      mayWrite: (shard, epoch) => {
        const entry = active.byShard.get(shard)
        return entry?.epoch === epoch && !entry.refused && !relinquished() && lease.holds()
      },
      ownedShards: () =>
        lease.left() > 0 && !relinquished()
          ? [...active.byShard].flatMap(([shard, entry]) => (entry.draining ? [] : [shard]))
          : [],
      registration: registration.current,
      standDown: registration.standDown,
      fenced: refusals.fenced,
      withheld: refusals.withheld,
      pods,
      shards: store.shards,
      start: loops.start
    } satisfies Pod
  })
