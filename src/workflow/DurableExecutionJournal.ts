/**
 * The storage port of durable executions.
 *
 * A journal stores, per execution, the start request, one row per step (activity occurrence) with
 * its latest attempt number and, once known, its outcome, and finally the execution's result.
 * Every operation is one transaction in a SQL backend; outcomes are first-writer-wins, so a
 * recorded outcome is never replaced (invariant I1 is enforced here, not only in the engine).
 *
 * Payloads (`request`, `outcome`, `result`, `reason`) are JSON text produced by the workflow's
 * schemas: the journal never interprets them, the engine decodes them at the boundary.
 *
 * Backends: `MemoryJournal.layer` (tests), `SqliteJournal.layer` (embedded file store),
 * `PostgresJournal.layer` (production). All pass the same conformance suite
 * (`test/storage/conformance.ts`).
 */
import { Context, type Effect, type Option, Schema, type Stream } from "effect"
import type { StaleEpochError } from "../sharding/ShardingErrors.ts"
import type { JournalError } from "./WorkflowErrors.ts"

/**
 * Lifecycle of an execution. `succeeded`, `failed` and `interrupted` are final. `sleeping`: parked
 * by `Workflow.sleep` until `wakeAt`, with no fiber; the engine's timer wakes it.
 */
export const ExecutionStatus = Schema.Literals([
  "running",
  "suspended",
  "sleeping",
  "succeeded",
  "failed",
  "interrupted"
])

/** @see ExecutionStatus */
export type ExecutionStatus = typeof ExecutionStatus.Type

/** True for the statuses an execution never leaves. */
export const isFinal = (status: ExecutionStatus): boolean =>
  status === "succeeded" || status === "failed" || status === "interrupted"

/** One execution as stored. Backends decode their rows with this schema. */
export const ExecutionRecord = Schema.Struct({
  executionId: Schema.String,
  workflow: Schema.String,
  /** The encoded request, JSON text. */
  request: Schema.String,
  status: ExecutionStatus,
  /** The encoded `Exit` of the workflow once final, JSON text. */
  result: Schema.NullOr(Schema.String),
  /** The encoded `SuspendReason` while suspended, JSON text. */
  reason: Schema.NullOr(Schema.String),
  /** Set by `WorkflowEngine.interrupt`; survives restarts until the interruption is recorded. */
  interruptRequested: Schema.Boolean,
  /** While `sleeping`: when the timer wakes it (epoch ms); null otherwise, or until a signal. */
  wakeAt: Schema.NullOr(Schema.Number),
  createdAt: Schema.Number,
  updatedAt: Schema.Number
})

/** @see ExecutionRecord */
export type ExecutionRecord = typeof ExecutionRecord.Type

/** One step (an occurrence of an activity) of an execution as stored. */
export const StepRecord = Schema.Struct({
  executionId: Schema.String,
  /** `activityId`, or `activityId#n` for the n-th time the same activity is asked (n > 1). */
  stepKey: Schema.String,
  activityId: Schema.String,
  /** Order in which steps were first started in this execution. */
  seq: Schema.Number,
  /** The step the same fiber asked just before this one, null for a fiber's first (replay check, I7). */
  previous: Schema.NullOr(Schema.String),
  /** Latest attempt started (1, 2, ...). */
  attempt: Schema.Number,
  /** The encoded `Exit` of the activity, JSON text; null while not recorded. */
  outcome: Schema.NullOr(Schema.String),
  /** The last details an attempt reported with `Activity.heartbeat`, JSON text; null if none. */
  heartbeat: Schema.NullOr(Schema.String),
  /** When the step's first attempt started (epoch ms). */
  startedAt: Schema.Number,
  completedAt: Schema.NullOr(Schema.Number),
  /**
   * When its latest attempt (`attempt`) started (epoch ms), so that a timeline shows the attempt
   * that ran after a crash. Absent or null in rows written before the journal stored it.
   */
  attemptStartedAt: Schema.optionalKey(Schema.NullOr(Schema.Number)),
  /**
   * The highest `seq` the execution had started when this step's outcome was recorded: replay
   * delivers the outcome only once every recorded step up to that seq has been asked, so that
   * concurrent branches replay in the order they ran (a fail-fast `Effect.all` does not cut off a
   * sibling that had completed before the failure). Absent or null in rows written before the
   * journal stored it (their outcomes replay at once).
   */
  completedAfter: Schema.optionalKey(Schema.NullOr(Schema.Number))
})

/** @see StepRecord */
export type StepRecord = typeof StepRecord.Type

