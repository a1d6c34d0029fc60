/**
 * `DurableExecutionJournal` on effect's `SqlClient`: the SQL shared by the embedded SQLite store
 * and PostgreSQL. Writes go through group commit (`internal/writes.ts`: fencing, inbox entries);
 * reads are plain queries. Rows are decoded with schemas at this boundary, so a row edited by hand
 * into nonsense gives a `JournalError` naming the table and field instead of reaching the engine.
 */
import { Effect, Option, type Queue, Schema, type Scope, Stream } from "effect"
import { SqlClient } from "effect/sql/SqlClient"
import type { SqlError } from "effect/sql/SqlError"
import type * as Statement from "effect/sql/Statement"
import type { StaleEpochError } from "../../sharding/ShardingErrors.ts"
import {
  type CountQuery,
  type DurableExecutionJournal,
  type ExecutionRecord,
  ExecutionStatus,
  type InboxEntry,
  isDurable,
  type ListQuery,
  type NewSignal,
  newExecutionRecord,
  type StepRecord
} from "../../workflow/DurableExecutionJournal.ts"
import { JournalError, SchemaVersionError } from "../../workflow/WorkflowErrors.ts"
import * as GroupCommit from "./GroupCommit.ts"
import type { Item, ItemResult } from "./internal/batch.ts"
import { SqlBoolean, SqlNumber } from "./internal/columns.ts"
import { sharedGate } from "./internal/epochGate.ts"
import { journalError } from "./internal/errors.ts"
import { inIntegers, inTexts } from "./internal/lists.ts"
import { stepsOfMany } from "./internal/stepsOfMany.ts"
import { inTransaction } from "./internal/transaction.ts"
import * as Writes from "./internal/writes.ts"
import { latestVersion, migrate, schemaVersion } from "./Migrations.ts"

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
  /**
   * The statement timeout of the connections (PostgreSQL's `statement_timeout`), if any: a
   * statement cancelled at it fails with a `JournalError` naming its purpose and this timeout.
   */
  readonly statementTimeoutMillis?: number | undefined
  /**
   * Run the migrations at open (default true). false: the schema is only checked, and a store that
   * is not at this build's version fails with `SchemaVersionError` without any change (tools).
   */
  readonly migrate?: boolean | undefined
  /**
   * PostgreSQL: listens on a channel (`PgClient.listen`), for `inboxArrivals`. Absent: the journal
   * has no `inboxArrivals` and owners poll `takeInbox`.
   */
  readonly listen?:
    | ((
        channel: string
      ) => Effect.Effect<Queue.Dequeue<{ readonly payload: string }, SqlError>, SqlError, Scope.Scope>)
    | undefined
}

/** The PostgreSQL channel of inbox arrivals for a table prefix (`pg_notify(channel, shard)`). */
export const inboxChannel = Writes.inboxChannel

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

const utf8 = new TextDecoder()

/**
 * `row` with its text columns stored as bytes (SQLite keeps what it is given: a hand edit, a
 * buggy older writer) read as UTF-8 text: the engine then decodes them with the workflow's schemas
 * and suspends the execution with an error that says what does not decode (I6), instead of the
 * row being unreadable.
 */
const textAsText = (row: unknown): unknown => {
  if (typeof row !== "object" || row === null) return row
  const fields = row as Record<string, unknown>
  if (
    !(
      fields.request instanceof Uint8Array ||
      fields.result instanceof Uint8Array ||
      fields.reason instanceof Uint8Array
    )
  ) {
    return row
  }
  const text = (value: unknown) => (value instanceof Uint8Array ? utf8.decode(value) : value)
  return {
    ...fields,
    request: text(fields.request),
    result: text(fields.result),
    reason: text(fields.reason)
  }
}

/** The execution id of a raw row, for messages about rows that do not decode. */
const describeRow = (row: unknown): string =>
  typeof row === "object" && row !== null && "execution_id" in row
    ? JSON.stringify(row.execution_id)
    : "<unknown>"

/** A step row as read back: the written columns and the heartbeat details. */
const StoredStepRow = Schema.Struct({
  ...StepRow.fields,
  heartbeat: Schema.NullOr(Schema.String),
  attempt_started_at: Schema.NullOr(SqlNumber),
  completed_after: Schema.NullOr(SqlNumber)
})

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
  completedAt: row.completed_at,
  attemptStartedAt: row.attempt_started_at,
  completedAfter: row.completed_after
})

