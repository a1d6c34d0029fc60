/**
 * `sql.withTransaction`, with a lost connection kept a typed, transient failure.
 *
 * When the connection dies inside a transaction (the server ended the session, a reset, a server
 * restart), the client's ROLLBACK, or the cleanup of a failed COMMIT, fails on the dead connection
 * too, and `withTransaction` reports that as a defect (`Die(SqlError)`) instead of the failure it
 * is. A defect passes every `catch` and retry of a typed error, up to the caller's fiber: a user's
 * `send` would die where it must fail with a transient store error. The server rolls back a
 * transaction whose session ended, so nothing of it was committed, or its COMMIT's outcome is
 * unknown, as with any failed COMMIT; either way it is the typed `SqlError`, which the stores map
 * to their transient errors.
 *
 * The body's own typed failures win over the cleanup's defects (the body failed first); other
 * defects stay defects.
 */
import { Cause, Effect } from "effect"
import type { SqlClient } from "effect/sql/SqlClient"
import { isSqlError, type SqlError } from "effect/sql/SqlError"

/** Runs `effect` in a transaction of `sql` (nested: a savepoint), as `sql.withTransaction` does. */
export const inTransaction = <A, E, R>(
  sql: SqlClient,
  effect: Effect.Effect<A, E, R>
): Effect.Effect<A, E | SqlError, R> =>
  Effect.catchCause(sql.withTransaction(effect), (cause) => {
    const reasons = cause.reasons
    const failures = reasons.filter(Cause.isFailReason)
    const lost = reasons.filter(
      (reason): reason is Cause.Die => Cause.isDieReason(reason) && isSqlError(reason.defect)
    )
    const others = reasons.filter((reason) => Cause.isDieReason(reason) && !isSqlError(reason.defect))
    if (lost.length === 0 || others.length > 0 || reasons.some(Cause.isInterruptReason))
      return Effect.failCause(cause)
    return failures.length > 0
      ? Effect.failCause(Cause.fromReasons(failures))
      : Effect.fail(lost[0]!.defect as SqlError)
  })