/** What `start` stores for a new execution. */
export interface NewExecution {
  readonly executionId: string
  readonly workflow: string
  readonly request: string
  /** Its shard (`ShardId.shardOf(executionId, shardCount)`), stored for paging by shard. */
  readonly shard: number
  /**
   * Another pod owns the shard: if this call creates the execution, leave an entry in the shard's
   * inbox, in the same transaction, so the owner learns of it (see `takeInbox`).
   */
  readonly notify?: boolean | undefined
  readonly now: number
}

/**
 * A shard's epoch as the pod that owns it knows it (its fencing token). A write that carries one
 * is refused, in its own transaction, with `StaleEpochError` when the shard's stored epoch differs.
 */
export interface Fence {
  readonly shard: number
  readonly epoch: number
}

/** An entry of a shard's inbox: something its owner must look at (a start, a resume, ...). */
export interface InboxEntry {
  readonly executionId: string
  readonly shard: number
}

/** The row of an execution that `start` has just created. */
export const newExecutionRecord = (execution: NewExecution): ExecutionRecord => ({
  executionId: execution.executionId,
  workflow: execution.workflow,
  request: execution.request,
  status: "running",
  result: null,
  reason: null,
  interruptRequested: false,
  wakeAt: null,
  createdAt: execution.now,
  updatedAt: execution.now
})

/** A signal sent to an execution (see `Signal`): stored once, the first completion wins. */
export interface NewSignal {
  readonly executionId: string
  readonly name: string
  /** The encoded value, JSON text. */
  readonly payload: string
  /**
   * Another pod owns the execution's shard (this number): if this call stores the signal, leave an
   * entry in that shard's inbox, in the same transaction (`takeInbox`).
   */
  readonly notify?: number | undefined
  readonly now: number
}

/** Progress an activity attempt reported (see `Activity.heartbeat`). */
export interface Heartbeat {
  readonly executionId: string
  readonly stepKey: string
  /** JSON text. */
  readonly details: string
  /** The owner's epoch: a stale one leaves the heartbeat unrecorded (no error: it is advisory). */
  readonly fence?: Fence | undefined
  readonly now: number
}

/** A page query of `list`. */
export interface ListQuery {
  /** Only executions of this workflow (request tag). */
  readonly workflow?: string | undefined
  /** Only executions in this status. */
  readonly status?: ExecutionStatus | undefined
  /** Only executions created at or after this time (epoch ms). */
  readonly createdSince?: number | undefined
  /** Only executions created before this time (epoch ms). */
  readonly createdUntil?: number | undefined
  /**
   * `id` (the default): by execution id. `newest` / `oldest`: by creation time, newest or oldest
   * first, ties by execution id (descending for `newest`), so paging is stable.
   */
  readonly order?: ListOrder | undefined
  /** With order `id`: only executions whose id sorts after this one (the next page's cursor). */
  readonly after?: string | undefined
  /**
   * With order `newest` / `oldest`: only executions after this one in that order (the next page's
   * keyset cursor: the last row of the previous page).
   */
  readonly position?: ListPosition | undefined
  /** At most this many. */
  readonly limit: number
}

/** The orders of `list`. */
export type ListOrder = "id" | "newest" | "oldest"

/** A place in the creation order of `list`: an execution's `createdAt` and id. */
export interface ListPosition {
  readonly createdAt: number
  readonly executionId: string
}

/** A query of `count`: the filters of `ListQuery` but the status. */
export interface CountQuery {
  readonly workflow?: string | undefined
  readonly createdSince?: number | undefined
  readonly createdUntil?: number | undefined
}

/** How many executions are in one status (`count` leaves out the statuses with none). */
export interface StatusCount {
  readonly status: ExecutionStatus
  readonly count: number
}

/** Whether `row` matches the filters of `query` (not the order nor the position). */
export const matchesQuery = (row: ExecutionRecord, query: Omit<ListQuery, "limit"> & CountQuery): boolean =>
  (query.workflow === undefined || row.workflow === query.workflow) &&
  (query.status === undefined || row.status === query.status) &&
  (query.createdSince === undefined || row.createdAt >= query.createdSince) &&
  (query.createdUntil === undefined || row.createdAt < query.createdUntil)

/** What `listDue` returns. */
export interface DueExecutions {
  readonly due: ReadonlyArray<ExecutionRecord>
  readonly nextWakeAt: number | null
}

/** What `start` found or created. */
export interface StartResult {
  readonly created: boolean
  readonly execution: ExecutionRecord
}

/** An attempt about to run. */
export interface AttemptStart {
  readonly executionId: string
  readonly stepKey: string
  readonly activityId: string
  readonly seq: number
  readonly previous: string | null
  readonly attempt: number
}

/** A final activity outcome. */
export interface StepOutcome extends AttemptStart {
  readonly outcome: string
  /** The highest step seq the execution had started when the outcome was recorded (see `StepRecord`). */
  readonly completedAfter?: number | undefined
}

