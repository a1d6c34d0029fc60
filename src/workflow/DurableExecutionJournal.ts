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
 * Backends: `MemoryJournal.layer` (tests), `SqliteJournal.layer` (embedded file store).
 */
import { Context, type Effect, type Option, Schema } from "effect"
import type { JournalError } from "./WorkflowErrors.ts"

/** Lifecycle of an execution. `succeeded`, `failed` and `interrupted` are final. */
export const ExecutionStatus = Schema.Literals(["running", "suspended", "succeeded", "failed", "interrupted"])

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
  /** How many step outcomes the workflow had consumed when it asked this step (replay check). */
  after: Schema.Number,
  /** Latest attempt started (1, 2, ...). */
  attempt: Schema.Number,
  /** The encoded `Exit` of the activity, JSON text; null while not recorded. */
  outcome: Schema.NullOr(Schema.String),
  startedAt: Schema.Number,
  completedAt: Schema.NullOr(Schema.Number)
})

/** @see StepRecord */
export type StepRecord = typeof StepRecord.Type

/** What `start` stores for a new execution. */
export interface NewExecution {
  readonly executionId: string
  readonly workflow: string
  readonly request: string
  readonly now: number
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
  readonly after: number
  readonly attempt: number
  readonly now: number
}

/** A final activity outcome. */
export interface StepOutcome extends AttemptStart {
  readonly outcome: string
}

/** A change of an execution's status. Ignored once the execution is final. */
export type StatusChange =
  | {
      readonly _tag: "Complete"
      readonly status: "succeeded" | "failed" | "interrupted"
      readonly result: string
    }
  | { readonly _tag: "Suspend"; readonly reason: string }
  | { readonly _tag: "Resume" }
  | { readonly _tag: "RequestInterrupt" }

/**
 * The journal service. Each operation is atomic.
 *
 * Durability: `start`, `recordOutcome` and `changeStatus` are durable when they return
 * (fsync'd on the embedded store). `recordAttempt` is *advisory*: it survives a process crash
 * (kill -9) but a power loss may lose it, which can only make the next attempt number lower;
 * it is never needed for correctness of outcomes.
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
    /** Records that an attempt starts (advisory durability). No effect once an outcome exists. */
    readonly recordAttempt: (attempt: AttemptStart) => Effect.Effect<void, JournalError>
    /**
     * Records a step's outcome unless one is already recorded; returns the stored outcome
     * (first writer wins).
     */
    readonly recordOutcome: (outcome: StepOutcome) => Effect.Effect<string, JournalError>
    /** Applies a status change; returns the row after the change (unchanged if final). */
    readonly changeStatus: (
      executionId: string,
      change: StatusChange,
      now: number
    ) => Effect.Effect<Option.Option<ExecutionRecord>, JournalError>
    /** Executions whose status is `running`, oldest first: resumed when an engine starts. */
    readonly listRunning: Effect.Effect<ReadonlyArray<ExecutionRecord>, JournalError>
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
      return { ...row, status: change.status, result: change.result, reason: null, updatedAt: now }
    case "Suspend":
      return { ...row, status: "suspended", reason: change.reason, updatedAt: now }
    case "Resume":
      return { ...row, status: "running", reason: null, updatedAt: now }
    case "RequestInterrupt":
      return { ...row, interruptRequested: true, updatedAt: now }
  }
}
