/**
 * Which SQL errors are worth retrying. `SqlError.isRetryable` covers lost connections, deadlocks
 * and serialization failures; PostgreSQL also answers some passing conditions with an error code
 * that drivers report as unknown, e.g. `57P03 the database system is starting up` while a server
 * restarts. Those are transient too: retrying after a backoff succeeds.
 */
import type { SqlError } from "effect/sql/SqlError"

/** SQLSTATEs of passing conditions: connection exceptions (class 08), shutdowns, too many clients. */
const TRANSIENT_SQLSTATE = /^(08...|57P0[1-3]|53300|40001|40P01)$/

/** The SQLSTATE the server sent with the error, if any. */
const sqlState = (error: SqlError): string | undefined => {
  const cause: unknown = (error.reason as { readonly cause?: unknown }).cause
  if (typeof cause !== "object" || cause === null || !("code" in cause)) return undefined
  return typeof cause.code === "string" ? cause.code : undefined
}

/** Whether retrying the operation that failed with `error` may succeed. */
export const isTransient = (error: SqlError): boolean => {
  if (error.isRetryable) return true
  const state = sqlState(error)
  return state !== undefined && TRANSIENT_SQLSTATE.test(state)
}
