/**
 * `ShardStore` on effect's `SqlClient`: ownership in the journal's own database (SQLite or
 * PostgreSQL), so that the journal can check a write's shard epoch in the write's transaction.
 *
 * Tables (migration 7): `<prefix>cluster` (the shard count), `<prefix>pods` (leases and each pod's
 * liveness marker), `<prefix>shards` (owner, epoch, next owner), `<prefix>manager` (one row: the
 * manager's lease). Every change of a shard's owner raises its epoch by one, in one statement, so
 * on PostgreSQL it waits for the writes that hold the shard's row share-locked (fencing).
 *
 * Time: every time this store writes or judges (lease ends, `updated_at`) is the database's own
 * clock, never the program's `Clock`: a lease end one pod writes is compared by another pod, so
 * both must read one clock. PostgreSQL: the server's clock, so pods on machines with skewed clocks
 * agree on leases. SQLite: the host's clock, which every pod of a file shares (they are all on its
 * machine), whatever `Clock` each program provides (a test clock, a skewed one). Liveness beyond
 * the lease comes from a `LivenessMarker` the backend provides: a PostgreSQL session, an OS lock
 * on a file.
 */
import { Effect, Exit, Schema, Scope } from "effect"
import { SqlClient } from "effect/sql/SqlClient"
import type { SqlError } from "effect/sql/SqlError"
import type * as Statement from "effect/sql/Statement"
import { isValidShardCount, shardOf } from "../../sharding/ShardId.ts"
import { DuplicatePodError, ShardCountMismatchError, ShardStoreError } from "../../sharding/ShardingErrors.ts"
import {
  type Move,
  type PodLiveness,
  type PodRecord,
  type ShardRecord,
  ShardStore
} from "../../sharding/ShardStore.ts"
import { SqlNumber } from "./internal/columns.ts"
import { exclusiveGate } from "./internal/epochGate.ts"
import { shardStoreError } from "./internal/errors.ts"
import { inIntegers } from "./internal/lists.ts"
import { OwnershipLocked } from "./internal/OwnershipLocked.ts"
import { inTransaction } from "./internal/transaction.ts"
import { advisoryLockKey } from "./Migrations.ts"

/**
 * How a backend tells a pod's process is provably gone: the pod holds a marker for its lifetime
 * (a PostgreSQL session, an OS file lock), which the server or the kernel drops when it dies.
 */
export interface LivenessMarker {
  /**
   * Whether a marker that is no longer held proves the pod stopped: true when only the pod's
   * process can release it, by dying or on purpose after stopping its runs (an OS lock); false when
   * it can also end while the process runs on (a PostgreSQL session: `pg_terminate_backend`, a
   * reset connection, a server restart), so that the pod is `suspect` until its lease has passed.
   */
  readonly endsWithProcess: boolean
  /** Takes a new marker for `podId`, held until the scope closes; returns what its row records. */
  readonly hold: (podId: string) => Effect.Effect<string, SqlError | ShardStoreError, Scope.Scope>
  /** The markers among `markers` that are still held. */
  readonly held: (
    markers: ReadonlyArray<string>
  ) => Effect.Effect<ReadonlySet<string>, SqlError | ShardStoreError>
  /** Cleans up after a removed pod's marker (e.g. deletes its lock file). */
  readonly forget: (marker: string) => Effect.Effect<void>
  /**
   * Renews `podId`'s lease over the marker's own connection (PostgreSQL: the pod's session), so
   * that a pool busy with the pod's work never delays a renewal into a false expiry. Returns
   * whether the pod is still registered, or undefined when this pod holds no such connection (the
   * store then renews through its pool).
   */
  readonly renew?: (
    podId: string,
    ttlMillis: number
  ) => Effect.Effect<boolean | undefined, SqlError | ShardStoreError>
}

/** What the store needs besides the `SqlClient`. */
export interface SqlShardStoreOptions {
  /** The journal's table prefix. Default `effect_cluster_`. */
  readonly tablePrefix?: string | undefined
  readonly dialect: "sqlite" | "pg"
  readonly liveness: LivenessMarker
}

