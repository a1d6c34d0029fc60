/**
 * Which SQL errors are worth retrying. `SqlError.isRetryable` covers lost connections, deadlocks
 * and serialization failures; PostgreSQL also answers some passing conditions with an error code
 * that drivers report as unknown, e.g. `57P03 the database system is starting up` while a server
 * restarts. Those are transient too: retrying after a backoff succeeds.
 *
 * So is a full disk (SQLite's `SQLITE_FULL`, PostgreSQL's `53100 disk_full`): the write is refused
 * whole (SQLite rolls the transaction back, nothing acknowledged is lost) and succeeds again once
 * space is freed, so the engine retries it rather than failing executions or crashing the pod.
 * SQLite in WAL mode also needs room for its shared-memory file (`-shm`): a connection opened on a
 * full disk cannot even read (`SQLITE_IOERR_SHMSIZE`, "disk I/O error").
 */
import type { SqlError } from "effect/sql/SqlError"

/** SQLSTATEs of passing conditions: connection exceptions (class 08), shutdowns, too many clients. */
const TRANSIENT_SQLSTATE = /^(08...|57P0[1-3]|53300|40001|40P01)$/

/** SQLite's primary result code for "database or disk is full". */
const SQLITE_FULL = 13

/** SQLite's extended result code for "the -shm file could not be enlarged" (no space left for it). */
const SQLITE_IOERR_SHMSIZE = 4874

/** PostgreSQL's SQLSTATE for "could not extend file: No space left on device". */
const PG_DISK_FULL = "53100"

/** The driver's error behind `error`. */
const causeOf = (error: SqlError): unknown => (error.reason as { readonly cause?: unknown }).cause

/** The SQLSTATE the server sent with the error, if any. */
const sqlState = (error: SqlError): string | undefined => {
  const cause = causeOf(error)
  if (typeof cause !== "object" || cause === null || !("code" in cause)) return undefined
  return typeof cause.code === "string" ? cause.code : undefined
}

/** SQLite's extended result code, as `node:sqlite` reports it (`errcode`). */
const sqliteCode = (error: SqlError): number | undefined => {
  const cause = causeOf(error)
  if (typeof cause !== "object" || cause === null || !("errcode" in cause)) return undefined
  return typeof cause.errcode === "number" ? cause.errcode : undefined
}

/** Whether the statement failed because the disk holding the database is full. */
export const isDiskFull = (error: SqlError): boolean => {
  const code = sqliteCode(error)
  return (
    (code !== undefined && ((code & 0xff) === SQLITE_FULL || code === SQLITE_IOERR_SHMSIZE)) ||
    sqlState(error) === PG_DISK_FULL
  )
}

/** Whether retrying the operation that failed with `error` may succeed. */
export const isTransient = (error: SqlError): boolean => {
  if (error.isRetryable || isDiskFull(error)) return true
  const state = sqlState(error)
  return state !== undefined && TRANSIENT_SQLSTATE.test(state)
}