const InboxRow = Schema.Struct({ id: SqlNumber, shard: SqlNumber, execution_id: Schema.String })

const AttemptRowSchema = Schema.Struct({
  execution_id: Schema.String,
  step_key: Schema.String,
  attempt: SqlNumber,
  started_at: SqlNumber,
  ended_at: SqlNumber,
  outcome: Schema.String
})

/** The filters `list` and `count` share: workflow and creation time. */
const filters = (sql: SqlClient, query: CountQuery): Array<Statement.Fragment> => [
  ...(query.workflow === undefined ? [] : [sql`workflow = ${query.workflow}`]),
  ...(query.createdSince === undefined ? [] : [sql`created_at >= ${query.createdSince}`]),
  ...(query.createdUntil === undefined ? [] : [sql`created_at < ${query.createdUntil}`])
]

/** The WHERE and ORDER BY of `list`: filters, status, and the page's keyset in its order. */
const listClauses = (sql: SqlClient, query: ListQuery, byteWise: Statement.Fragment) => {
  const order = query.order ?? "id"
  const position = query.position
  const conditions = [
    ...filters(sql, query),
    ...(query.status === undefined ? [] : [sql`status = ${query.status}`]),
    ...(order !== "id" || query.after === undefined ? [] : [sql`execution_id${byteWise} > ${query.after}`]),
    // The keyset of the creation order: rows after the cursor's (created_at, execution_id). The
    // bound on created_at alone is what PostgreSQL's index scan starts from: with only the OR,
    // a deep page walks (and drops) every row before it.
    ...(order === "id" || position === undefined
      ? []
      : order === "oldest"
        ? [
            sql`created_at >= ${position.createdAt} AND (created_at > ${position.createdAt} OR execution_id${byteWise} > ${position.executionId})`
          ]
        : [
            sql`created_at <= ${position.createdAt} AND (created_at < ${position.createdAt} OR execution_id${byteWise} < ${position.executionId})`
          ])
  ]
  const where = conditions.length === 0 ? sql`` : sql`WHERE ${sql.and(conditions)}`
  // Ids compare byte-wise on both backends (PostgreSQL: COLLATE "C"), as in memory.
  const orderBy =
    order === "id"
      ? sql`ORDER BY execution_id${byteWise}`
      : order === "oldest"
        ? sql`ORDER BY created_at, execution_id${byteWise}`
        : sql`ORDER BY created_at DESC, execution_id${byteWise} DESC`
  return { where, orderBy }
}

/**
 * Stores a signal (the first value wins) and wakes its execution if it sleeps; with `notify`, an
 * inbox entry tells the owner of its shard. One transaction; true when this value was stored.
 */
const storeSignal = (sql: SqlClient, prefix: string, dialect: "sqlite" | "pg", signal: NewSignal) =>
  inTransaction(
    sql,
    Effect.gen(function* () {
      const executions = sql(`${prefix}executions`)
      const inbox = sql(`${prefix}inbox`)
      // PostgreSQL (READ COMMITTED): lock the execution first, so that a run parking it
      // concurrently either sees this signal after parking or is woken by it.
      if (dialect === "pg") {
        yield* sql`SELECT 1 FROM ${executions} WHERE execution_id = ${signal.executionId} FOR UPDATE`
      }
      const stored = yield* sql<{ name: string }>`INSERT INTO ${sql(`${prefix}signals`)} ${sql.insert({
        execution_id: signal.executionId,
        name: signal.name,
        payload: signal.payload,
        created_at: signal.now
      })} ON CONFLICT (execution_id, name) DO NOTHING RETURNING name`
      yield* sql`UPDATE ${executions} SET wake_at = ${signal.now}, updated_at = ${signal.now}
        WHERE execution_id = ${signal.executionId} AND status = 'sleeping'
        AND (wake_at IS NULL OR wake_at > ${signal.now})`
      if (stored.length > 0 && signal.notify !== undefined) {
        yield* sql`INSERT INTO ${inbox} ${sql.insert({
          shard: signal.notify,
          execution_id: signal.executionId,
          created_at: signal.now
        })}`
        if (dialect === "pg") yield* sql`SELECT pg_notify(${inboxChannel(prefix)}, ${String(signal.notify)})`
      }
      return stored.length > 0
    })
  )

