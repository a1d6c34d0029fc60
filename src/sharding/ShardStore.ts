/**
 * The storage port of ownership: the cluster's shard count, the pods and their leases, the shard
 * manager's lease, and each shard's owner and epoch (its fencing token).
 *
 * It lives in the same store as the journal, because the journal refuses, in the same transaction
 * as the write itself, a write that carries a shard epoch that is no longer current (see
 * `DurableExecutionJournal.JournalWrite.fence`). `SqliteJournal.layer`, `PostgresJournal.layer` and
 * `MemoryJournal.layerCluster` provide both services (`MemoryJournal.layer` is a journal without
 * ownership, for one process).
 *
 * Time: a lease end one pod writes is judged by another, so leases are written and judged by the
 * store's clock, never by the clock of the pod that asks: PostgreSQL uses the server's clock, so
 * pods on machines with skewed clocks agree on when a lease ends; SQLite the host's (every pod of
 * an embedded file is on its machine), whatever effect `Clock` a program provides; memory the
 * `Clock` the cluster was made with. A pod stops its own work by its own clock, measured from
 * before its last successful renewal was sent (see `Pod`): only differences of that clock count,
 * so a pod whose clock is set ahead or behind still stops before the store's lease ends.
 *
 * Liveness beyond the lease: a pod's process can be *provably gone* before its lease ends. On
 * SQLite a pod holds an OS lock on a file of its own, which the kernel releases only when the
 * process dies (or the pod lets it go after stopping its runs). A memory pod is gone once the
 * scope given to `register` closes. On PostgreSQL a pod holds a session open for its lifetime, but
 * a session can end while its process still runs (`pg_terminate_backend`, a reset connection, a
 * server restart) and the pod may not hear of it (its path to the server hangs): a pod whose
 * session ended is only `suspect` until its lease has passed, or until it is proven stopped some
 * other way (`evict`: it said so over the pods' network, or nothing listens at its address).
 */
import { Context, type Effect, Schema, type Scope } from "effect"
import type { DuplicatePodError, ShardCountMismatchError, ShardStoreError } from "./ShardingErrors.ts"

/**
 * Whether a pod may still be running: `live` (lease current, marker held), `expired` (lease
 * passed), `gone` (provably), or `suspect`: its marker was released but its lease has not passed,
 * so it may still be running (a PostgreSQL session that ended while the process lives). A suspect
 * pod gets no shards, and keeps its own until its lease passes or it is evicted.
 */
export const PodLiveness = Schema.Literals(["live", "suspect", "expired", "gone"])

/** @see PodLiveness */
export type PodLiveness = typeof PodLiveness.Type

/** A registered pod as stored, with its liveness as the store judges it now. */
export const PodRecord = Schema.Struct({
  podId: Schema.String,
  /** When its lease ends (epoch ms, store clock). */
  leaseUntil: Schema.Number,
  registeredAt: Schema.Number,
  renewedAt: Schema.Number,
  liveness: PodLiveness,
  /** Where its network listener is reached (`host:port`); null when it has none (store only). */
  address: Schema.NullOr(Schema.String),
  /** It is shutting down: the manager hands its shards to other pods at once and gives it none. */
  leaving: Schema.Boolean
})

/** @see PodRecord */
export type PodRecord = typeof PodRecord.Type

/** A shard as stored: its owner, its epoch, and the pod it is being handed to. */
export const ShardRecord = Schema.Struct({
  /** 1..shardCount. */
  shard: Schema.Number,
  /** The pod that owns it; null while unassigned (released, or never assigned). */
  owner: Schema.NullOr(Schema.String),
  /** Grows by one at every change of owner (assignment, release, handover): the fencing token. */
  epoch: Schema.Number,
  /** Set by the manager to ask the owner to hand the shard over to this pod. */
  nextOwner: Schema.NullOr(Schema.String),
  updatedAt: Schema.Number
})

/** @see ShardRecord */
export type ShardRecord = typeof ShardRecord.Type

/** The manager's lease. */
export interface ManagerLease {
  readonly podId: string
  readonly leaseUntil: number
}

/** A change the manager makes to a shard's owner, applied only if `from` still owns it. */
export interface Move {
  readonly shard: number
  /** The owner the manager saw (null: unassigned). */
  readonly from: string | null
  readonly to: string
}

