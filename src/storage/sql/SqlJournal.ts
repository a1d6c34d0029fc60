/**
 * `DurableExecutionJournal` on effect's `SqlClient`: the SQL shared by the embedded SQLite store
 * and PostgreSQL. Writes go through group commit; reads are plain queries. Rows are decoded with
 * schemas at this boundary, so a row edited by hand into nonsense gives a `JournalError` naming
 * the table and field instead of reaching the engine.
 */
import { Effect, Option, Schema, type Scope } from "effect"
import { SqlClient } from "effect/sql/SqlClient"
import type { SqlError } from "effect/sql/SqlError"
import {
  type DurableExecutionJournal,
  type ExecutionRecord,
  ExecutionStatus,
  isDurable,
  type JournalWrite,
  type StepRecord
} from "../../workflow/DurableExecutionJournal.ts"
import { JournalError } from "../../workflow/WorkflowErrors.ts"
import * as GroupCommit from "./GroupCommit.ts"
import { migrate } from "./Migrations.ts"

/** Options shared by the SQL backends. */
export interface SqlJournalOptions {
  /** Prefix of every table name, so the journal can share a database. Default `effect_cluster_`. */
  readonly tablePrefix?: string | undefined
  /** How the backend relaxes durability for advisory writes (see `GroupCommit`). */
  readonly setDurability: (durable: boolean) => Effect.Effect<void, SqlError>
}

// Drivers return BIGINT as number (SQLite) or string (PostgreSQL), booleans as 0/1 or true/false.
const SqlNumber = Schema.Union([Schema.Number, Schema.NumberFromString])
const SqlBoolean = Schema.Union([Schema.Boolean, Schema.Number])

const ExecutionRow = Schema.Struct({
  execution_id: Schema.String,
  workflow: Schema.String,
  request: Schema.String,
  status: ExecutionStatus,
  result: Schema.NullOr(Schema.String),
  reason: Schema.NullOr(Schema.String),
  interrupt_requested: SqlBoolean,
  created_at: SqlNumber,
  updated_at: SqlNumber
})

const StepRow = Schema.Struct({
  execution_id: Schema.String,
  step_key: Schema.String,
  activity_id: Schema.String,
  seq: SqlNumber,
  after_count: SqlNumber,
  attempt: SqlNumber,
  outcome: Schema.NullOr(Schema.String),
  started_at: SqlNumber,
  completed_at: Schema.NullOr(SqlNumber)
})

const toExecution = (row: typeof ExecutionRow.Type): ExecutionRecord => ({
  executionId: row.execution_id,
  workflow: row.workflow,
  request: row.request,
  status: row.status,
  result: row.result,
  reason: row.reason,
  interruptRequested: row.interrupt_requested === true || row.interrupt_requested === 1,
  createdAt: row.created_at,
  updatedAt: row.updated_at
})

const toStep = (row: typeof StepRow.Type): StepRecord => ({
  executionId: row.execution_id,
  stepKey: row.step_key,
  activityId: row.activity_id,
  seq: row.seq,
  after: row.after_count,
  attempt: row.attempt,
  outcome: row.outcome,
  startedAt: row.started_at,
  completedAt: row.completed_at
})

const journalError =
  (operation: string) =>
  (error: SqlError | Schema.SchemaError): JournalError =>
    Schema.isSchemaError(error)
      ? new JournalError({
          operation,
          message: `a stored row does not decode: ${error.message}`,
          transient: false
        })
      : new JournalError({ operation, message: error.message, transient: error.isRetryable })

/** Builds the journal on the `SqlClient` in context, running migrations first. */
export const make = (
  options: SqlJournalOptions
): Effect.Effect<
  DurableExecutionJournal["Service"] & { readonly stats: GroupCommit.GroupCommitStats },
  SqlError,
  SqlClient | Scope.Scope
