/**
 * `DurableExecutionJournal` on effect's `SqlClient`: the SQL shared by the embedded SQLite store
 * and PostgreSQL. Writes go through group commit; reads are plain queries. Rows are decoded with
 * schemas at this boundary, so a row edited by hand into nonsense gives a `JournalError` naming
 * the table and field instead of reaching the engine.
 */
import { Effect, Option, Schema, SchemaTransformation, type Scope } from "effect"
import { SqlClient } from "effect/sql/SqlClient"
import type { SqlError } from "effect/sql/SqlError"
import type * as Statement from "effect/sql/Statement"
import {
  type AttemptStart,
  type DurableExecutionJournal,
  type ExecutionRecord,
  ExecutionStatus,
  isDurable,
  type JournalWrite,
  type NewExecution,
  newExecutionRecord,
  type StatusChange,
  type StepRecord
} from "../../workflow/DurableExecutionJournal.ts"
import { JournalError } from "../../workflow/WorkflowErrors.ts"
import * as GroupCommit from "./GroupCommit.ts"
import { migrate } from "./Migrations.ts"
import { isTransient } from "./transient.ts"

/** Options shared by the SQL backends. */
export interface SqlJournalOptions {
  /** Prefix of every table name, so the journal can share a database. Default `effect_cluster_`. */
  readonly tablePrefix?: string | undefined
  /** The SQL dialect, for the few statements that differ. */
  readonly dialect: "sqlite" | "pg"
  /**
   * How the backend relaxes durability for a batch of advisory writes: SQLite switches
   * `synchronous` before the batch; PostgreSQL sets `synchronous_commit` inside it.
   */
  readonly setDurability?: ((durable: boolean) => Effect.Effect<void, SqlError>) | undefined
  /** Batch concurrent writes into shared transactions (default true). */
  readonly groupCommit?: boolean | undefined
}

// Drivers return BIGINT as number (SQLite) or bigint (PostgreSQL), booleans as 0/1 or true/false.
// Journal numbers are millisecond times and counters: far inside the safe integer range.
const NumberFromBigInt = Schema.BigInt.pipe(
  Schema.decodeTo(
    Schema.Number,
    SchemaTransformation.transform({ decode: (n: bigint) => Number(n), encode: (n: number) => BigInt(n) })
  )
)
const SqlNumber = Schema.Union([Schema.Number, Schema.NumberFromString, NumberFromBigInt])
const SqlBoolean = Schema.Union([Schema.Boolean, Schema.Number])

const ExecutionRow = Schema.Struct({
  execution_id: Schema.String,
  workflow: Schema.String,
  request: Schema.String,
  status: ExecutionStatus,
  result: Schema.NullOr(Schema.String),
  reason: Schema.NullOr(Schema.String),
  interrupt_requested: SqlBoolean,
  wake_at: Schema.NullOr(SqlNumber),
  created_at: SqlNumber,
  updated_at: SqlNumber
})

const StepRow = Schema.Struct({
  execution_id: Schema.String,
  step_key: Schema.String,
  activity_id: Schema.String,
  seq: SqlNumber,
  previous_step: Schema.NullOr(Schema.String),
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
  wakeAt: row.wake_at,
  createdAt: row.created_at,
  updatedAt: row.updated_at
})

/** The execution id of a raw row, for messages about rows that do not decode. */
const describeRow = (row: unknown): string =>
  typeof row === "object" && row !== null && "execution_id" in row
    ? JSON.stringify(row.execution_id)
    : "<unknown>"

/** Rows per multi-row statement, well under SQLite's and PostgreSQL's parameter limits. */
const CHUNK_ROWS = 500

/** Splits rows into non-empty chunks of at most `CHUNK_ROWS`. */
const chunks = <A>(rows: ReadonlyArray<A>): Array<readonly [A, ...Array<A>]> => {
  const result: Array<readonly [A, ...Array<A>]> = []
  for (let i = 0; i < rows.length; i += CHUNK_ROWS) {
    const [first, ...others] = rows.slice(i, i + CHUNK_ROWS)
    if (first !== undefined) result.push([first, ...others])
  }
  return result
}

