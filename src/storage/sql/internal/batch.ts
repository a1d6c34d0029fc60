/**
 * A group-commit batch of the SQL journal: its items (starts and writes), the rows they turn into
 * once merged (one row per new execution, one per step, ...), and the fencing rule that decides,
 * from the shards' stored epochs, which writes of the batch are refused.
 */
import { StaleEpochError } from "../../../sharding/ShardingErrors.ts"
import type {
  AttemptStart,
  Fence,
  JournalWrite,
  NewExecution,
  StatusChange
} from "../../../workflow/DurableExecutionJournal.ts"

/** An item of a group commit: a new execution, or a write to one. */
export type Item =
  | { readonly _tag: "Start"; readonly execution: NewExecution }
  | { readonly _tag: "Write"; readonly write: JournalWrite }

/** What a committed item gives its submitter: whether a start created its execution, or the refusal. */
export type ItemResult = boolean | StaleEpochError

/** A fenced write's shard and epoch, as the rows of a PostgreSQL batch carry them (`fs`, `fe`). */
interface FenceColumns {
  readonly fs: number | null
  readonly fe: number | null
}

export type StartRow = {
  readonly execution_id: string
  readonly workflow: string
  readonly request: string
  readonly status: "running"
  readonly interrupt_requested: number
  readonly shard: number | null
  readonly created_at: number
  readonly updated_at: number
}

export type StepRow = {
  readonly execution_id: string
  readonly step_key: string
  readonly activity_id: string
  readonly seq: number
  readonly previous_step: string | null
  readonly attempt: number
  readonly outcome: string | null
  readonly started_at: number
  readonly completed_at: number | null
  /** When the row's attempt started: set by a marker, null in an outcome row (keeps the stored one). */
  readonly attempt_started_at: number | null
  /** With an outcome: the last step seq its execution had started then (`StepRecord.completedAfter`). */
  readonly completed_after: number | null
}

export type AttemptRow = {
  readonly execution_id: string
  readonly step_key: string
  readonly attempt: number
  readonly started_at: number
  readonly ended_at: number
  readonly outcome: string
}

export type InboxRow = {
  readonly shard: number
  readonly execution_id: string
  readonly created_at: number
}

/** A status change of one execution. */
export interface StatusRow {
  readonly executionId: string
  readonly change: StatusChange
  readonly now: number
  readonly fence: Fence | undefined
}

/** The rows of a batch, merged: one row per new execution, one per step, the status changes. */
export interface Batch {
  readonly starts: ReadonlyArray<StartRow>
  /** Entries for the owners of the shards of new executions, written only if the start created it. */
  readonly startNotices: ReadonlyArray<InboxRow>
  readonly steps: ReadonlyArray<StepRow & FenceColumns>
  readonly attempts: ReadonlyArray<AttemptRow & FenceColumns>
  readonly statuses: ReadonlyArray<StatusRow>
  readonly notices: ReadonlyArray<InboxRow & FenceColumns>
  /** The shards whose epoch the batch's fenced writes carry, ascending (locked in this order). */
  readonly fencedShards: ReadonlyArray<number>
}

const fenceOf = (item: Item): Fence | undefined => (item._tag === "Write" ? item.write.fence : undefined)

/** The fence columns of a row of `executionId` (all its writes in a batch carry the same fence). */
const fenceColumns = (fences: ReadonlyMap<string, Fence>, executionId: string): FenceColumns => {
  const fence = fences.get(executionId)
  return fence === undefined ? { fs: null, fe: null } : { fs: fence.shard, fe: fence.epoch }
}

/**
 * The step rows of a batch, one per step: an outcome wins over an attempt marker of the same step,
 * a later attempt over an earlier one (a multi-row upsert must not touch a row twice).
 */
const mergeStepRows = (items: ReadonlyArray<Item>): Array<StepRow> => {
  const rows = new Map<string, StepRow>()
  for (const item of items) {
    if (item._tag !== "Write") continue
    const { executionId, now } = item.write
    const add = (step: AttemptStart, outcome: string | null, completedAfter: number | null) => {
      const key = `${executionId}\u0000${step.stepKey}`
      const existing = rows.get(key)
      if (existing !== undefined) {
        if (existing.outcome !== null) return
        if (outcome === null && existing.attempt >= step.attempt) return
      }
      // An outcome that replaces its own attempt's marker in this batch keeps the marker's times.
      const marker = existing !== undefined && existing.attempt === step.attempt ? existing : undefined
      rows.set(key, {
        execution_id: executionId,
        step_key: step.stepKey,
        activity_id: step.activityId,
        seq: step.seq,
        previous_step: step.previous,
        attempt: step.attempt,
        outcome,
        started_at: marker?.started_at ?? now,
        completed_at: outcome === null ? null : now,
        attempt_started_at: outcome === null ? now : (marker?.attempt_started_at ?? null),
        completed_after: outcome === null ? null : completedAfter
      })
    }
    for (const outcome of item.write.outcomes) add(outcome, outcome.outcome, outcome.completedAfter ?? null)
    if (item.write.attempt !== undefined) add(item.write.attempt, null, null)
  }
  return [...rows.values()]
}