/** A change of an execution's status. Ignored once the execution is final. */
export type StatusChange =
  | {
      readonly _tag: "Complete"
      readonly status: "succeeded" | "failed" | "interrupted"
      readonly result: string
    }
  | { readonly _tag: "Suspend"; readonly reason: string }
  /** Back to `running` from `suspended` or `sleeping`. */
  | { readonly _tag: "Resume" }
  | { readonly _tag: "RequestInterrupt" }
  /** Park the execution until `wakeAt` (status `sleeping`); null: until a signal wakes it. */
  | { readonly _tag: "Sleep"; readonly wakeAt: number | null }
  /** Back to `running`, only from `sleeping` (the timer's change: it never resumes a suspension). */
  | { readonly _tag: "Wake" }
  /** A sleeping execution becomes due no later than `wakeAt`; other statuses are left alone. */
  | { readonly _tag: "WakeBy"; readonly wakeAt: number }

/**
 * One atomic write to an execution: step outcomes, then optionally the start of an attempt and a
 * status change. Outcomes are first-writer-wins: a step that already has an outcome keeps it.
 */
export interface JournalWrite {
  readonly executionId: string
  readonly outcomes: ReadonlyArray<StepOutcome>
  readonly attempt?: AttemptStart | undefined
  readonly status?: StatusChange | undefined
  /** Attempts that failed and were retried, for the execution's history. */
  readonly failedAttempts?: ReadonlyArray<AttemptRecord> | undefined
  /**
   * The writer owns the execution's shard at this epoch: the store checks it in the same
   * transaction and refuses the whole write with `StaleEpochError` if it is no longer current.
   * Absent for requests any pod may make (`RequestInterrupt`, `Resume`).
   */
  readonly fence?: Fence | undefined
  /**
   * Another pod owns the execution's shard (this number): leave an entry in its inbox in the same
   * transaction (not if the write is refused).
   */
  readonly notify?: number | undefined
  readonly now: number
}

/** An attempt that ended without recording the step's outcome (it failed and was retried). */
export const AttemptRecord = Schema.Struct({
  executionId: Schema.String,
  stepKey: Schema.String,
  attempt: Schema.Number,
  startedAt: Schema.Number,
  endedAt: Schema.Number,
  /** The encoded `Exit` of the attempt (its failure), JSON text. */
  outcome: Schema.String
})

/** @see AttemptRecord */
export type AttemptRecord = typeof AttemptRecord.Type

/**
 * Whether a write must reach the disk before it returns. A write that only marks an attempt as
 * started, or only wakes a sleeping execution, is *advisory*: it survives a process crash
 * (kill -9), but a power loss may drop it, which can only make the next attempt number lower or
 * leave the execution sleeping past its time (the timer wakes it again). Everything else is durable.
 */
export const isDurable = (write: JournalWrite): boolean =>
  write.outcomes.length > 0 || (write.status !== undefined && write.status._tag !== "Wake")

/**
 * The journal service. Each operation is one transaction; `start` and durable `write`s are on
 * disk when they return.
 *
 * The engine commits a step's outcome together with the next thing the execution does (the
 * next attempt marker, or its result), so a sequential workflow of n activities costs n + 1
 * durable commits: the start and one per activity, the last one carrying the result.
 */