/** An item of a group commit: a new execution, or a write to one. */
type Item =
  | { readonly _tag: "Start"; readonly execution: NewExecution }
  | { readonly _tag: "Write"; readonly write: JournalWrite }

/**
 * The step rows of a batch, one per step: an outcome wins over an attempt marker of the same step,
 * a later attempt over an earlier one (a multi-row upsert must not touch a row twice).
 */
const mergeStepRows = (items: ReadonlyArray<Item>): Array<StepRow> => {
  const rows = new Map<string, StepRow>()
  for (const item of items) {
    if (item._tag !== "Write") continue
    const { executionId, now } = item.write
    const add = (step: AttemptStart, outcome: string | null) => {
      const key = `${executionId}\u0000${step.stepKey}`
      const existing = rows.get(key)
      if (existing !== undefined) {
        if (existing.outcome !== null) return
        if (outcome === null && existing.attempt >= step.attempt) return
      }
      rows.set(key, {
        execution_id: executionId,
        step_key: step.stepKey,
        activity_id: step.activityId,
        seq: step.seq,
        previous_step: step.previous,
        attempt: step.attempt,
        outcome,
        started_at: now,
        completed_at: outcome === null ? null : now
      })
    }
    for (const outcome of item.write.outcomes) add(outcome, outcome.outcome)
    if (item.write.attempt !== undefined) add(item.write.attempt, null)
  }
  return [...rows.values()]
}

type StepRow = typeof StepRow.Type

/** A step row as read back: the written columns and the heartbeat details. */
const StoredStepRow = Schema.Struct({ ...StepRow.fields, heartbeat: Schema.NullOr(Schema.String) })

const toStep = (row: typeof StoredStepRow.Type): StepRecord => ({
  executionId: row.execution_id,
  stepKey: row.step_key,
  activityId: row.activity_id,
  seq: row.seq,
  previous: row.previous_step,
  attempt: row.attempt,
  outcome: row.outcome,
  heartbeat: row.heartbeat,
  startedAt: row.started_at,
  completedAt: row.completed_at
})

/** The driver's message and the server's (e.g. `Query failed: canceling statement due to ...`). */
const describeSqlError = (error: SqlError): string => {
  const cause: unknown = (error.reason as { readonly cause?: unknown }).cause
  const detail =
    typeof cause === "object" && cause !== null && "message" in cause && typeof cause.message === "string"
      ? cause.message
      : undefined
  return detail === undefined || detail === "" || error.message.includes(detail)
    ? error.message
    : `${error.message}: ${detail}`
}

/**
 * A `JournalError` for `operation`. A row that does not decode is not transient: retrying reads
 * the same row. `what` names the rows, e.g. `execution "x" in prefix_executions`.
 */
const journalError =
  (operation: string, what?: string) =>
  (error: SqlError | Schema.SchemaError): JournalError =>
    Schema.isSchemaError(error)
      ? new JournalError({
          operation,
          detail: `the stored ${what ?? "row"} does not decode: ${error.message}`,
          transient: false
        })
      : new JournalError({ operation, detail: describeSqlError(error), transient: isTransient(error) })

/** The rows of a batch, merged: one row per new execution, one per step, the status changes. */
interface Batch {
  readonly starts: ReadonlyArray<StartRow>
  readonly steps: ReadonlyArray<StepRow>
  readonly attempts: ReadonlyArray<AttemptRow>
  readonly statuses: ReadonlyArray<{
    readonly executionId: string
    readonly change: StatusChange
    readonly now: number
  }>
}

type AttemptRow = {
  readonly execution_id: string
  readonly step_key: string
  readonly attempt: number
  readonly started_at: number
  readonly ended_at: number
  readonly outcome: string
}