const PodRow = Schema.Struct({
  pod_id: Schema.String,
  lease_until: SqlNumber,
  registered_at: SqlNumber,
  renewed_at: SqlNumber,
  session: Schema.String,
  address: Schema.NullOr(Schema.String),
  leaving_since: Schema.NullOr(SqlNumber)
})

const ShardRow = Schema.Struct({
  shard_id: SqlNumber,
  owner: Schema.NullOr(Schema.String),
  epoch: SqlNumber,
  next_owner: Schema.NullOr(Schema.String),
  updated_at: SqlNumber
})

const ManagerRow = Schema.Struct({ pod_id: Schema.NullOr(Schema.String), lease_until: SqlNumber })

const toShard = (row: typeof ShardRow.Type): ShardRecord => ({
  shard: row.shard_id,
  owner: row.owner,
  epoch: row.epoch,
  nextOwner: row.next_owner,
  updatedAt: row.updated_at
})

/**
 * A pod's liveness. A marker no longer held proves the pod stopped when only its process could have
 * released it (`proven`: an OS lock; or a registration of this very process, released after its
 * runs stopped); otherwise (a session the server ended) the pod may still run until its lease has
 * passed, by the same slack as an expired lease: it stops by its own clock TTL/5 before.
 */
const liveness = (
  row: typeof PodRow.Type,
  held: ReadonlySet<string>,
  now: number,
  proven: (marker: string) => boolean
): PodLiveness =>
  held.has(row.session)
    ? row.lease_until > now
      ? "live"
      : "expired"
    : row.lease_until > now && !proven(row.session)
      ? "suspect"
      : "gone"

/** The lease TTL the store assumes until a pod registers through it (the pods' default). */
const DEFAULT_TTL_MILLIS = 10_000

/** Executions given their shard per statement when `init` backfills old rows. */
const BACKFILL_PAGE = 1_000