/** Merges the items' rows. Each row of a fenced write carries its fence (see `fitsOneStatement`). */
export const describeBatch = (items: ReadonlyArray<Item>): Batch => {
  const fences = new Map<string, Fence>()
  for (const item of items) {
    const fence = fenceOf(item)
    if (fence !== undefined && item._tag === "Write") fences.set(item.write.executionId, fence)
  }
  const noticed = new Set<string>()
  return {
    starts: items.flatMap((item) =>
      item._tag === "Start"
        ? [
            {
              execution_id: item.execution.executionId,
              workflow: item.execution.workflow,
              request: item.execution.request,
              status: "running" as const,
              interrupt_requested: 0,
              // Required by the port; an engine that predates it leaves it out (null: backfilled).
              shard: (item.execution.shard as number | undefined) ?? null,
              created_at: item.execution.now,
              updated_at: item.execution.now
            }
          ]
        : []
    ),
    startNotices: items.flatMap((item) => {
      if (item._tag !== "Start" || item.execution.notify !== true) return []
      const { executionId, shard, now } = item.execution
      if (noticed.has(executionId)) return []
      noticed.add(executionId)
      return [{ shard, execution_id: executionId, created_at: now }]
    }),
    steps: mergeStepRows(items).map((row) => ({ ...row, ...fenceColumns(fences, row.execution_id) })),
    attempts: items.flatMap((item) =>
      item._tag === "Write"
        ? (item.write.failedAttempts ?? []).map((a) => ({
            execution_id: a.executionId,
            step_key: a.stepKey,
            attempt: a.attempt,
            started_at: a.startedAt,
            ended_at: a.endedAt,
            outcome: a.outcome,
            ...fenceColumns(fences, item.write.executionId)
          }))
        : []
    ),
    statuses: items.flatMap((item) =>
      item._tag === "Write" && item.write.status !== undefined
        ? [
            {
              executionId: item.write.executionId,
              change: item.write.status,
              now: item.write.now,
              fence: item.write.fence
            }
          ]
        : []
    ),
    notices: items.flatMap((item) =>
      item._tag === "Write" && item.write.notify !== undefined
        ? [
            {
              shard: item.write.notify,
              execution_id: item.write.executionId,
              created_at: item.write.now,
              ...fenceColumns(fences, item.write.executionId)
            }
          ]
        : []
    ),
    fencedShards: fencedShards(items)
  }
}

/** Bind parameters per statement: far below PostgreSQL's 65,535. */
const MAX_PARAMETERS = 30_000

/**
 * Whether a batch can be one PostgreSQL statement of CTEs. CTEs of one statement must not touch
 * the same row twice (the server would apply only one change), so two status changes of one
 * execution, or a start and a status change of one id, go through the sequential path. So do two
 * writes of one execution with different fences (or one fenced, one not): the merged rows of an
 * execution carry one fence.
 */
export const fitsOneStatement = (items: ReadonlyArray<Item>, batch: Batch): boolean => {
  const ids = new Set(batch.starts.map((row) => row.execution_id))
  for (const { executionId } of batch.statuses) {
    if (ids.has(executionId)) return false
    ids.add(executionId)
  }
  const fences = new Map<string, string>()
  for (const item of items) {
    if (item._tag !== "Write") continue
    const fence = item.write.fence
    const key = fence === undefined ? "-" : `${fence.shard}:${fence.epoch}`
    const seen = fences.get(item.write.executionId)
    if (seen !== undefined && seen !== key) return false
    fences.set(item.write.executionId, key)
  }
  // Status changes other than completions are one statement each; keep their parameters bounded.
  return batch.statuses.length * 6 <= MAX_PARAMETERS
}

/** The shards whose epochs the items' fences carry, ascending. */
export const fencedShards = (items: ReadonlyArray<Item>): Array<number> =>
  [
    ...new Set(
      items.flatMap((item) => {
        const fence = fenceOf(item)
        return fence === undefined ? [] : [fence.shard]
      })
    )
  ].sort((a, b) => a - b)

/**
 * The refusal of `item` given the shards' stored epochs (a shard without a row has none), or
 * undefined when it passes (unfenced, or its epoch is the stored one).
 */
export const refusal = (item: Item, epochs: ReadonlyMap<number, number>): StaleEpochError | undefined => {
  if (item._tag !== "Write" || item.write.fence === undefined) return undefined
  const { shard, epoch } = item.write.fence
  const current = epochs.get(shard)
  return current === epoch
    ? undefined
    : new StaleEpochError({
        executionId: item.write.executionId,
        shard,
        epoch,
        currentEpoch: current ?? null
      })
}

/** Rows per multi-row statement, well under SQLite's and PostgreSQL's parameter limits. */
export const CHUNK_ROWS = 500

/** Splits rows into non-empty chunks of at most `CHUNK_ROWS`. */
export const chunks = <A>(rows: ReadonlyArray<A>): Array<readonly [A, ...Array<A>]> => {
  const result: Array<readonly [A, ...Array<A>]> = []
  for (let i = 0; i < rows.length; i += CHUNK_ROWS) {
    const [first, ...others] = rows.slice(i, i + CHUNK_ROWS)
    if (first !== undefined) result.push([first, ...others])
  }
  return result
}