const AttemptRowSchema = Schema.Struct({
  execution_id: Schema.String,
  step_key: Schema.String,
  attempt: SqlNumber,
  started_at: SqlNumber,
  ended_at: SqlNumber,
  outcome: Schema.String
})

type StartRow = {
  readonly execution_id: string
  readonly workflow: string
  readonly request: string
  readonly status: "running"
  readonly interrupt_requested: number
  readonly created_at: number
  readonly updated_at: number
}

const describeBatch = (items: ReadonlyArray<Item>): Batch => ({
  starts: items.flatMap((item) =>
    item._tag === "Start"
      ? [
          {
            execution_id: item.execution.executionId,
            workflow: item.execution.workflow,
            request: item.execution.request,
            status: "running" as const,
            interrupt_requested: 0,
            created_at: item.execution.now,
            updated_at: item.execution.now
          }
        ]
      : []
  ),
  steps: mergeStepRows(items),
  attempts: items.flatMap((item) =>
    item._tag === "Write"
      ? (item.write.failedAttempts ?? []).map((a) => ({
          execution_id: a.executionId,
          step_key: a.stepKey,
          attempt: a.attempt,
          started_at: a.startedAt,
          ended_at: a.endedAt,
          outcome: a.outcome
        }))
      : []
  ),
  statuses: items.flatMap((item) =>
    item._tag === "Write" && item.write.status !== undefined
      ? [{ executionId: item.write.executionId, change: item.write.status, now: item.write.now }]
      : []
  )
})

/** Bind parameters per statement: far below PostgreSQL's 65,535. */
const MAX_PARAMETERS = 30_000

/**
 * Whether a batch can be one statement of CTEs. CTEs of one statement must not touch the same row
 * twice (the server would apply only one change), so two status changes of one execution, or a
 * start and a status change of one id, go through the sequential path.
 */