> =>
  Effect.gen(function* () {
    const sql = yield* SqlClient
    const prefix = options.tablePrefix ?? "effect_cluster_"
    yield* migrate(sql, prefix)
    const executions = sql(`${prefix}executions`)
    const steps = sql(`${prefix}steps`)
    const group = yield* GroupCommit.make(sql, options.setDurability)
    const decodeExecutions = Schema.decodeUnknownEffect(Schema.Array(ExecutionRow))
    const decodeSteps = Schema.decodeUnknownEffect(Schema.Array(StepRow))

    const selectExecution = (executionId: string) =>
      sql`SELECT * FROM ${executions} WHERE execution_id = ${executionId}`.pipe(
        Effect.flatMap(decodeExecutions),
        Effect.map((rows) => Option.map(Option.fromNullishOr(rows[0]), toExecution))
      )

    /** The statements of one `JournalWrite`; status changes mirror `applyStatusChange`. */
    const writeStatements = (write: JournalWrite): Effect.Effect<void, SqlError> =>
      Effect.gen(function* () {
        const id = write.executionId
        for (const o of write.outcomes) {
          yield* sql`INSERT INTO ${steps} (execution_id, step_key, activity_id, seq, after_count, attempt, outcome, started_at, completed_at)
            VALUES (${id}, ${o.stepKey}, ${o.activityId}, ${o.seq}, ${o.after}, ${o.attempt}, ${o.outcome}, ${write.now}, ${write.now})
            ON CONFLICT (execution_id, step_key) DO UPDATE
            SET outcome = excluded.outcome, attempt = excluded.attempt, completed_at = excluded.completed_at
            WHERE ${steps}.outcome IS NULL`
        }
        const a = write.attempt
        if (a !== undefined) {
          yield* sql`INSERT INTO ${steps} (execution_id, step_key, activity_id, seq, after_count, attempt, started_at)
            VALUES (${id}, ${a.stepKey}, ${a.activityId}, ${a.seq}, ${a.after}, ${a.attempt}, ${write.now})
            ON CONFLICT (execution_id, step_key) DO UPDATE SET attempt = excluded.attempt
            WHERE ${steps}.outcome IS NULL`
        }
        const change = write.status
        if (change === undefined) return
        const unfinished = sql`execution_id = ${id} AND status IN ('running', 'suspended')`
        switch (change._tag) {
          case "Complete":
            yield* sql`UPDATE ${executions} SET status = ${change.status}, result = ${change.result}, reason = NULL,
              updated_at = ${write.now} WHERE ${unfinished}`
            return
          case "Suspend":
            yield* sql`UPDATE ${executions} SET status = 'suspended', reason = ${change.reason},
              updated_at = ${write.now} WHERE ${unfinished}`
            return
          case "Resume":
            yield* sql`UPDATE ${executions} SET status = 'running', reason = NULL, updated_at = ${write.now}
              WHERE ${unfinished}`
            return
          case "RequestInterrupt":
            yield* sql`UPDATE ${executions} SET interrupt_requested = 1, updated_at = ${write.now} WHERE ${unfinished}`
            return
        }
      })

    return {
      stats: group.stats,
      start: (execution) =>
        Effect.gen(function* () {
          const inserted = yield* group.submit(
            sql`INSERT INTO ${executions} (execution_id, workflow, request, status, interrupt_requested, created_at, updated_at)
                VALUES (${execution.executionId}, ${execution.workflow}, ${execution.request}, 'running', 0, ${execution.now}, ${execution.now})
                ON CONFLICT (execution_id) DO NOTHING RETURNING execution_id`,
            true
          )
          const row = yield* selectExecution(execution.executionId)
          if (Option.isNone(row)) {
            return yield* new JournalError({
              operation: "start",
              message: `execution ${execution.executionId} vanished after insert`,
              transient: true
            })
          }
          return { created: inserted.length > 0, execution: row.value }
        }).pipe(
          Effect.mapError((error) => (error._tag === "JournalError" ? error : journalError("start")(error)))
        ),
      get: (executionId) => selectExecution(executionId).pipe(Effect.mapError(journalError("get"))),
      steps: (executionId) =>
        sql`SELECT * FROM ${steps} WHERE execution_id = ${executionId} ORDER BY seq`.pipe(
          Effect.flatMap(decodeSteps),
          Effect.map((rows) => rows.map(toStep)),
          Effect.mapError(journalError("steps"))
        ),
      write: (write) =>
        group.submit(writeStatements(write), isDurable(write)).pipe(Effect.mapError(journalError("write"))),
      listRunning: sql`SELECT * FROM ${executions} WHERE status = 'running' ORDER BY created_at`.pipe(
        Effect.flatMap(decodeExecutions),
        Effect.map((rows) => rows.map(toExecution)),
        Effect.mapError(journalError("listRunning"))
      )
    } satisfies DurableExecutionJournal["Service"] & { readonly stats: GroupCommit.GroupCommitStats }
  })