/** The ownership store. Every operation is one transaction. */
export class ShardStore extends Context.Service<
  ShardStore,
  {
    /**
     * Records the shard count and creates the shard rows (unowned, epoch 0) on first use; on later
     * uses checks it. A different recorded count fails with `ShardCountMismatchError` and writes
     * nothing. Executions stored before the store knew shards (an older schema) get their shard
     * (`ShardId.shardOf`) when the count is first recorded.
     */
    readonly init: (shardCount: number) => Effect.Effect<void, ShardCountMismatchError | ShardStoreError>
    /**
     * Registers the pod with a lease of `ttlMillis`, and holds its liveness marker (PostgreSQL
     * session, OS file lock) until the scope closes. A live pod with the same id fails it with
     * `DuplicatePodError`, writing nothing; a suspect one (an earlier process whose session ended
     * while its lease runs) fails it with a busy, transient `ShardStoreError`: try again once its
     * lease has passed. An expired or gone pod with that id (an earlier incarnation) is replaced,
     * and the shards it still owned are released (epoch + 1). Returns the registration's
     * `registeredAt` (store clock), which names it (`evict`).
     */
    readonly register: (
      podId: string,
      ttlMillis: number,
      /** The address its network listener advertises (`host:port`), if it has one. */
      address?: string | undefined
    ) => Effect.Effect<number, DuplicatePodError | ShardStoreError, Scope.Scope>
    /**
     * Extends the pod's lease to now + `ttlMillis`. Returns false if the pod is no longer
     * registered (the manager declared it dead): it must stop all its work.
     */
    readonly renew: (podId: string, ttlMillis: number) => Effect.Effect<boolean, ShardStoreError>
    /**
     * Graceful exit: hands every shard the pod owns to its `nextOwner` (or leaves it unowned),
     * epoch + 1, gives up the manager's lease if held, and deletes the pod. Call it only once the
     * pod's runs have stopped.
     */
    readonly unregister: (podId: string) => Effect.Effect<void, ShardStoreError>
    /**
     * Marks the pod as leaving (it is shutting down): the manager hands its shards over to other
     * pods at once and gives it no more. No-op if the pod is not registered.
     */
    readonly leave: (podId: string) => Effect.Effect<void, ShardStoreError>
    /** Removes a dead pod (expired or gone) after its shards moved. No-op for a live or suspect one. */
    readonly removePod: (podId: string) => Effect.Effect<void, ShardStoreError>
    /**
     * Removes a pod proven stopped otherwise than by its marker (it said so over the pods'
     * network, or nothing listens at its address any more): releases its shards (epoch + 1) and
     * its manager's lease, and deletes it, if its registration is still the one proven
     * (`registeredAt`) and it is not live. Returns whether it removed it.
     */
    readonly evict: (podId: string, registeredAt: number) => Effect.Effect<boolean, ShardStoreError>
    /** Every registered pod with its liveness, by id. */
    readonly pods: Effect.Effect<ReadonlyArray<PodRecord>, ShardStoreError>
    /** Every shard, by number. */
    readonly shards: Effect.Effect<ReadonlyArray<ShardRecord>, ShardStoreError>
    /** The shards `podId` owns, by number. */
    readonly shardsOf: (podId: string) => Effect.Effect<ReadonlyArray<ShardRecord>, ShardStoreError>
    /**
     * Takes or renews the manager's lease for `podId`: succeeds (true) when the lease is free,
     * already `podId`'s, expired, or held by a pod that is gone or no longer registered.
     */
    readonly acquireManager: (podId: string, ttlMillis: number) => Effect.Effect<boolean, ShardStoreError>
    /** The current manager's lease, if any pod holds one (expired or not). */
    readonly manager: Effect.Effect<ManagerLease | undefined, ShardStoreError>
    /**
     * Manager: gives each shard to its `to` (epoch + 1, `nextOwner` cleared) where `from` still
     * owns it. Returns the shards moved. Used for unowned shards and the shards of dead pods.
     */
    readonly assign: (moves: ReadonlyArray<Move>) => Effect.Effect<ReadonlyArray<number>, ShardStoreError>
    /**
     * Manager: asks `from` to hand each shard over to `to` (sets `nextOwner`) where `from` still
     * owns it. The owner stops its runs of the shard, then calls `release`.
     */
    readonly requestHandover: (
      moves: ReadonlyArray<Move>
    ) => Effect.Effect<ReadonlyArray<number>, ShardStoreError>
    /**
     * Owner: gives the shard to its `nextOwner` (or leaves it unowned), epoch + 1, if `podId`
     * still owns it at `epoch`. Returns whether it did.
     */
    readonly release: (podId: string, shard: number, epoch: number) => Effect.Effect<boolean, ShardStoreError>
  }
>()("effect-cluster/sharding/ShardStore") {}