/** Builds the shard store on the `SqlClient` in context. The journal's migrations must have run. */
export const make = (options: SqlShardStoreOptions): Effect.Effect<ShardStore["Service"], never, SqlClient> =>
  Effect.gen(function* () {
    const sql = yield* SqlClient
    const prefix = options.tablePrefix ?? "effect_cluster_"
    const pg = options.dialect === "pg"
    const cluster = sql(`${prefix}cluster`)
    const pods = sql(`${prefix}pods`)
    const shards = sql(`${prefix}shards`)
    const manager = sql(`${prefix}manager`)
    const executions = sql(`${prefix}executions`)
    const decodePods = Schema.decodeUnknownEffect(Schema.Array(PodRow))
    const decodeShards = Schema.decodeUnknownEffect(Schema.Array(ShardRow))
    const decodeManager = Schema.decodeUnknownEffect(Schema.Array(ManagerRow))
    const decodeNumbers = Schema.decodeUnknownEffect(Schema.Array(Schema.Struct({ value: SqlNumber })))

    /**
     * The store's time in epoch ms: the server's clock on PostgreSQL; on SQLite the host's clock
     * (`Date.now()`, what SQLite's own `unixepoch()` reads too; a query for it would wait behind
     * every statement queued on the file's one connection, and delay renewals under load). Not
     * effect's `Clock`: with it, a pod whose clock ran half a lease slow wrote lease ends that a
     * pod whose clock ran half a lease fast judged expired the moment they were written, and took
     * the slow pod's shards while it still ran them (`test/cluster/ClockSkew.test.ts`).
     */
    const now: Effect.Effect<number, SqlError | Schema.SchemaError> = pg
      ? Effect.map(
          Effect.flatMap(
            sql`SELECT (extract(epoch from clock_timestamp()) * 1000)::bigint AS value`,
            decodeNumbers
          ),
          (rows) => rows[0]!.value
        )
      : Effect.sync(() => Date.now())

    /** Probes for tests (`OwnershipLocked`): nothing in programs. */
    const locked = yield* OwnershipLocked
    /**
     * The shortest lease TTL of the pods registered through this store: it bounds how long an
     * ownership transaction waits for a lock, and how long it may stay open (see `transaction`).
     */
    let ttl = DEFAULT_TTL_MILLIS
    let registered = false
    /** How long an ownership operation waits for a lock before it fails `busy`: TTL/10. */
    const lockTimeout = () => `${Math.max(10, Math.round(ttl / 10))}ms`

    /**
     * One transaction. On PostgreSQL the ownership operations that read, decide and write take a
     * transaction-level advisory lock first (per table prefix): they are rare and short, and
     * serializing them makes every decision on a stable view (SQLite's `BEGIN IMMEDIATE` already
     * serializes writers).
     *
     * No pod waits unboundedly on a lock another pod holds: a pod may freeze inside this
     * transaction (SIGSTOP, a long GC pause, a suspended VM) and hold the lock until it resumes.
     * On PostgreSQL every lock wait of the transaction ends after TTL/10 (`lock_timeout`: the
     * operation fails `busy` and the pod tries again at its next round, renewing and running its
     * shards meanwhile), and the server ends a transaction left idle for TTL/2
     * (`idle_in_transaction_session_timeout`: a frozen holder loses its transaction, its
     * connection and its locks, so the others take the manager's lease and the frozen pod's
     * shards once its lease ran out). SQLite cannot take a lock from a frozen writer: the busy
     * timeout bounds each wait, but every write of every pod waits until the writer resumes.
     */
    const transaction = <A, E>(operation: string, body: Effect.Effect<A, E>) =>
      inTransaction(
        sql,
        pg
          ? Effect.andThen(
              sql`SELECT set_config('lock_timeout', ${lockTimeout()}, true),
                set_config('idle_in_transaction_session_timeout', ${`${Math.max(100, Math.round(ttl / 2))}ms`}, true)`,
              Effect.andThen(
                sql`SELECT pg_advisory_xact_lock(${advisoryLockKey(`${prefix}:ownership`)})`,
                Effect.andThen(locked(operation), body)
              )
            )
          : Effect.andThen(locked(operation), body)
      )

    /**
     * PostgreSQL: locks the shard rows `where` selects, in shard order, before a statement changes
     * several: writes share-lock their shards in the same order, so the two never deadlock. The
     * epoch gate first (`internal/epochGate.ts`): the writes already in flight are waited for, and
     * none that comes later can keep this waiting.
     */
    const lockShards = (where: Statement.Fragment) =>
      pg
        ? Effect.andThen(
            exclusiveGate(sql, prefix),
            sql`SELECT shard_id FROM ${shards} WHERE ${where} ORDER BY shard_id FOR UPDATE`
          )
        : Effect.void

    /** Releases every shard a dead pod owns (epoch + 1) and forgets it as a handover target. */
    const releaseDead = (podId: string, at: number) =>
      Effect.all(
        [
          lockShards(sql`owner = ${podId} OR next_owner = ${podId}`),
          sql`UPDATE ${shards} SET owner = NULL, next_owner = NULL, epoch = epoch + 1, updated_at = ${at}
            WHERE owner = ${podId}`,
          sql`UPDATE ${shards} SET next_owner = NULL, updated_at = ${at} WHERE next_owner = ${podId}`,
          sql`UPDATE ${manager} SET pod_id = NULL, lease_until = 0 WHERE pod_id = ${podId}`
        ],
        { discard: true }
      )

    const selectPod = (podId: string) =>
      Effect.map(
        Effect.flatMap(sql`SELECT * FROM ${pods} WHERE pod_id = ${podId}`, decodePods),
        (rows) => rows[0]
      )

    /**
     * The markers of this process's registrations whose scope closed: the pod stopped its runs
     * before (`Pod` closes it after stopping them), so their rows are gone to this process at once.
     */
    const released = new Set<string>()
    const proven = (marker: string) => options.liveness.endsWithProcess || released.has(marker)

    const podLiveness = (row: typeof PodRow.Type, at: number) =>
      Effect.map(options.liveness.held([row.session]), (held) => liveness(row, held, at, proven))

    /** Gives every execution stored before migration 7 its shard, a page at a time. */
    const backfill = (shardCount: number) =>
      Effect.gen(function* () {
        const done = yield* sql`SELECT value FROM ${cluster} WHERE name = 'shards_backfilled'`
        if (done.length > 0) return
        let after: string | undefined
        while (true) {
          const page = yield* sql<{
            readonly execution_id: string
            readonly shard: unknown
          }>`SELECT execution_id, shard
            FROM ${executions}${after === undefined ? sql`` : sql` WHERE execution_id > ${after}`}
            ORDER BY execution_id LIMIT ${BACKFILL_PAGE}`
          const missing = page
            .filter((row) => row.shard === null)
            .map((row) => ({ i: row.execution_id, s: shardOf(row.execution_id, shardCount) }))
          if (missing.length > 0) {
            const json = JSON.stringify(missing)
            yield* pg
              ? sql`UPDATE ${executions} AS e SET shard = r.s
                  FROM json_to_recordset(${json}::json) AS r(i text, s int)
                  WHERE e.execution_id = r.i AND e.shard IS NULL`
              : sql`UPDATE ${executions} SET shard = r.s
                  FROM (SELECT json_extract(value, '$.i') AS i, json_extract(value, '$.s') AS s FROM json_each(${json})) AS r
                  WHERE ${executions}.execution_id = r.i AND ${executions}.shard IS NULL`
          }
          if (page.length < BACKFILL_PAGE) break
          after = page[page.length - 1]!.execution_id
        }
        yield* sql`INSERT INTO ${cluster} (name, value) VALUES ('shards_backfilled', 1) ON CONFLICT (name) DO NOTHING`
      })

    /** The moves as a relation `r(shard, from_pod, to_pod)`, one JSON parameter; first move of a shard wins. */
    const movesRelation = (moves: ReadonlyArray<Move>) => {
      const seen = new Set<number>()
      const rows = moves.flatMap((move) => {
        if (seen.has(move.shard)) return []
        seen.add(move.shard)
        return [{ shard: move.shard, from_pod: move.from, to_pod: move.to }]
      })
      const json = JSON.stringify(rows)
      return {
        shards: rows.map((row) => row.shard),
        relation: pg
          ? sql`json_to_recordset(${json}::json) AS r(shard int, from_pod text, to_pod text)`
          : sql`(SELECT json_extract(value, '$.shard') AS shard, json_extract(value, '$.from_pod') AS from_pod,
              json_extract(value, '$.to_pod') AS to_pod FROM json_each(${json})) AS r`
      }
    }
    const sameOwner = pg ? sql`s.owner IS NOT DISTINCT FROM r.from_pod` : sql`s.owner IS r.from_pod`
    const shardIds = (rows: ReadonlyArray<{ readonly shard_id: unknown }>) =>
      rows.map((row) => Number(row.shard_id)).sort((a, b) => a - b)

    /** Applies `change` to the shards of `moves` whose owner is still the move's `from`. */
    const applyMoves = (
      operation: string,
      moves: ReadonlyArray<Move>,
      change: (at: number) => Statement.Fragment,
      ownerIs: Statement.Fragment
    ) =>
      Effect.gen(function* () {
        if (moves.length === 0) return []
        const { shards: ids, relation } = movesRelation(moves)
        const at = yield* now
        return yield* transaction(
          operation,
          Effect.andThen(
            lockShards(inIntegers(sql, options.dialect, "shard_id", ids)),
            Effect.map(
              sql<{ readonly shard_id: unknown }>`UPDATE ${shards} AS s SET ${change(at)} FROM ${relation}
                WHERE s.shard_id = r.shard AND ${ownerIs} RETURNING shard_id`,
              shardIds
            )
          )
        )
      })

    /**
     * The marker of each pod this process registered: its incarnation. A renewal names it, so a
     * process paused past its lease cannot renew the lease of a newer process with its pod id.
     */
    const registrations = new Map<string, string>()

    const register = (podId: string, ttlMillis: number, address: string | undefined) =>
      Effect.gen(function* () {
        // The marker lives as long as the caller's scope, or ends at once if registering fails.
        const own = yield* Scope.fork(yield* Effect.scope)
        ttl = registered ? Math.min(ttl, ttlMillis) : ttlMillis
        registered = true
        const marker = yield* options.liveness.hold(podId).pipe(Scope.provide(own))
        registrations.set(podId, marker)
        yield* Scope.addFinalizer(
          own,
          Effect.sync(() => {
            if (registrations.get(podId) === marker) registrations.delete(podId)
            released.add(marker)
          })
        )
        const outcome = yield* transaction(
          "register",
          Effect.gen(function* () {
            const at = yield* now
            const existing = yield* selectPod(podId)
            if (existing !== undefined) {
              const before = yield* podLiveness(existing, at)
              if (before === "live") {
                return yield* new DuplicatePodError({ podId, leaseUntil: existing.lease_until })
              }
              if (before === "suspect") {
                // An earlier process with this id lost its session, but may still run its shards
                // until its lease passes: wait for that (`Pod` retries a busy registration).
                return yield* new ShardStoreError({
                  operation: "register",
                  detail: `an earlier process of pod ${JSON.stringify(podId)} lost its session but may still be running until its lease ends (${existing.lease_until}, store clock)`,
                  transient: true,
                  busy: true
                })
              }
              yield* releaseDead(podId, at)
              yield* sql`DELETE FROM ${pods} WHERE pod_id = ${podId}`
            }
            yield* sql`INSERT INTO ${pods} ${sql.insert({
              pod_id: podId,
              lease_until: at + ttlMillis,
              registered_at: at,
              renewed_at: at,
              session: marker,
              address: address ?? null
            })}`
            return { at, replaced: existing?.session }
          })
        ).pipe(Effect.onError(() => Scope.close(own, Exit.void)))
        if (outcome.replaced !== undefined) {
          released.delete(outcome.replaced)
          yield* options.liveness.forget(outcome.replaced)
        }
        return outcome.at
      })

    const removePod = (podId: string) =>
      Effect.gen(function* () {
        const removed = yield* transaction(
          "removePod",
          Effect.gen(function* () {
            const at = yield* now
            const row = yield* selectPod(podId)
            if (row === undefined) return undefined
            const state = yield* podLiveness(row, at)
            if (state === "live" || state === "suspect") return undefined
            yield* releaseDead(podId, at)
            yield* sql`DELETE FROM ${pods} WHERE pod_id = ${podId}`
            return row.session
          })
        )
        if (removed !== undefined) {
          released.delete(removed)
          yield* options.liveness.forget(removed)
        }
      })

    const evict = (podId: string, registeredAt: number) =>
      Effect.gen(function* () {
        const removed = yield* transaction(
          "evict",
          Effect.gen(function* () {
            const at = yield* now
            const row = yield* selectPod(podId)
            if (row === undefined || row.registered_at !== registeredAt) return undefined
            if ((yield* podLiveness(row, at)) === "live") return undefined
            yield* releaseDead(podId, at)
            yield* sql`DELETE FROM ${pods} WHERE pod_id = ${podId}`
            return row.session
          })
        )
        if (removed === undefined) return false
        released.delete(removed)
        yield* options.liveness.forget(removed)
        return true
      })

    const byPodId = pg ? sql`ORDER BY pod_id COLLATE "C"` : sql`ORDER BY pod_id`

    const store: ShardStore["Service"] = ShardStore.of({
      init: (shardCount) =>
        Effect.gen(function* () {
          if (!isValidShardCount(shardCount)) {
            return yield* new ShardStoreError({
              operation: "init",
              detail: `${shardCount} is not a shard count (an integer from 1 to 65536)`,
              transient: false
            })
          }
          yield* transaction(
            "init",
            Effect.gen(function* () {
              const recorded = yield* Effect.flatMap(
                sql`SELECT value FROM ${cluster} WHERE name = 'shard_count'`,
                decodeNumbers
              )
              const [count] = recorded
              if (count !== undefined) {
                if (count.value !== shardCount) {
                  return yield* new ShardCountMismatchError({ configured: shardCount, recorded: count.value })
                }
                return
              }
              const at = yield* now
              yield* sql`INSERT INTO ${cluster} (name, value) VALUES ('shard_count', ${shardCount})`
              yield* sql`WITH RECURSIVE numbers (n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM numbers WHERE n < ${shardCount})
                INSERT INTO ${shards} (shard_id, owner, epoch, next_owner, updated_at)
                SELECT n, NULL, 0, NULL, ${at} FROM numbers`
            })
          )
          yield* backfill(shardCount)
        }).pipe(
          Effect.mapError((error) =>
            error._tag === "SqlError" || error._tag === "SchemaError" ? shardStoreError("init")(error) : error
          )
        ),
      register: (podId, ttlMillis, address) =>
        register(podId, ttlMillis, address).pipe(
          Effect.mapError((error) =>
            error._tag === "SqlError" || error._tag === "SchemaError"
              ? shardStoreError("register", `pod ${JSON.stringify(podId)} in ${prefix}pods`)(error)
              : error
          )
        ),
      renew: (podId, ttlMillis) => {
        const viaPool = Effect.flatMap(
          now,
          (at) =>
            sql`UPDATE ${pods} SET lease_until = ${at + ttlMillis}, renewed_at = ${at}
            WHERE pod_id = ${podId} AND session = ${registrations.get(podId) ?? ""} RETURNING pod_id`
        ).pipe(Effect.map((rows) => rows.length > 0))
        const own = options.liveness.renew?.(podId, ttlMillis)
        return (
          own === undefined
            ? viaPool
            : Effect.flatMap(own, (renewed) => (renewed === undefined ? viaPool : Effect.succeed(renewed)))
        ).pipe(
          Effect.mapError((error) =>
            error._tag === "ShardStoreError" ? error : shardStoreError("renew")(error)
          )
        )
      },
      unregister: (podId) =>
        Effect.flatMap(now, (at) =>
          transaction(
            "unregister",
            Effect.all(
              [
                lockShards(sql`owner = ${podId} OR next_owner = ${podId}`),
                sql`UPDATE ${shards} SET owner = CASE WHEN next_owner = ${podId} THEN NULL ELSE next_owner END,
                  next_owner = NULL, epoch = epoch + 1, updated_at = ${at} WHERE owner = ${podId}`,
                sql`UPDATE ${shards} SET next_owner = NULL, updated_at = ${at} WHERE next_owner = ${podId}`,
                sql`UPDATE ${manager} SET pod_id = NULL, lease_until = 0 WHERE pod_id = ${podId}`,
                sql`DELETE FROM ${pods} WHERE pod_id = ${podId}`
              ],
              { discard: true }
            )
          )
        ).pipe(Effect.mapError(shardStoreError("unregister"))),
      leave: (podId) =>
        Effect.flatMap(
          now,
          (at) => sql`UPDATE ${pods} SET leaving_since = ${at} WHERE pod_id = ${podId}`
        ).pipe(Effect.asVoid, Effect.mapError(shardStoreError("leave"))),
      removePod: (podId) =>
        removePod(podId).pipe(
          Effect.mapError((error) =>
            error._tag === "ShardStoreError" ? error : shardStoreError("removePod")(error)
          )
        ),
      evict: (podId, registeredAt) =>
        evict(podId, registeredAt).pipe(
          Effect.mapError((error) =>
            error._tag === "ShardStoreError" ? error : shardStoreError("evict")(error)
          )
        ),
      pods: Effect.gen(function* () {
        const rows = yield* Effect.flatMap(sql`SELECT * FROM ${pods} ${byPodId}`, decodePods)
        const held = yield* options.liveness.held(rows.map((row) => row.session))
        const at = yield* now
        return rows.map(
          (row): PodRecord => ({
            podId: row.pod_id,
            leaseUntil: row.lease_until,
            registeredAt: row.registered_at,
            renewedAt: row.renewed_at,
            liveness: liveness(row, held, at, proven),
            address: row.address,
            leaving: row.leaving_since !== null
          })
        )
      }).pipe(
        Effect.mapError((error) =>
          error._tag === "ShardStoreError" ? error : shardStoreError("pods")(error)
        )
      ),
      shards: Effect.flatMap(sql`SELECT * FROM ${shards} ORDER BY shard_id`, decodeShards).pipe(
        Effect.map((rows) => rows.map(toShard)),
        Effect.mapError(shardStoreError("shards", `shards in ${prefix}shards`))
      ),
      shardsOf: (podId) =>
        Effect.flatMap(
          sql`SELECT * FROM ${shards} WHERE owner = ${podId} ORDER BY shard_id`,
          decodeShards
        ).pipe(
          Effect.map((rows) => rows.map(toShard)),
          Effect.mapError(shardStoreError("shardsOf", `shards in ${prefix}shards`))
        ),
      acquireManager: (podId, ttlMillis) => {
        /**
         * Whether `podId` may take the lease: free, its own, expired, or its holder is gone (a
         * suspect holder, whose session ended while it may still run, keeps it until it passes).
         */
        const free = (locking: boolean) =>
          Effect.gen(function* () {
            const at = yield* now
            const [lease] = yield* Effect.flatMap(
              sql`SELECT pod_id, lease_until FROM ${manager} WHERE id = 1${pg && locking ? sql` FOR UPDATE` : sql``}`,
              decodeManager
            )
            const holderId = lease?.pod_id ?? null
            if (holderId === null || holderId === podId || lease!.lease_until <= at) return { at, free: true }
            const holder = yield* selectPod(holderId)
            return { at, free: holder === undefined || (yield* podLiveness(holder, at)) === "gone" }
          })
        // Most rounds of most pods find the lease held by a live manager: a read answers them, with
        // no write transaction (on SQLite, none of the file's writer lock).
        return free(false).pipe(
          Effect.flatMap(({ free: maybe }) =>
            !maybe
              ? Effect.succeed(false)
              : transaction(
                  "acquireManager",
                  Effect.gen(function* () {
                    const { at, free: taken } = yield* free(true)
                    if (taken) {
                      yield* sql`UPDATE ${manager} SET pod_id = ${podId}, lease_until = ${at + ttlMillis} WHERE id = 1`
                    }
                    return taken
                  })
                )
          ),
          Effect.mapError((error) =>
            error._tag === "ShardStoreError" ? error : shardStoreError("acquireManager")(error)
          )
        )
      },
      manager: Effect.flatMap(
        sql`SELECT pod_id, lease_until FROM ${manager} WHERE pod_id IS NOT NULL`,
        decodeManager
      ).pipe(
        Effect.map((rows) => {
          const [row] = rows
          return row?.pod_id == null ? undefined : { podId: row.pod_id, leaseUntil: row.lease_until }
        }),
        Effect.mapError(shardStoreError("manager"))
      ),
      assign: (moves) =>
        applyMoves(
          "assign",
          moves,
          (at) => sql`owner = r.to_pod, next_owner = NULL, epoch = epoch + 1, updated_at = ${at}`,
          sameOwner
        ).pipe(Effect.mapError(shardStoreError("assign"))),
      requestHandover: (moves) =>
        applyMoves(
          "requestHandover",
          moves.filter((move) => move.from !== null),
          (at) => sql`next_owner = r.to_pod, updated_at = ${at}`,
          sql`s.owner = r.from_pod`
        ).pipe(Effect.mapError(shardStoreError("requestHandover"))),
      release: (podId, shard, epoch) =>
        Effect.flatMap(now, (at) =>
          pg
            ? // One statement, its lock waits bounded as an ownership transaction's (TTL/10): a
              // writer that hangs holding the epoch gate fails this release, retried at the next
              // round, instead of holding every fenced write of the store queued behind it.
              sql`WITH bounded AS (SELECT set_config('lock_timeout', ${lockTimeout()}, true)),
                gate AS (${exclusiveGate(sql, prefix)} FROM bounded)
                UPDATE ${shards} SET owner = next_owner, next_owner = NULL, epoch = epoch + 1, updated_at = ${at}
                FROM gate WHERE shard_id = ${shard} AND owner = ${podId} AND epoch = ${epoch} RETURNING shard_id`
            : sql`UPDATE ${shards} SET owner = next_owner, next_owner = NULL, epoch = epoch + 1, updated_at = ${at}
                WHERE shard_id = ${shard} AND owner = ${podId} AND epoch = ${epoch} RETURNING shard_id`
        ).pipe(
          Effect.map((rows) => rows.length > 0),
          Effect.mapError(shardStoreError("release"))
        )
    })
    return store
  })
