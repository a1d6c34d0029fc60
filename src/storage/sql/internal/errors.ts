/**
 * `JournalError`s (and the other stores' errors) of the SQL stores: the driver's and the server's
 * messages, whether the fault is transient, and which stored row did not decode.
 */
import { Schema } from "effect"
import type { SqlError } from "effect/sql/SqlError"
import { EntityStoreError } from "../../../sharding/EntityStore.ts"
import { ShardStoreError } from "../../../sharding/ShardingErrors.ts"
import { JournalError } from "../../../workflow/WorkflowErrors.ts"
import { isDiskFull, isTransient } from "../transient.ts"

/**
 * The driver's message and the server's (e.g. `Query failed: canceling statement due to ...`),
 * led by what to do when the disk holding the database is full.
 */
export const describeSqlError = (error: SqlError): string => {
  const cause: unknown = (error.reason as { readonly cause?: unknown }).cause
  const detail =
    typeof cause === "object" && cause !== null && "message" in cause && typeof cause.message === "string"
      ? cause.message
      : undefined
  const described =
    detail === undefined || detail === "" || error.message.includes(detail)
      ? error.message
      : `${error.message}: ${detail}`
  return isDiskFull(error)
    ? `the disk holding the database is full; writes are refused whole until space is freed (${described})`
    : described
}

/** Whether the database cancelled the statement (PostgreSQL's SQLSTATE 57014). */
const isCancelled = (error: SqlError): boolean => error.reason._tag === "StatementTimeoutError"

/** The journal's statement timeout, when it has one, and what the failed statement was for. */
export interface StatementContext {
  /** e.g. `write of execution "x"`, `list of unfinished executions of shard 3`. */
  readonly purpose: string
  /** The statement timeout of the journal's connections; undefined or 0: none. */
  readonly timeoutMillis: number | undefined
}

/**
 * A `JournalError` for `operation`. A row that does not decode is not transient: retrying reads
 * the same row. `what` names the rows, e.g. `execution "x" in prefix_executions`. A statement
 * cancelled at the journal's statement timeout names its purpose and the timeout (`statement`).
 */
export const journalError =
  (operation: string, what?: string, statement?: StatementContext) =>
  (error: SqlError | Schema.SchemaError): JournalError => {
    if (Schema.isSchemaError(error))
      return new JournalError({
        operation,
        detail: `the stored ${what ?? "row"} does not decode: ${error.message}`,
        transient: false
      })
    const timeoutMillis = statement?.timeoutMillis
    // A cancel with no timeout configured came from someone else (pg_cancel_backend): not a timeout.
    if (statement !== undefined && timeoutMillis !== undefined && timeoutMillis > 0 && isCancelled(error))
      return new JournalError({
        operation: statement.purpose,
        detail: describeSqlError(error),
        transient: true,
        timeoutMillis
      })
    return new JournalError({ operation, detail: describeSqlError(error), transient: isTransient(error) })
  }

/**
 * A `ShardStoreError` for `operation`, as `journalError` builds a `JournalError`. A lock wait that
 * ran out (PostgreSQL's `lock_timeout`, SQLite's busy timeout) is `busy`: another process holds
 * the lock, perhaps frozen inside its transaction, and the pod tries again at its next round.
 */
export const shardStoreError =
  (operation: string, what?: string) =>
  (error: SqlError | Schema.SchemaError | JournalError): ShardStoreError =>
    error instanceof JournalError
      ? new ShardStoreError({ operation, transient: error.transient, message: error.message })
      : Schema.isSchemaError(error)
        ? new ShardStoreError({
            operation,
            detail: `the stored ${what ?? "row"} does not decode: ${error.message}`,
            transient: false
          })
        : error.reason._tag === "LockTimeoutError"
          ? new ShardStoreError({
              operation,
              detail: `another process held a lock it needed past its bounded wait (${describeSqlError(error)})`,
              transient: true,
              busy: true
            })
          : new ShardStoreError({ operation, detail: describeSqlError(error), transient: isTransient(error) })

/**
 * An `EntityStoreError` for `operation`, transient as a `JournalError` would be: a lost connection
 * or a deadlock is worth retrying, a row that does not decode is not.
 */
export const entityStoreError =
  (operation: string, what?: string) =>
  (error: SqlError | Schema.SchemaError): EntityStoreError => {
    const decoding = Schema.isSchemaError(error)
    const transient = !decoding && isTransient(error)
    const detail = decoding
      ? `the stored ${what ?? "row"} does not decode: ${error.message}`
      : describeSqlError(error)
    return new EntityStoreError({ operation, transient, detail })
  }
