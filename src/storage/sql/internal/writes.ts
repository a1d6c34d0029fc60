/**
 * How the SQL journal commits a group-commit batch: as statements in one transaction (SQLite, and
 * PostgreSQL batches that cannot be one statement), or as ONE PostgreSQL statement of
 * data-modifying CTEs.
 *
 * Fencing happens in the batch's own transaction. The shards that the batch's fenced writes name
 * are read first — on PostgreSQL with `FOR SHARE`, so an epoch bump (`UPDATE ... epoch = epoch + 1`
 * of `assign`/`release`) waits for the batch to commit, and a batch that waited for a bump sees the
 * new epoch. A write whose epoch is not the stored one writes nothing and gets its
 * `StaleEpochError`; the other writes of the batch commit.
 */
import { Effect } from "effect"
import type { SqlClient } from "effect/sql/SqlClient"
import type { SqlError } from "effect/sql/SqlError"
import type * as Statement from "effect/sql/Statement"
import type { Fence, StatusChange } from "../../../workflow/DurableExecutionJournal.ts"
import {
  type AttemptRow,
  type Batch,
  CHUNK_ROWS,
  chunks,
  describeBatch,
  fitsOneStatement,
  type InboxRow,
  type Item,
  type ItemResult,
  refusal,
  type StartRow,
  type StatusRow,
  type StepRow
} from "./batch.ts"
import { lockedEpochs } from "./epochGate.ts"
import { inIntegers } from "./lists.ts"
import { inTransaction } from "./transaction.ts"

/** What the writer needs to know about the database. */
export interface WritesOptions {
  readonly sql: SqlClient
  readonly prefix: string
  readonly dialect: "sqlite" | "pg"
  /** See `SqlJournalOptions.setDurability`. */
  readonly setDurability?: ((durable: boolean) => Effect.Effect<void, SqlError>) | undefined
}

/** The columns of a step row, in the order `upsertStepsIf` lists them. */
const STEP_COLUMNS: ReadonlyArray<keyof StepRow> = [
  "execution_id",
  "step_key",
  "activity_id",
  "seq",
  "previous_step",
  "attempt",
  "outcome",
  "started_at",
  "completed_at",
  "attempt_started_at",
  "completed_after"
]

/** The PostgreSQL channel on which inbox arrivals are announced (`pg_notify`), one per prefix. */
export const inboxChannel = (prefix: string): string => `${prefix}inbox`

/** SQLite: a completion `completeMany` writes. */
interface Completion {
  readonly executionId: string
  readonly status: string
  readonly result: string
  readonly now: number
}

/** A completion as `completeAll` takes it: one element of its JSON parameter. */
export interface CompletionRow {
  readonly execution_id: string
  readonly status: string
  readonly result: string
  readonly updated_at: number
  readonly fs: number | null
  readonly fe: number | null
}

/**
 * PostgreSQL: the completions of a batch as one `UPDATE … FROM json_to_recordset`. The ids are
 * given again as an init-plan array, so the executions are found through their primary key: joined
 * with the JSON rows alone (100 rows to the planner), a table never analyzed was scanned whole in
 * every batch with a completion. `fence` adds the fence of a fenced batch (`passes`, on rows `r`
 * with the columns `fs`, `fe`): it filters the array, not the JSON rows of the join. As a filter
 * of the join's JSON rows it made the planner loop over the executions and parse the whole JSON
 * again for each one (a nested loop over `json_to_recordset`: n² rows parsed per batch), and
 * fenced batches at concurrency 256 ran at 0.6 × unfenced. The ids must be distinct: with two
 * completions of one execution, one passing its fence and one not, the id would pass and either row
 * could be applied (a batch with two status changes of one execution takes the sequential path,
 * `fitsOneStatement`).
 */
export const completeAll = (
  sql: SqlClient,
  executions: Statement.Identifier,
  completions: ReadonlyArray<CompletionRow>,
  fence?: { readonly passes: Statement.Fragment }
): Statement.Statement<never> => {
  const ids =
    fence === undefined
      ? sql`SELECT json_array_elements_text(${JSON.stringify(completions.map((row) => row.execution_id))}::json)`
      : sql`SELECT r.execution_id FROM json_to_recordset(${JSON.stringify(
          completions.map(({ execution_id, fs, fe }) => ({ execution_id, fs, fe }))
        )}::json) AS r(execution_id text, fs int, fe bigint) WHERE ${fence.passes}`
  return sql`UPDATE ${executions} AS e SET status = r.status, result = r.result, reason = NULL,
    wake_at = NULL, updated_at = r.updated_at
    FROM json_to_recordset(${JSON.stringify(completions)}::json)
      AS r(execution_id text, status text, result text, updated_at bigint)
    WHERE e.execution_id = r.execution_id AND e.status IN ('running', 'suspended', 'sleeping')
      AND e.execution_id = ANY(ARRAY(${ids}))`
}