const fitsOneStatement = (batch: Batch): boolean => {
  const ids = new Set(batch.starts.map((row) => row.execution_id))
  for (const { executionId } of batch.statuses) {
    if (ids.has(executionId)) return false
    ids.add(executionId)
  }
  // Status changes other than completions are one statement each; keep their parameters bounded.
  return batch.statuses.length * 4 <= MAX_PARAMETERS
}

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
    yield* migrate(sql, prefix, options.dialect)
    const executions = sql(`${prefix}executions`)
    const signals = sql(`${prefix}signals`)
    const attemptsTable = sql(`${prefix}attempts`)
    const decodeAttempts = Schema.decodeUnknownEffect(Schema.Array(AttemptRowSchema))
    const steps = sql(`${prefix}steps`)
    const decodeExecutions = Schema.decodeUnknownEffect(Schema.Array(ExecutionRow))
    const decodeSteps = Schema.decodeUnknownEffect(Schema.Array(StoredStepRow))
    const decodeExecution = Schema.decodeUnknownEffect(ExecutionRow)
    /**
     * Rows decoded one by one: a row that no longer decodes is reported and left out, so it does
     * not stop the engine from resuming or waking every other execution (`get` of its id still
     * fails loudly).
     */
    const decodeEach = (rows: ReadonlyArray<unknown>): Effect.Effect<Array<ExecutionRecord>> =>
      Effect.map(
        Effect.forEach(rows, (row) =>
          decodeExecution(row).pipe(
            Effect.map((decoded) => [toExecution(decoded)]),
            Effect.catch((error) =>
              Effect.as(
                Effect.logError(
                  `execution ${describeRow(row)} is left out: its row in ${prefix}executions does not decode: ${error.message}`
                ),
                []
              )
            )
          )
        ),
        (decoded) => decoded.flat()
      )
    const decodeNext = Schema.decodeUnknownEffect(Schema.NullOr(SqlNumber))
    const decodeSignal = Schema.decodeUnknownEffect(Schema.NullOr(Schema.String))

    const selectExecution = (executionId: string) =>
      sql`SELECT * FROM ${executions} WHERE execution_id = ${executionId}`.pipe(
        Effect.flatMap(decodeExecutions),
        Effect.map((rows) => Option.map(Option.fromNullishOr(rows[0]), toExecution))
      )

    /** Everything a batch writes, merged into as few statements as possible. */
    const flush = (
      items: ReadonlyArray<Item>,
      durable: boolean
    ): Effect.Effect<ReadonlyArray<boolean>, SqlError> =>
      Effect.suspend(() => {
        const batch = describeBatch(items)
        const created = Effect.map(
          options.dialect === "pg" && fitsOneStatement(batch)
            ? pgStatement(batch, durable)
            : sequential(batch, durable),
          (ids) => new Set(ids)
        )
        return Effect.map(created, (ids) =>
          // Only the first start of an id in a batch created it.
          items.map((item) => item._tag === "Start" && ids.delete(item.execution.executionId))
        )
      })

    /** The batch as statements in one transaction; returns the ids of the executions it created. */
    const sequential = (batch: Batch, durable: boolean): Effect.Effect<ReadonlyArray<string>, SqlError> =>
      Effect.suspend(() => {
        const statements: Array<Effect.Effect<unknown, SqlError>> = []
        const created: Array<string> = []
        // PostgreSQL: an advisory batch commits without waiting for the WAL flush. It survives a
        // crash of this process; a server crash may lose it, which only lowers an attempt number.
        if (!durable && options.dialect === "pg") statements.push(sql`SET LOCAL synchronous_commit TO OFF`)
        for (const rows of chunks(batch.starts)) {
          statements.push(
            Effect.map(insertStarts(rows), (inserted) => {
              for (const row of inserted) created.push(row.execution_id)
            })
          )
        }
        for (const rows of chunks(batch.steps)) statements.push(upsertSteps(rows))
        for (const rows of chunks(batch.attempts)) statements.push(insertAttempts(rows))
        for (const { executionId, change, now } of batch.statuses) {
          statements.push(statusStatement(executionId, change, now))
        }
        if (statements.length === 0) return Effect.succeed(created)
        const all =
          statements.length === 1
            ? statements[0]!
            : Effect.forEach(statements, (statement) => statement, { discard: true })
        const committed = statements.length > 1 ? sql.withTransaction(all) : all
        const run =
          options.setDurability === undefined
            ? committed
            : Effect.andThen(options.setDurability(durable), committed)
        return Effect.as(run, created)
      })

    const insertStarts = (rows: readonly [StartRow, ...Array<StartRow>]) =>
      sql<{ execution_id: string }>`INSERT INTO ${executions} ${sql.insert(rows)}
        ON CONFLICT (execution_id) DO NOTHING RETURNING execution_id`

    const insertAttempts = (rows: readonly [AttemptRow, ...Array<AttemptRow>]) =>
      sql`INSERT INTO ${attemptsTable} ${sql.insert(rows)}
        ON CONFLICT (execution_id, step_key, attempt) DO NOTHING`

    const upsertSteps = (rows: readonly [StepRow, ...Array<StepRow>]) =>
      sql`INSERT INTO ${steps} ${sql.insert(rows)}
        ON CONFLICT (execution_id, step_key) DO UPDATE
        SET outcome = excluded.outcome, attempt = excluded.attempt, completed_at = excluded.completed_at
        WHERE ${steps}.outcome IS NULL`

    /**
     * PostgreSQL: the whole batch as ONE statement of data-modifying CTEs, which the server runs
     * as one implicit transaction: one round trip instead of BEGIN, n statements and COMMIT. Each
     * kind of row travels as one JSON parameter (`json_to_recordset`), so the statement text does
     * not depend on the batch size: the server keeps it prepared, and the client encodes one
     * string instead of thousands of parameters. An advisory batch sets `synchronous_commit` for
     * its own transaction with `set_config`.
     */
    const pgStatement = (batch: Batch, durable: boolean): Effect.Effect<ReadonlyArray<string>, SqlError> => {
      const ctes: Array<Statement.Fragment> = []
      const outputs: Array<Statement.Fragment> = []
      const cte = (body: Statement.Fragment) => {
        const name = sql.literal(`w${ctes.length}`)
        ctes.push(sql`${name} AS (${body})`)
        return name
      }
      if (batch.starts.length > 0) {
        const started = cte(sql`INSERT INTO ${executions}
          (execution_id, workflow, request, status, interrupt_requested, created_at, updated_at)
          SELECT r.execution_id, r.workflow, r.request, 'running', 0, r.created_at, r.created_at
          FROM json_to_recordset(${JSON.stringify(batch.starts)}::json)
            AS r(execution_id text, workflow text, request text, created_at bigint)
          ON CONFLICT (execution_id) DO NOTHING RETURNING execution_id`)
        outputs.push(sql`SELECT execution_id, NULL AS relaxed FROM ${started}`)
      }
      if (batch.steps.length > 0) {
        cte(sql`INSERT INTO ${steps}
          (execution_id, step_key, activity_id, seq, previous_step, attempt, outcome, started_at, completed_at)
          SELECT * FROM json_to_recordset(${JSON.stringify(batch.steps)}::json)
            AS r(execution_id text, step_key text, activity_id text, seq integer, previous_step text,
                 attempt integer, outcome text, started_at bigint, completed_at bigint)
          ON CONFLICT (execution_id, step_key) DO UPDATE
          SET outcome = excluded.outcome, attempt = excluded.attempt, completed_at = excluded.completed_at
          WHERE ${steps}.outcome IS NULL`)
      }
      if (batch.attempts.length > 0) {
        cte(sql`INSERT INTO ${attemptsTable} (execution_id, step_key, attempt, started_at, ended_at, outcome)
          SELECT * FROM json_to_recordset(${JSON.stringify(batch.attempts)}::json)
            AS r(execution_id text, step_key text, attempt integer, started_at bigint, ended_at bigint, outcome text)
          ON CONFLICT (execution_id, step_key, attempt) DO NOTHING`)
      }
      const completions = batch.statuses.flatMap(({ executionId, change, now }) =>
        change._tag === "Complete"
          ? [{ execution_id: executionId, status: change.status, result: change.result, updated_at: now }]
          : []
      )
      if (completions.length > 0) {
        cte(sql`UPDATE ${executions} AS e SET status = r.status, result = r.result, reason = NULL,
          wake_at = NULL, updated_at = r.updated_at
          FROM json_to_recordset(${JSON.stringify(completions)}::json)
            AS r(execution_id text, status text, result text, updated_at bigint)
          WHERE e.execution_id = r.execution_id AND e.status IN ('running', 'suspended', 'sleeping')`)
      }
      for (const { executionId, change, now } of batch.statuses) {
        if (change._tag !== "Complete") cte(statusStatement(executionId, change, now))
      }
      if (ctes.length === 0) return Effect.succeed([])
      if (!durable) {
        outputs.push(
          sql`SELECT NULL AS execution_id, set_config('synchronous_commit', 'off', true) AS relaxed`
        )
      }
      outputs.push(sql`SELECT NULL AS execution_id, NULL AS relaxed WHERE false`)
      return Effect.map(
        sql<{
          readonly execution_id: string | null
        }>`WITH ${sql.csv(ctes)} ${sql.join(" UNION ALL ", false)(outputs)}`,
        (rows) => rows.flatMap((row) => (row.execution_id === null ? [] : [row.execution_id]))
      )
    }

    /** Mirrors `applyStatusChange`: final executions never change. */
    const statusStatement = (id: string, change: StatusChange, now: number) => {
      const unfinished = sql`execution_id = ${id} AND status IN ('running', 'suspended', 'sleeping')`
      switch (change._tag) {
        case "Complete":
          return sql`UPDATE ${executions} SET status = ${change.status}, result = ${change.result}, reason = NULL,
            wake_at = NULL, updated_at = ${now} WHERE ${unfinished}`
        case "Suspend":
          return sql`UPDATE ${executions} SET status = 'suspended', reason = ${change.reason}, wake_at = NULL,
            updated_at = ${now} WHERE ${unfinished}`
        case "Resume":
          return sql`UPDATE ${executions} SET status = 'running', reason = NULL, wake_at = NULL, updated_at = ${now}
            WHERE ${unfinished}`
        case "RequestInterrupt":
          return sql`UPDATE ${executions} SET interrupt_requested = 1, updated_at = ${now} WHERE ${unfinished}`
        case "Sleep":
          return sql`UPDATE ${executions} SET status = 'sleeping', reason = NULL, wake_at = ${change.wakeAt},
            updated_at = ${now} WHERE ${unfinished}`
        case "Wake":
          return sql`UPDATE ${executions} SET status = 'running', wake_at = NULL, updated_at = ${now}
            WHERE execution_id = ${id} AND status = 'sleeping'`
        case "WakeBy":
          return sql`UPDATE ${executions} SET wake_at = ${change.wakeAt}, updated_at = ${now}
            WHERE execution_id = ${id} AND status = 'sleeping' AND (wake_at IS NULL OR wake_at > ${change.wakeAt})`
      }
    }

    const group = yield* GroupCommit.make<Item, boolean>({
      flush,
      durable: (item) => item._tag === "Start" || isDurable(item.write),
      enabled: options.groupCommit,
      inlineWhenIdle: options.dialect === "pg"
    })

    return {
      stats: group.stats,
      start: (execution) =>
        Effect.gen(function* () {
          const created = yield* group.submit({ _tag: "Start", execution })
          if (created) {
            return { created, execution: newExecutionRecord(execution) }
          }
          const row = yield* selectExecution(execution.executionId)
          if (Option.isNone(row)) {
            return yield* new JournalError({
              operation: "start",
              detail: `execution ${execution.executionId} vanished after insert`,
              transient: true
            })
          }
          return { created, execution: row.value }
        }).pipe(
          Effect.mapError((error) => (error._tag === "JournalError" ? error : journalError("start")(error)))
        ),
      write: (write) =>
        group.submit({ _tag: "Write", write }).pipe(Effect.asVoid, Effect.mapError(journalError("write"))),
      get: (executionId) =>
        selectExecution(executionId).pipe(
          Effect.mapError(
            journalError("get", `execution ${JSON.stringify(executionId)} in ${prefix}executions`)
          )
        ),
      steps: (executionId) =>
        sql`SELECT * FROM ${steps} WHERE execution_id = ${executionId} ORDER BY seq`.pipe(
          Effect.flatMap(decodeSteps),
          Effect.map((rows) => rows.map(toStep)),
          Effect.mapError(
            journalError("steps", `steps of execution ${JSON.stringify(executionId)} in ${prefix}steps`)
          )
        ),
      signal: (signal) =>
        sql
          .withTransaction(
            Effect.gen(function* () {
              // PostgreSQL (READ COMMITTED): lock the execution first, so that a run parking it
              // concurrently either sees this signal after parking or is woken by it.
              if (options.dialect === "pg") {
                yield* sql`SELECT 1 FROM ${executions} WHERE execution_id = ${signal.executionId} FOR UPDATE`
              }
              const stored = yield* sql<{ name: string }>`INSERT INTO ${signals} ${sql.insert({
                execution_id: signal.executionId,
                name: signal.name,
                payload: signal.payload,
                created_at: signal.now
              })} ON CONFLICT (execution_id, name) DO NOTHING RETURNING name`
              yield* sql`UPDATE ${executions} SET wake_at = ${signal.now}, updated_at = ${signal.now}
                WHERE execution_id = ${signal.executionId} AND status = 'sleeping'
                AND (wake_at IS NULL OR wake_at > ${signal.now})`
              return stored.length > 0
            })
          )
          .pipe(Effect.mapError(journalError("signal"))),
      attempts: (executionId) =>
        sql`SELECT * FROM ${attemptsTable} WHERE execution_id = ${executionId} ORDER BY step_key, attempt`.pipe(
          Effect.flatMap(decodeAttempts),
          Effect.map((rows) =>
            rows.map((row) => ({
              executionId: row.execution_id,
              stepKey: row.step_key,
              attempt: row.attempt,
              startedAt: row.started_at,
              endedAt: row.ended_at,
              outcome: row.outcome
            }))
          ),
          Effect.mapError(
            journalError("attempts", `attempts of ${JSON.stringify(executionId)} in ${prefix}attempts`)
          )
        ),
      list: (query) => {
        const conditions = [
          ...(query.workflow === undefined ? [] : [sql`workflow = ${query.workflow}`]),
          ...(query.status === undefined ? [] : [sql`status = ${query.status}`]),
          ...(query.after === undefined
            ? []
            : [
                options.dialect === "pg"
                  ? sql`execution_id COLLATE "C" > ${query.after}`
                  : sql`execution_id > ${query.after}`
              ])
        ]
        const where = conditions.length === 0 ? sql`` : sql`WHERE ${sql.and(conditions)}`
        // Ids compare byte-wise on both backends (PostgreSQL: COLLATE "C"), as in memory.
        const order =
          options.dialect === "pg" ? sql`ORDER BY execution_id COLLATE "C"` : sql`ORDER BY execution_id`
        return sql`SELECT * FROM ${executions} ${where} ${order} LIMIT ${query.limit}`.pipe(
          Effect.flatMap(decodeExecutions),
          Effect.map((rows) => rows.map(toExecution)),
          Effect.mapError(journalError("list", `executions in ${prefix}executions`))
        )
      },
      heartbeat: (heartbeat) =>
        sql`UPDATE ${steps} SET heartbeat = ${heartbeat.details}
          WHERE execution_id = ${heartbeat.executionId} AND step_key = ${heartbeat.stepKey} AND outcome IS NULL`.pipe(
          Effect.asVoid,
          Effect.mapError(journalError("heartbeat"))
        ),
      getSignal: (executionId, name) =>
        sql<{
          payload: unknown
        }>`SELECT payload FROM ${signals} WHERE execution_id = ${executionId} AND name = ${name}`.pipe(
          Effect.flatMap((rows) => decodeSignal(rows[0]?.payload ?? null)),
          Effect.map(Option.fromNullishOr),
          Effect.mapError(
            journalError(
              "getSignal",
              `signal ${JSON.stringify(name)} of ${JSON.stringify(executionId)} in ${prefix}signals`
            )
          )
        ),
      listDue: (now, limit) =>
        Effect.gen(function* () {
          const rows = yield* sql`SELECT * FROM ${executions}
            WHERE status = 'sleeping' AND wake_at <= ${now} ORDER BY wake_at LIMIT ${limit}`
          const next = yield* sql<{ next: unknown }>`SELECT MIN(wake_at) AS next FROM ${executions}
            WHERE status = 'sleeping'`
          const nextWakeAt = yield* decodeNext(next[0]?.next ?? null)
          return { due: yield* decodeEach(rows), nextWakeAt }
        }).pipe(Effect.mapError(journalError("listDue", `sleeping executions in ${prefix}executions`))),
      listRunning: sql`SELECT * FROM ${executions} WHERE status = 'running' ORDER BY created_at`.pipe(
        Effect.mapError(journalError("listRunning")),
        Effect.flatMap(decodeEach)
      )
    } satisfies DurableExecutionJournal["Service"] & { readonly stats: GroupCommit.GroupCommitStats }
  })