export class DurableExecutionJournal extends Context.Service<
  DurableExecutionJournal,
  {
    /** Inserts the execution unless its id exists; returns the stored row either way. */
    readonly start: (execution: NewExecution) => Effect.Effect<StartResult, JournalError>
    /** The execution row, if any. */
    readonly get: (executionId: string) => Effect.Effect<Option.Option<ExecutionRecord>, JournalError>
    /** All steps of an execution, ordered by `seq`. */
    readonly steps: (executionId: string) => Effect.Effect<ReadonlyArray<StepRecord>, JournalError>
    /**
     * All steps of several executions in one read, each execution's ordered by `seq` (executions
     * in any order): an engine loading many runs at once (a shard taken over) reads their journals
     * a page at a time. Optional: without it the engine calls `steps` once per execution. A
     * wrapper that changes what `steps` returns must change this too (or leave it out).
     */
    readonly stepsMany?:
      | ((executionIds: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<StepRecord>, JournalError>)
      | undefined
    /**
     * Applies a write atomically (see `JournalWrite`); a status change of a final execution is
     * ignored. A write with a stale `fence` changes nothing and fails with `StaleEpochError`.
     */
    readonly write: (write: JournalWrite) => Effect.Effect<void, JournalError | StaleEpochError>
    /** Executions whose status is `running`, oldest first (every shard). */
    readonly listRunning: Effect.Effect<ReadonlyArray<ExecutionRecord>, JournalError>
    /**
     * A page of the `running` executions of one shard, by execution id, after the id `after`:
     * what a pod resumes when it takes the shard over.
     */
    readonly listUnfinished: (query: {
      readonly shard: number
      readonly after?: string | undefined
      readonly limit: number
    }) => Effect.Effect<ReadonlyArray<ExecutionRecord>, JournalError>
    /**
     * Sleeping executions whose `wakeAt` is at or before `now`, earliest first, at most `limit`;
     * and the earliest `wakeAt` of all sleeping executions (null if none): the engine's timer.
     * With `shards`, only executions of those shards (the ones this pod owns).
     */
    readonly listDue: (
      now: number,
      limit: number,
      shards?: ReadonlyArray<number> | undefined
    ) => Effect.Effect<DueExecutions, JournalError>
    /** The rows of these executions (those that exist), in any order: callers waiting for results. */
    readonly getMany: (
      executionIds: ReadonlyArray<string>
    ) => Effect.Effect<ReadonlyArray<ExecutionRecord>, JournalError>
    /**
     * Removes and returns up to `limit` inbox entries of `shards`, oldest first: starts, resumes,
     * interrupts and signals that pods which do not own a shard left for its owner.
     */
    readonly takeInbox: (
      shards: ReadonlyArray<number>,
      limit: number
    ) => Effect.Effect<ReadonlyArray<InboxEntry>, JournalError>
    /**
     * Present when the backend can push inbox arrivals (PostgreSQL `LISTEN/NOTIFY`): emits the
     * shard of each new entry. Owners still poll `takeInbox` as a safety net.
     */
    readonly inboxArrivals?: Stream.Stream<number, JournalError> | undefined
    /**
     * Stores a signal unless one with that name was already stored for the execution (returns
     * whether this call stored it), and in the same transaction makes a sleeping execution due
     * now (`wakeAt = now`), so that a timer wakes it to receive the signal.
     */
    readonly signal: (signal: NewSignal) => Effect.Effect<boolean, JournalError>
    /** The stored payload of a signal, if it arrived. */
    readonly getSignal: (
      executionId: string,
      name: string
    ) => Effect.Effect<Option.Option<string>, JournalError>
    /** The failed (retried) attempts of an execution's steps, by step and attempt. */
    readonly attempts: (executionId: string) => Effect.Effect<ReadonlyArray<AttemptRecord>, JournalError>
    /** Executions matching `query`, in its order (by execution id unless it says otherwise). */
    readonly list: (query: ListQuery) => Effect.Effect<ReadonlyArray<ExecutionRecord>, JournalError>
    /** How many executions match `query`, per status (statuses with none left out). */
    readonly count: (query: CountQuery) => Effect.Effect<ReadonlyArray<StatusCount>, JournalError>
    /**
     * Stores the latest heartbeat details of a step that has no outcome yet. Advisory: a crash
     * may lose the last one, the next attempt then sees the one before.
     */
    readonly heartbeat: (heartbeat: Heartbeat) => Effect.Effect<void, JournalError>
    /**
     * Present when the backend sees every writer of the journal (memory: one process): calls
     * `listener` with the wake-up time whenever an execution parks with a deadline or becomes due
     * (a signal, `WakeBy`); returns a function that unsubscribes. An engine on such a journal needs
     * no timer polling, so a test that skips a month with `TestClock` costs one wake-up, not one
     * per poll interval. Backends shared by processes leave it out: their engines poll.
     */
    readonly wakeups?: ((listener: (wakeAt: number) => void) => () => void) | undefined
  }
>()("effect-cluster/workflow/DurableExecutionJournal") {}

/** Applies a status change to a row: the single definition every backend uses. */
export const applyStatusChange = (
  row: ExecutionRecord,
  change: StatusChange,
  now: number
): ExecutionRecord => {
  if (isFinal(row.status)) return row
  switch (change._tag) {
    case "Complete":
      return {
        ...row,
        status: change.status,
        result: change.result,
        reason: null,
        wakeAt: null,
        updatedAt: now
      }
    case "Suspend":
      return { ...row, status: "suspended", reason: change.reason, wakeAt: null, updatedAt: now }
    case "Resume":
      return { ...row, status: "running", reason: null, wakeAt: null, updatedAt: now }
    case "RequestInterrupt":
      return { ...row, interruptRequested: true, updatedAt: now }
    case "Sleep":
      return { ...row, status: "sleeping", reason: null, wakeAt: change.wakeAt, updatedAt: now }
    case "Wake":
      return row.status === "sleeping" ? { ...row, status: "running", wakeAt: null, updatedAt: now } : row
    case "WakeBy":
      return row.status === "sleeping" && (row.wakeAt === null || row.wakeAt > change.wakeAt)
        ? { ...row, wakeAt: change.wakeAt, updatedAt: now }
        : row
  }
}
