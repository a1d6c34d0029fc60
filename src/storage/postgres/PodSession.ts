/**
 * The liveness marker of a pod on PostgreSQL: a session the pod holds for its lifetime.
 *
 * The pod reserves a connection of its pool and takes a session-level advisory lock on it, keyed
 * by the table prefix and a random number. The server drops the lock when the session ends — the
 * process died, or its connection was cut, or `pg_terminate_backend`, or the server restarted — so
 * another pod that no longer sees the lock in `pg_locks` (readable by every role) knows the session
 * is gone, but not the process: it may run on, its path to the server hung, without hearing of it.
 * Such a pod is `suspect` (`endsWithProcess: false`): its shards wait until its lease has passed
 * (it stops by its own clock before), unless it is proven stopped otherwise. The marker is
 * `<backend pid>:<key>`: both must match, so neither a reused pid nor a reused key revives a dead
 * pod. A stopped process (SIGSTOP) keeps its session: it is judged by its lease.
 */
import { Effect, Random } from "effect"
import type { SqlClient } from "effect/sql/SqlClient"
import type { Connection } from "effect/sql/SqlConnection"
import { ShardStoreError } from "../../sharding/ShardingErrors.ts"
import { advisoryLockKey } from "../sql/Migrations.ts"
import type { LivenessMarker } from "../sql/SqlShardStore.ts"

/** The server's clock in epoch ms, as the store judges leases. */
const SERVER_NOW = "(extract(epoch from clock_timestamp()) * 1000)::bigint"

/** How long releasing the lock may take before the pod goes on stopping without it. */
const UNLOCK_TIMEOUT = "2 seconds"

/** Tries this many random keys before giving up (each is taken by another live pod). */
const ATTEMPTS = 8

/** Sessions of the pods of the journal with table prefix `prefix`. */
export const make = (sql: SqlClient, prefix: string): LivenessMarker => {
  // The first half of every pod's two-part advisory lock key: one space per table prefix.
  const space = advisoryLockKey(`${prefix}:pods`)
  /** Each pod's session in this process: its lease is renewed over it. */
  const sessions = new Map<string, { readonly connection: Connection; readonly marker: string }>()
  // Only this registration's row (its marker): a process paused past its lease, whose pod id a
  // newer process registered since, must not renew the newer one's lease.
  const renewal = `UPDATE "${prefix.replaceAll('"', '""')}pods" SET lease_until = ${SERVER_NOW} + $1, renewed_at = ${SERVER_NOW}
    WHERE pod_id = $2 AND session = $3 RETURNING pod_id`
  return {
    endsWithProcess: false,
    renew: (podId, ttlMillis) => {
      const session = sessions.get(podId)
      // The session is the pod's registration: once it fails, the others see the pod as suspect
      // and it cannot renew its lease any more. A failed renewal over it reports the pod as no
      // longer registered (it then stops everything and joins again with a new session, replacing
      // the row at once: this process released it); a renewal that merely hangs is left to the
      // pod's own clock.
      return session === undefined
        ? Effect.succeed(undefined)
        : session.connection.execute(renewal, [ttlMillis, podId, session.marker], undefined).pipe(
            Effect.map((rows) => rows.length > 0),
            Effect.catch(() =>
              Effect.sync(() => {
                sessions.delete(podId)
                return false
              })
            )
          )
    },
    hold: (podId) =>
      Effect.gen(function* () {
        const connection = yield* sql.reserve
        for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
          const key = yield* Random.nextIntBetween(1, 0x7fffffff)
          const [row] = yield* connection.execute(
            "SELECT pg_try_advisory_lock($1, $2) AS locked, pg_backend_pid() AS pid",
            [space, key],
            undefined
          )
          if (row?.locked === true) {
            const session = { connection, marker: `${row.pid}:${key}` }
            sessions.set(podId, session)
            yield* Effect.addFinalizer(() =>
              Effect.andThen(
                Effect.sync(() => {
                  if (sessions.get(podId) === session) sessions.delete(podId)
                }),
                // Bounded: over a connection that hangs, the session ends with the process anyway.
                Effect.ignore(
                  Effect.timeout(
                    connection.execute("SELECT pg_advisory_unlock($1, $2)", [space, key], undefined),
                    UNLOCK_TIMEOUT
                  )
                )
              )
            )
            return session.marker
          }
        }
        return yield* new ShardStoreError({
          operation: "register",
          detail: `no free session lock for pod ${JSON.stringify(podId)} after ${ATTEMPTS} tries`,
          transient: true
        })
      }),
    held: (markers) =>
      markers.length === 0
        ? Effect.succeed(new Set())
        : Effect.map(
            sql<{ readonly pid: unknown; readonly objid: unknown }>`SELECT pid, objid FROM pg_locks
              WHERE locktype = 'advisory' AND granted AND objsubid = 2 AND classid = ${space}
              AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
            (rows) => {
              const live = new Set(rows.map((row) => `${row.pid}:${row.objid}`))
              return new Set(markers.filter((marker) => live.has(marker)))
            }
          ),
    forget: () => Effect.void
  }
}