/**
 * PostgreSQL's batch statement: the row `r` (with columns `fs`, `fe`) belongs to an unfenced write,
 * or its fence's epoch is the one the statement's `fence` CTE read.
 */
export const rowPassesFence = (sql: SqlClient): Statement.Fragment =>
  sql`(r.fs IS NULL OR EXISTS (SELECT 1 FROM fence f WHERE f.shard_id = r.fs AND f.epoch = r.fe))`

/** Builds the `flush` of the journal's group commit. */
export const make = (options: WritesOptions) => {
  const { sql, prefix, dialect } = options
  const executions = sql(`${prefix}executions`)
  const steps = sql(`${prefix}steps`)
  const attemptsTable = sql(`${prefix}attempts`)
  const shards = sql(`${prefix}shards`)
  const inbox = sql(`${prefix}inbox`)
  const channel = inboxChannel(prefix)

  /** Everything a batch writes, merged into as few statements as possible; one result per item. */
  const flush = (
    items: ReadonlyArray<Item>,
    durable: boolean
  ): Effect.Effect<ReadonlyArray<ItemResult>, SqlError> =>
    Effect.suspend(() => {
      const batch = describeBatch(items)
      if (dialect === "pg" && fitsOneStatement(items, batch)) {
        return Effect.map(pgStatement(batch, durable), ({ created, epochs }) =>
          results(items, new Set(created), epochs)
        )
      }
      return sequential(items, durable)
    })

  /** Each item's result: its refusal, or whether it created its execution. */
  const results = (
    items: ReadonlyArray<Item>,
    created: Set<string>,
    epochs: ReadonlyMap<number, number>
  ): Array<ItemResult> =>
    // Only the first start of an id in a batch created it.
    items.map(
      (item) => refusal(item, epochs) ?? (item._tag === "Start" && created.delete(item.execution.executionId))
    )

  /** The stored epochs of `shardIds`; on PostgreSQL their rows stay share-locked until commit. */
  const readEpochs = (shardIds: ReadonlyArray<number>) =>
    Effect.map(
      dialect === "pg"
        ? lockedEpochs(sql, prefix, shardIds)
        : sql<{ readonly shard_id: unknown; readonly epoch: unknown }>`SELECT shard_id, epoch FROM ${shards}
            WHERE ${inIntegers(sql, dialect, "shard_id", shardIds)} ORDER BY shard_id`,
      (rows) => new Map(rows.map((row) => [Number(row.shard_id), Number(row.epoch)]))
    )

  /** Whether the shard of `fence` has its epoch in `epochsOf` (a table or CTE of shards and epochs). */
  const holds = (fence: Fence, epochsOf: Statement.Fragment) =>
    sql`EXISTS (SELECT 1 FROM ${epochsOf} WHERE shard_id = ${fence.shard} AND epoch = ${fence.epoch})`

  /**
   * SQLite: a batch whose writes all carry one fence and make one statement is that one statement,
   * committed on its own, with the fence check inside it: the database's single writer makes the
   * check as safe as the transaction's epoch read, at a third of the statements. A statement that
   * wrote nothing was either refused or had nothing to change: only then is the epoch read, to tell.
   * Gives the epochs the items' refusals are decided by; undefined: the batch needs the transaction.
   */
  const oneFencedStatement = (
    items: ReadonlyArray<Item>,
    batch: Batch
  ): Effect.Effect<ReadonlyMap<number, number>, SqlError> | undefined => {
    if (dialect !== "sqlite" || batch.attempts.length > 0 || batch.notices.length > 0) return undefined
    const first = items[0]
    if (first?._tag !== "Write" || first.write.fence === undefined) return undefined
    const fence = first.write.fence
    for (const item of items) {
      if (
        item._tag !== "Write" ||
        item.write.fence?.shard !== fence.shard ||
        item.write.fence.epoch !== fence.epoch
      )
        return undefined
    }
    let statement: Statement.Statement<{ readonly wrote: unknown }>
    if (batch.statuses.length === 0 && batch.steps.length > 0 && batch.steps.length <= CHUNK_ROWS) {
      statement = upsertStepsIf(
        batch.steps.map(({ fs: _, fe: __, ...row }) => row),
        holds(fence, sql`${shards}`)
      )
    } else if (batch.steps.length === 0 && batch.statuses.length === 1) {
      const { executionId, change, now } = batch.statuses[0]!
      statement = sql`${statusStatement(executionId, change, now, fence, sql`${shards}`)} RETURNING 1 AS wrote`
    } else {
      return undefined
    }
    return Effect.flatMap(statement, (rows) =>
      rows.length > 0 ? Effect.succeed(new Map([[fence.shard, fence.epoch]])) : readEpochs([fence.shard])
    )
  }

  /**
   * The batch as statements: one commits on its own, more in one transaction; a fenced batch reads
   * its shards' epochs first and writes what passed (or is one fenced statement, on SQLite).
   */
  const sequential = (
    items: ReadonlyArray<Item>,
    durable: boolean
  ): Effect.Effect<ReadonlyArray<ItemResult>, SqlError> => {
    const batch = describeBatch(items)
    const created: Array<string> = []
    const run = (statements: ReadonlyArray<Effect.Effect<unknown, SqlError>>) =>
      Effect.forEach(statements, (statement) => statement, { discard: true })
    let committed: Effect.Effect<ReadonlyMap<number, number>, SqlError>
    if (batch.fencedShards.length === 0) {
      const statements = statementsOf(batch, durable, created)
      const all = run(statements)
      committed = Effect.as(statements.length > 1 ? inTransaction(sql, all) : all, new Map())
    } else {
      committed =
        oneFencedStatement(items, batch) ??
        inTransaction(
          sql,
          Effect.gen(function* () {
            const epochs = yield* readEpochs(batch.fencedShards)
            const passing = items.filter((item) => refusal(item, epochs) === undefined)
            // Usually every item passes: the batch already described is the one to write.
            yield* run(
              statementsOf(passing.length === items.length ? batch : describeBatch(passing), durable, created)
            )
            return epochs
          })
        )
    }
    const done = Effect.map(committed, (epochs) => results(items, new Set(created), epochs))
    return options.setDurability === undefined ? done : Effect.andThen(options.setDurability(durable), done)
  }

  /** The statements of a batch that passed its fence check; `created` collects the new ids. */
  const statementsOf = (
    batch: Batch,
    durable: boolean,
    created: Array<string>
  ): Array<Effect.Effect<unknown, SqlError>> => {
    const statements: Array<Effect.Effect<unknown, SqlError>> = []
    // PostgreSQL: an advisory batch commits without waiting for the WAL flush. It survives a
    // crash of this process; a server crash may lose it, which only lowers an attempt number.
    if (!durable && dialect === "pg") statements.push(sql`SET LOCAL synchronous_commit TO OFF`)
    const noticed: Array<InboxRow> = []
    for (const rows of chunks(batch.starts)) {
      statements.push(
        Effect.map(insertStarts(rows), (inserted) => {
          for (const row of inserted) created.push(row.execution_id)
        })
      )
    }
    if (batch.startNotices.length > 0) {
      // After the inserts: only a start that created its execution tells the owner.
      statements.push(
        Effect.suspend(() => {
          const news = new Set(created)
          const rows = batch.startNotices.filter((row) => news.has(row.execution_id))
          noticed.push(...rows)
          return Effect.forEach(chunks(rows), insertInbox, { discard: true })
        })
      )
    }
    for (const rows of chunks(batch.steps.map(({ fs: _, fe: __, ...row }) => row))) {
      statements.push(upsertSteps(rows))
    }
    for (const rows of chunks(batch.attempts.map(({ fs: _, fe: __, ...row }) => row))) {
      statements.push(insertAttempts(rows))
    }
    const { completions, others } = mergeableCompletions(batch.statuses)
    for (const { executionId, change, now } of others) {
      statements.push(statusStatement(executionId, change, now))
    }
    for (const rows of chunks(completions)) statements.push(completeMany(rows))
    const notices = batch.notices.map(({ fs: _, fe: __, ...row }) => row)
    for (const rows of chunks(notices)) statements.push(insertInbox(rows))
    if (dialect === "pg" && (notices.length > 0 || batch.startNotices.length > 0)) {
      statements.push(Effect.suspend(() => announce([...noticed, ...notices])))
    }
    return statements
  }

  /** PostgreSQL: tells the listeners of the inbox channel which shards got entries (at commit). */
  const announce = (rows: ReadonlyArray<InboxRow>) =>
    Effect.forEach(
      [...new Set(rows.map((row) => row.shard))],
      (shard) => sql`SELECT pg_notify(${channel}, ${String(shard)})`,
      { discard: true }
    )

  const insertStarts = (rows: readonly [StartRow, ...Array<StartRow>]) =>
    sql<{ execution_id: string }>`INSERT INTO ${executions} ${sql.insert(rows)}
      ON CONFLICT (execution_id) DO NOTHING RETURNING execution_id`

  const insertAttempts = (rows: readonly [AttemptRow, ...Array<AttemptRow>]) =>
    sql`INSERT INTO ${attemptsTable} ${sql.insert(rows)}
      ON CONFLICT (execution_id, step_key, attempt) DO NOTHING`

  const insertInbox = (rows: readonly [InboxRow, ...Array<InboxRow>]) =>
    sql`INSERT INTO ${inbox} ${sql.insert(rows)}`

  /** A step row is recorded once: its outcome, once there, is never replaced. */
  const onStepConflict = sql`ON CONFLICT (execution_id, step_key) DO UPDATE
      SET outcome = excluded.outcome, attempt = excluded.attempt, completed_at = excluded.completed_at,
        attempt_started_at = COALESCE(excluded.attempt_started_at, ${steps}.attempt_started_at),
        completed_after = excluded.completed_after
      WHERE ${steps}.outcome IS NULL`

  const upsertSteps = (rows: readonly [StepRow, ...Array<StepRow>]) =>
    sql`INSERT INTO ${steps} ${sql.insert(rows)} ${onStepConflict}`

  /** SQLite: `upsertSteps` if `condition` holds, in the same statement; a row per row it wrote. */
  const upsertStepsIf = (rows: ReadonlyArray<StepRow>, condition: Statement.Fragment) => {
    const values = sql.join(
      ", ",
      false
    )(rows.map((row) => sql`(${sql.join(", ", false)(STEP_COLUMNS.map((column) => sql`${row[column]}`))})`))
    // The WHERE also tells SQLite's parser that ON CONFLICT belongs to the INSERT.
    return sql<{ readonly wrote: unknown }>`INSERT INTO ${steps} (${sql.literal(STEP_COLUMNS.join(", "))})
      SELECT * FROM (VALUES ${values}) WHERE ${condition} ${onStepConflict} RETURNING 1 AS wrote`
  }

  /**
   * PostgreSQL: the whole batch as ONE statement of data-modifying CTEs, which the server runs
   * as one implicit transaction: one round trip instead of BEGIN, n statements and COMMIT. Each
   * kind of row travels as one JSON parameter (`json_to_recordset`), so the statement text does
   * not depend on the batch size: the server keeps it prepared, and the client encodes one
   * string instead of thousands of parameters. An advisory batch sets `synchronous_commit` for
   * its own transaction with `set_config`.
   *
   * Fenced writes: a `fence` CTE share-locks the shards named by the batch's fences (in shard
   * order) and reads their epochs; each row of a fenced write carries its fence (`fs`, `fe`) and
   * is written only if the `fence` CTE has that shard at that epoch. The statement returns the
   * epochs, from which each item's refusal is decided the same way. A batch without fences has
   * neither the CTE nor the conditions.
   */
  const pgStatement = (
    batch: Batch,
    durable: boolean
  ): Effect.Effect<{ readonly created: Array<string>; readonly epochs: Map<number, number> }, SqlError> => {
    const ctes: Array<Statement.Fragment> = []
    const outputs: Array<Statement.Fragment> = []
    const cte = (body: Statement.Fragment) => {
      const name = sql.literal(`w${ctes.length}`)
      ctes.push(sql`${name} AS (${body})`)
      return name
    }
    const fenced = batch.fencedShards.length > 0
    if (fenced) {
      ctes.push(sql`fence AS (${lockedEpochs(sql, prefix, batch.fencedShards)})`)
      outputs.push(sql`SELECT 'f' AS kind, NULL::text AS execution_id, shard_id, epoch FROM fence`)
    }
    const passes = fenced ? rowPassesFence(sql) : sql`true`
    const fenceColumns = fenced ? sql`, fs int, fe bigint` : sql``
    const inboxCtes: Array<Statement.Fragment> = []
    if (batch.starts.length > 0) {
      const started = cte(sql`INSERT INTO ${executions}
        (execution_id, workflow, request, status, interrupt_requested, shard, created_at, updated_at)
        SELECT r.execution_id, r.workflow, r.request, 'running', 0, r.shard, r.created_at, r.created_at
        FROM json_to_recordset(${JSON.stringify(batch.starts)}::json)
          AS r(execution_id text, workflow text, request text, shard int, created_at bigint)
        ON CONFLICT (execution_id) DO NOTHING RETURNING execution_id`)
      outputs.push(
        sql`SELECT 'c' AS kind, execution_id, NULL::int AS shard_id, NULL::bigint AS epoch FROM ${started}`
      )
      if (batch.startNotices.length > 0) {
        inboxCtes.push(
          cte(sql`INSERT INTO ${inbox} (shard, execution_id, created_at)
            SELECT r.shard, r.execution_id, r.created_at
            FROM json_to_recordset(${JSON.stringify(batch.startNotices)}::json)
              AS r(shard int, execution_id text, created_at bigint)
            WHERE r.execution_id IN (SELECT execution_id FROM ${started})
            RETURNING shard`)
        )
      }
    }
    if (batch.steps.length > 0) {
      cte(sql`INSERT INTO ${steps}
        (execution_id, step_key, activity_id, seq, previous_step, attempt, outcome, started_at, completed_at,
          attempt_started_at, completed_after)
        SELECT r.execution_id, r.step_key, r.activity_id, r.seq, r.previous_step, r.attempt, r.outcome,
          r.started_at, r.completed_at, r.attempt_started_at, r.completed_after
        FROM json_to_recordset(${JSON.stringify(batch.steps)}::json)
          AS r(execution_id text, step_key text, activity_id text, seq integer, previous_step text,
               attempt integer, outcome text, started_at bigint, completed_at bigint,
               attempt_started_at bigint, completed_after bigint${fenceColumns})
        WHERE ${passes}
        ON CONFLICT (execution_id, step_key) DO UPDATE
        SET outcome = excluded.outcome, attempt = excluded.attempt, completed_at = excluded.completed_at,
          attempt_started_at = COALESCE(excluded.attempt_started_at, ${steps}.attempt_started_at),
          completed_after = excluded.completed_after
        WHERE ${steps}.outcome IS NULL`)
    }
    if (batch.attempts.length > 0) {
      cte(sql`INSERT INTO ${attemptsTable} (execution_id, step_key, attempt, started_at, ended_at, outcome)
        SELECT r.execution_id, r.step_key, r.attempt, r.started_at, r.ended_at, r.outcome
        FROM json_to_recordset(${JSON.stringify(batch.attempts)}::json)
          AS r(execution_id text, step_key text, attempt integer, started_at bigint, ended_at bigint,
               outcome text${fenceColumns})
        WHERE ${passes}
        ON CONFLICT (execution_id, step_key, attempt) DO NOTHING`)
    }
    const completions = batch.statuses.flatMap(({ executionId, change, now, fence }) =>
      change._tag === "Complete"
        ? [
            {
              execution_id: executionId,
              status: change.status,
              result: change.result,
              updated_at: now,
              fs: fence?.shard ?? null,
              fe: fence?.epoch ?? null
            }
          ]
        : []
    )
    if (completions.length > 0)
      cte(completeAll(sql, executions, completions, fenced ? { passes } : undefined))
    for (const { executionId, change, now, fence } of batch.statuses) {
      if (change._tag !== "Complete") cte(statusStatement(executionId, change, now, fence))
    }
    if (batch.notices.length > 0) {
      inboxCtes.push(
        cte(sql`INSERT INTO ${inbox} (shard, execution_id, created_at)
          SELECT r.shard, r.execution_id, r.created_at
          FROM json_to_recordset(${JSON.stringify(batch.notices)}::json)
            AS r(shard int, execution_id text, created_at bigint${fenceColumns})
          WHERE ${passes}
          RETURNING shard`)
      )
    }
    if (inboxCtes.length > 0) {
      // Delivered to the listeners when the statement's transaction commits.
      const shardsNoticed = sql.join(
        " UNION ",
        false
      )(inboxCtes.map((name) => sql`SELECT shard FROM ${name}`))
      outputs.push(
        sql`SELECT 'n' AS kind, pg_notify(${channel}, shard::text)::text AS execution_id, NULL::int AS shard_id,
          NULL::bigint AS epoch FROM (${shardsNoticed}) AS noticed`
      )
    }
    if (ctes.length === 0) return Effect.succeed({ created: [], epochs: new Map() })
    if (!durable) {
      outputs.push(
        sql`SELECT 'r' AS kind, set_config('synchronous_commit', 'off', true) AS execution_id, NULL::int AS shard_id,
          NULL::bigint AS epoch`
      )
    }
    outputs.push(sql`SELECT 'x' AS kind, NULL::text AS execution_id, NULL::int AS shard_id, NULL::bigint AS epoch
      WHERE false`)
    return Effect.map(
      sql<{
        readonly kind: string
        readonly execution_id: string | null
        readonly shard_id: unknown
        readonly epoch: unknown
      }>`WITH ${sql.csv(ctes)} ${sql.join(" UNION ALL ", false)(outputs)}`,
      (rows) => {
        const created: Array<string> = []
        const epochs = new Map<number, number>()
        for (const row of rows) {
          if (row.kind === "c" && row.execution_id !== null) created.push(row.execution_id)
          else if (row.kind === "f") epochs.set(Number(row.shard_id), Number(row.epoch))
        }
        return { created, epochs }
      }
    )
  }

  /**
   * SQLite: the completions of a batch whose execution has no other status change in it, to be
   * written by one statement (`completeMany`) instead of one `UPDATE` each; the other changes, in
   * order. PostgreSQL's batch statement has its own way (`completeAll`).
   */
  const mergeableCompletions = (statuses: ReadonlyArray<StatusRow>) => {
    const none = { completions: [], others: statuses }
    if (dialect !== "sqlite" || statuses.length < 2) return none
    const changes = new Map<string, number>()
    for (const { executionId } of statuses) changes.set(executionId, (changes.get(executionId) ?? 0) + 1)
    const completions: Array<Completion> = []
    const others: Array<StatusRow> = []
    for (const row of statuses) {
      const { executionId, change, now } = row
      if (change._tag === "Complete" && changes.get(executionId) === 1) {
        completions.push({ executionId, status: change.status, result: change.result, now })
      } else others.push(row)
    }
    return completions.length < 2 ? none : { completions, others }
  }

  /** SQLite: the completions of several executions (distinct ids) as one `UPDATE … FROM`. */
  const completeMany = (rows: ReadonlyArray<Completion>) => {
    const values = sql.join(
      ", ",
      false
    )(rows.map(({ executionId, status, result, now }) => sql`(${executionId}, ${status}, ${result}, ${now})`))
    return sql`UPDATE ${executions} SET status = done.column2, result = done.column3, reason = NULL, wake_at = NULL,
        updated_at = done.column4
      FROM (VALUES ${values}) AS done
      WHERE ${executions}.execution_id = done.column1 AND ${executions}.status IN ('running', 'suspended', 'sleeping')`
  }

  /**
   * Mirrors `applyStatusChange`: final executions never change. With a fence, the change also
   * needs `epochsOf` (the PostgreSQL batch statement's `fence` CTE, or SQLite's shards table) to
   * have the fence's epoch.
   */
  const statusStatement = (
    id: string,
    change: StatusChange,
    now: number,
    fence?: Fence,
    epochsOf: Statement.Fragment = sql`fence`
  ) => {
    const fenced = fence === undefined ? sql`` : sql` AND ${holds(fence, epochsOf)}`
    const unfinished = sql`execution_id = ${id} AND status IN ('running', 'suspended', 'sleeping')${fenced}`
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
          WHERE execution_id = ${id} AND status = 'sleeping'${fenced}`
      case "WakeBy":
        return sql`UPDATE ${executions} SET wake_at = ${change.wakeAt}, updated_at = ${now}
          WHERE execution_id = ${id} AND status = 'sleeping' AND (wake_at IS NULL OR wake_at > ${change.wakeAt})${fenced}`
    }
  }

  return { flush }
}