/**
 * Fails with `SchemaVersionError` unless the tables with `prefix` are at this build's schema
 * version. Reads only: a store opened by a tool is never changed by a typo or a newer tool.
 */
export const checkSchema = (
  sql: SqlClient,
  prefix: string,
  dialect: "sqlite" | "pg"
): Effect.Effect<void, SqlError | SchemaVersionError> =>
  Effect.flatMap(schemaVersion(sql, prefix, dialect), (found) =>
    found === latestVersion
      ? Effect.void
      : Effect.fail(
          new SchemaVersionError({ tablePrefix: prefix, found: found ?? null, needed: latestVersion })
        )
  )

/** Builds the journal on the `SqlClient` in context, running migrations first (or checking the schema). */
export const make = (
  options: SqlJournalOptions
): Effect.Effect<
  DurableExecutionJournal["Service"] & { readonly stats: GroupCommit.GroupCommitStats },
  SqlError | SchemaVersionError,
  SqlClient | Scope.Scope
> =>
  Effect.gen(function* () {
    const sql = yield* SqlClient
    const prefix = options.tablePrefix ?? "effect_cluster_"
    if (options.migrate === false) yield* checkSchema(sql, prefix, options.dialect)
    else yield* migrate(sql, prefix, options.dialect)
    const executions = sql(`${prefix}executions`)
    const signals = sql(`${prefix}signals`)
    const attemptsTable = sql(`${prefix}attempts`)
    const decodeAttempts = Schema.decodeUnknownEffect(Schema.Array(AttemptRowSchema))
    const steps = sql(`${prefix}steps`)
    const decodeRows = Schema.decodeUnknownEffect(Schema.Array(ExecutionRow))
    const decodeExecutions = (rows: ReadonlyArray<unknown>) => decodeRows(rows.map(textAsText))
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
          decodeExecution(textAsText(row)).pipe(
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

    const shardsTable = sql(`${prefix}shards`)
    const inbox = sql(`${prefix}inbox`)
    const decodeInbox = Schema.decodeUnknownEffect(Schema.Array(InboxRow))
    const pg = options.dialect === "pg"
    /** The `JournalError` of `operation`, naming its `purpose` if the statement timed out. */
    const failed = (operation: string, purpose: string, what?: string) =>
      journalError(operation, what, { purpose, timeoutMillis: options.statementTimeoutMillis })
    const ofExecution = (operation: string, executionId: string) =>
      `${operation} of execution ${JSON.stringify(executionId)}`
    /** Ids compare byte-wise on both backends (PostgreSQL: COLLATE "C"), as in memory. */
    const byteWise = pg ? sql` COLLATE "C"` : sql``

    const decodeCounts = Schema.decodeUnknownEffect(
      Schema.Array(Schema.Struct({ status: ExecutionStatus, n: SqlNumber }))
    )

    const selectExecution = (executionId: string) =>
      sql`SELECT * FROM ${executions} WHERE execution_id = ${executionId}`.pipe(
        Effect.flatMap(decodeExecutions),
        Effect.map((rows) => Option.map(Option.fromNullishOr(rows[0]), toExecution))
      )

    const { flush } = Writes.make({
      sql,
      prefix,
      dialect: options.dialect,
      setDurability: options.setDurability
    })
    const group = yield* GroupCommit.make<Item, ItemResult>({
      flush,
      durable: (item) => item._tag === "Start" || isDurable(item.write),
      enabled: options.groupCommit,
      inlineWhenIdle: options.dialect === "pg"
    })

    return {
      stats: group.stats,
      start: (execution) =>
        Effect.gen(function* () {
          // A start carries no fence: its result is never a refusal.
          const created = (yield* group.submit({ _tag: "Start", execution })) === true
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
          Effect.mapError((error) =>
            error._tag === "JournalError"
              ? error
              : failed("start", ofExecution("start", execution.executionId))(error)
          )
        ),
      write: (write) =>
        group.submit({ _tag: "Write", write }).pipe(
          Effect.mapError(failed("write", ofExecution("write", write.executionId))),
          Effect.flatMap(
            (result): Effect.Effect<void, JournalError | StaleEpochError> =>
              typeof result === "boolean" ? Effect.void : Effect.fail(result)
          )
        ),
      get: (executionId) =>
        selectExecution(executionId).pipe(
          Effect.mapError(
            failed(
              "get",
              ofExecution("read", executionId),
              `execution ${JSON.stringify(executionId)} in ${prefix}executions`
            )
          )
        ),
      steps: (executionId) =>
        sql`SELECT * FROM ${steps} WHERE execution_id = ${executionId} ORDER BY seq`.pipe(
          Effect.flatMap(decodeSteps),
          Effect.map((rows) => rows.map(toStep)),
          Effect.mapError(
            failed(
              "steps",
              ofExecution("read of the steps", executionId),
              `steps of execution ${JSON.stringify(executionId)} in ${prefix}steps`
            )
          )
        ),
      stepsMany: (executionIds) =>
        executionIds.length === 0
          ? Effect.succeed([])
          : stepsOfMany(sql, options.dialect, prefix, executionIds).pipe(
              Effect.flatMap(decodeSteps),
              Effect.map((rows) => rows.map(toStep)),
              Effect.mapError(failed("stepsMany", `read of the steps of ${executionIds.length} executions`))
            ),
      signal: (signal) =>
        storeSignal(sql, prefix, options.dialect, signal).pipe(
          Effect.mapError(
            failed(
              "signal",
              `signal ${JSON.stringify(signal.name)} to execution ${JSON.stringify(signal.executionId)}`
            )
          )
        ),
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
            failed(
              "attempts",
              ofExecution("read of the attempts", executionId),
              `attempts of ${JSON.stringify(executionId)} in ${prefix}attempts`
            )
          )
        ),
      list: (query) => {
        const { where, orderBy } = listClauses(sql, query, byteWise)
        return sql`SELECT * FROM ${executions} ${where} ${orderBy} LIMIT ${query.limit}`.pipe(
          Effect.flatMap(decodeExecutions),
          Effect.map((rows) => rows.map(toExecution)),
          Effect.mapError(failed("list", "list of executions", `executions in ${prefix}executions`))
        )
      },
      count: (query) => {
        const conditions = filters(sql, query)
        const where = conditions.length === 0 ? sql`` : sql`WHERE ${sql.and(conditions)}`
        return sql`SELECT status, COUNT(*) AS n FROM ${executions} ${where} GROUP BY status`.pipe(
          Effect.flatMap(decodeCounts),
          Effect.map((rows) => rows.map((row) => ({ status: row.status, count: row.n }))),
          Effect.mapError(failed("count", "count of executions", `executions in ${prefix}executions`))
        )
      },
      heartbeat: ({ executionId, stepKey, details, fence }) =>
        // A stale fence matches no shard row: the heartbeat is dropped (it is advisory). On
        // PostgreSQL the shard row is share-locked, so an epoch bump in progress is waited for
        // (behind the epoch gate, `internal/epochGate.ts`).
        sql`UPDATE ${steps} SET heartbeat = ${details}
          WHERE execution_id = ${executionId} AND step_key = ${stepKey} AND outcome IS NULL${
            fence === undefined
              ? sql``
              : pg
                ? sql` AND EXISTS (SELECT 1 FROM ${shardsTable}, ${sharedGate(sql, prefix)}
                    WHERE shard_id = ${fence.shard} AND epoch = ${fence.epoch} FOR SHARE OF ${shardsTable})`
                : sql` AND EXISTS (SELECT 1 FROM ${shardsTable} WHERE shard_id = ${fence.shard}
                    AND epoch = ${fence.epoch})`
          }`.pipe(
          Effect.asVoid,
          Effect.mapError(
            failed(
              "heartbeat",
              `heartbeat of step ${JSON.stringify(stepKey)} of execution ${JSON.stringify(executionId)}`
            )
          )
        ),
      getSignal: (executionId, name) =>
        sql<{
          payload: unknown
        }>`SELECT payload FROM ${signals} WHERE execution_id = ${executionId} AND name = ${name}`.pipe(
          Effect.flatMap((rows) => decodeSignal(rows[0]?.payload ?? null)),
          Effect.map(Option.fromNullishOr),
          Effect.mapError(
            failed(
              "getSignal",
              `read of signal ${JSON.stringify(name)} of execution ${JSON.stringify(executionId)}`,
              `signal ${JSON.stringify(name)} of ${JSON.stringify(executionId)} in ${prefix}signals`
            )
          )
        ),
      listDue: (now, limit, shards) =>
        Effect.gen(function* () {
          if (shards !== undefined && shards.length === 0) return { due: [], nextWakeAt: null }
          const owned =
            shards === undefined ? sql`` : sql` AND ${inIntegers(sql, options.dialect, "shard", shards)}`
          const rows = yield* sql`SELECT * FROM ${executions}
            WHERE status = 'sleeping' AND wake_at <= ${now}${owned} ORDER BY wake_at LIMIT ${limit}`
          const next = yield* sql<{ next: unknown }>`SELECT MIN(wake_at) AS next FROM ${executions}
            WHERE status = 'sleeping'${owned}`
          const nextWakeAt = yield* decodeNext(next[0]?.next ?? null)
          return { due: yield* decodeEach(rows), nextWakeAt }
        }).pipe(
          Effect.mapError(
            failed(
              "listDue",
              `list of due executions of ${shards === undefined ? "every shard" : `${shards.length} shards`}`,
              `sleeping executions in ${prefix}executions`
            )
          )
        ),
      listRunning: sql`SELECT * FROM ${executions} WHERE status = 'running' ORDER BY created_at`.pipe(
        Effect.mapError(failed("listRunning", "list of running executions")),
        Effect.flatMap(decodeEach)
      ),
      listUnfinished: ({ shard, after, limit }) =>
        sql`SELECT * FROM ${executions} WHERE shard = ${shard} AND status = 'running'${
          after === undefined ? sql`` : sql` AND execution_id${byteWise} > ${after}`
        } ORDER BY execution_id${byteWise} LIMIT ${limit}`.pipe(
          Effect.mapError(failed("listUnfinished", `list of unfinished executions of shard ${shard}`)),
          Effect.flatMap(decodeEach)
        ),
      getMany: (executionIds) =>
        executionIds.length === 0
          ? Effect.succeed([])
          : sql`SELECT * FROM ${executions} WHERE ${inTexts(sql, options.dialect, "execution_id", executionIds)}`.pipe(
              Effect.mapError(failed("getMany", `read of ${executionIds.length} executions`)),
              Effect.flatMap(decodeEach)
            ),
      takeInbox: (shards, limit) =>
        shards.length === 0
          ? Effect.succeed([])
          : // A read first: an empty inbox (the common case, polled every 100 ms by every pod)
            // costs no write transaction, which on SQLite would take the file's writer lock.
            // PostgreSQL: entries another pod is taking are skipped, never returned twice.
            sql`SELECT 1 AS found FROM ${inbox} WHERE ${inIntegers(sql, options.dialect, "shard", shards)} LIMIT 1`.pipe(
              Effect.flatMap((found) =>
                found.length === 0
                  ? Effect.succeed([])
                  : sql`DELETE FROM ${inbox} WHERE id IN (SELECT id FROM ${inbox}
                      WHERE ${inIntegers(sql, options.dialect, "shard", shards)} ORDER BY id LIMIT ${limit}${pg ? sql` FOR UPDATE SKIP LOCKED` : sql``})
                      RETURNING id, shard, execution_id`
              ),
              Effect.flatMap(decodeInbox),
              Effect.map((rows) =>
                [...rows]
                  .sort((a, b) => a.id - b.id)
                  .map((row): InboxEntry => ({ executionId: row.execution_id, shard: row.shard }))
              ),
              Effect.mapError(
                failed(
                  "takeInbox",
                  `take of the inbox of ${shards.length} shards`,
                  `entries of ${prefix}inbox`
                )
              )
            ),
      inboxArrivals:
        options.listen === undefined
          ? undefined
          : Stream.unwrap(Effect.map(options.listen(inboxChannel(prefix)), Stream.fromQueue)).pipe(
              Stream.map((notification) => Number(notification.payload)),
              Stream.mapError(journalError("inboxArrivals"))
            )
    } satisfies DurableExecutionJournal["Service"] & { readonly stats: GroupCommit.GroupCommitStats }
  })
