/**
 * The embedded durable store: `DurableExecutionJournal` in one SQLite file (WAL mode,
 * `synchronous=FULL`) on Node's built-in `node:sqlite`. No server, no native build.
 *
 * A journal written by a process that was killed opens cleanly in the next one: SQLite's WAL
 * recovery discards the uncommitted tail, and every outcome the engine acknowledged was committed
 * with an fsync. Concurrent writes from many executions share commits (group commit).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { SqliteJournal, WorkflowEngine } from "effect-cluster"
 *
 * program.pipe(Effect.provide(SqliteJournal.layer({ filename: ".data/journal.db" })))
 * ```
 */
import { mkdirSync } from "node:fs"
import { dirname } from "node:path"
import { Cause, Effect, Layer, type Scope } from "effect"
import { SqlClient } from "effect/sql/SqlClient"
import type { SqlError } from "effect/sql/SqlError"
import { DurableExecutionJournal } from "../../workflow/DurableExecutionJournal.ts"
import { JournalError } from "../../workflow/WorkflowErrors.ts"
import type { GroupCommitStats } from "../sql/GroupCommit.ts"
import * as SqlJournal from "../sql/SqlJournal.ts"
import * as SqliteClient from "./SqliteClient.ts"

/** Where and how to store the journal. */
export interface SqliteJournalOptions {
  /** The database file; its directory is created if missing. */
  readonly filename: string
  /** Prefix of the table names. Default `effect_cluster_`. */
  readonly tablePrefix?: string | undefined
}

/**
 * Advisory writes (attempt markers) commit with `synchronous=NORMAL`: in WAL mode they survive a
 * process crash and only a power loss can drop them. Everything else waits for the fsync.
 */
const durabilityToggle = (sql: SqlClient) => {
  let current = true
  return (durable: boolean): Effect.Effect<void, SqlError> =>
    Effect.suspend(() => {
      if (durable === current) return Effect.void
      // Remember the new mode only once SQLite applied it: a failed switch back to FULL must be
      // retried before the next durable commit.
      return sql.unsafe(`PRAGMA synchronous = ${durable ? "FULL" : "NORMAL"}`).pipe(
        Effect.tap(() => Effect.sync(() => (current = durable))),
        Effect.asVoid
      )
    })
}

/** The journal on the `SqlClient` in context (a `SqliteClient`). */
export const make = (
  options: Omit<SqliteJournalOptions, "filename"> = {}
): Effect.Effect<
  DurableExecutionJournal["Service"] & { readonly stats: GroupCommitStats },
  SqlError,
  SqlClient | Scope.Scope
> =>
  Effect.gen(function* () {
    const sql = yield* SqlClient
    return yield* SqlJournal.make({
      tablePrefix: options.tablePrefix,
      dialect: "sqlite",
      setDurability: durabilityToggle(sql)
    })
  })

const toJournalError = (operation: string) => (error: SqlError) =>
  new JournalError({ operation, detail: error.message, transient: false })

/** A journal in the SQLite file `filename`, created and migrated if needed. */
export const layer = (options: SqliteJournalOptions): Layer.Layer<DurableExecutionJournal, JournalError> =>
  Layer.effect(DurableExecutionJournal, make(options)).pipe(
    Layer.provide(
      Layer.unwrap(
        Effect.sync(() => {
          mkdirSync(dirname(options.filename), { recursive: true })
          return SqliteClient.layer({ filename: options.filename })
        })
      )
    ),
    Layer.catchCause((cause) =>
      Layer.effect(
        DurableExecutionJournal,
        Effect.failCause(Cause.map(cause, toJournalError(`open ${options.filename}`)))
      )
    )
  )
