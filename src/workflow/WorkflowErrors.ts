/**
 * The errors of the workflow subsystem, as data.
 *
 * Every error is a `Schema.TaggedError` so it can be persisted (a suspended execution stores the
 * error that suspended it) and matched with `Effect.catchTag`. Each class says whether retrying
 * the same call can help (`retryable`): storage faults are retryable, bad input and divergent
 * workflow code are terminal until someone changes the data or the code.
 */
import { Schema } from "effect"

/**
 * The journal could not be read or written. `transient` faults (connection lost, database busy)
 * are retryable; others (a row that does not decode, a failed migration) are not.
 */
export class JournalError extends Schema.TaggedError<JournalError>()("JournalError", {
  operation: Schema.String,
  message: Schema.String,
  transient: Schema.Boolean
}) {
  get retryable(): boolean {
    return this.transient
  }
}

/**
 * A request did not encode with its workflow's payload schema. Terminal: fix the request.
 * `path` is the field path of the first bad field, e.g. `["cardNumber"]`.
 */
export class InvalidRequestError extends Schema.TaggedError<InvalidRequestError>()("InvalidRequestError", {
  workflow: Schema.String,
  path: Schema.String,
  message: Schema.String
}) {
  readonly retryable = false
}

/**
 * An activity attempt ran longer than its `startToCloseTimeout`, or did not call
 * `Activity.heartbeat` within its `heartbeatTimeout`. The attempt failed (its fiber is
 * interrupted) and is retried per the activity's policy.
 */
export class ActivityTimeoutError extends Schema.TaggedError<ActivityTimeoutError>()("ActivityTimeoutError", {
  activity: Schema.String,
  timeout: Schema.Literals(["start-to-close", "heartbeat"]),
  millis: Schema.Number,
  message: Schema.String
}) {}

/** A signal value that does not match its schema: nothing was stored. */
export class InvalidSignalError extends Schema.TaggedError<InvalidSignalError>()("InvalidSignalError", {
  signal: Schema.String,
  executionId: Schema.String,
  path: Schema.String,
  message: Schema.String
}) {
  readonly retryable = false
}

/** No registered workflow handles this request tag. Terminal until the workflow is deployed. */
export class UnknownWorkflowError extends Schema.TaggedError<UnknownWorkflowError>()("UnknownWorkflowError", {
  workflow: Schema.String,
  executionId: Schema.String,
  message: Schema.String
}) {
  readonly retryable = false
}

/** The execution id is already used by an execution of another workflow. Terminal. */
export class ExecutionIdConflictError extends Schema.TaggedError<ExecutionIdConflictError>()(
  "ExecutionIdConflictError",
  { executionId: Schema.String, workflow: Schema.String, existingWorkflow: Schema.String }
) {
  readonly retryable = false
}

/** No execution with this id exists in the journal. */
export class ExecutionNotFoundError extends Schema.TaggedError<ExecutionNotFoundError>()(
  "ExecutionNotFoundError",
  { executionId: Schema.String }
) {
  readonly retryable = false
}

/**
 * A stored record (the request, an activity outcome or the result) no longer decodes with the
 * current schema: the schema changed since it was written. The execution is suspended and nothing
 * is deleted; fix the schema (or add a migration) and `resume` it.
 */
export class JournalDecodeError extends Schema.TaggedError<JournalDecodeError>()("JournalDecodeError", {
  executionId: Schema.String,
  workflow: Schema.String,
  record: Schema.Literals(["request", "activity", "result"]),
  activity: Schema.NullOr(Schema.String),
  path: Schema.String,
  message: Schema.String
}) {
  readonly retryable = false
}

/**
 * An activity (or the workflow body) produced a value that its schema cannot encode, so it cannot
 * be recorded. The execution is suspended without recording anything; fix the code and `resume`.
 */
export class ActivityResultError extends Schema.TaggedError<ActivityResultError>()("ActivityResultError", {
  executionId: Schema.String,
  workflow: Schema.String,
  activity: Schema.String,
  path: Schema.String,
  message: Schema.String
}) {
  readonly retryable = false
}

/**
 * Replay took a different path than the journal recorded (steps asked in another order, or a
 * recorded step skipped). The execution is suspended so it cannot silently diverge.
 */
export class NonDeterminismError extends Schema.TaggedError<NonDeterminismError>()("NonDeterminismError", {
  executionId: Schema.String,
  workflow: Schema.String,
  expected: Schema.String,
  actual: Schema.String,
  message: Schema.String
}) {
  readonly retryable = false
}

/** The workflow called `Workflow.yieldExecution`: it waits for `WorkflowEngine.resume`. */
export class ExecutionYielded extends Schema.TaggedError<ExecutionYielded>()("ExecutionYielded", {
  executionId: Schema.String,
  workflow: Schema.String,
  message: Schema.String
}) {
  readonly retryable = false
}

/**
 * An execution id, activity id or signal name that the journal cannot store the same way on every
 * backend: empty, longer than 256 characters, or containing NUL or a lone UTF-16 surrogate.
 * Terminal: fix the code that builds the identifier. An activity id like that suspends its
 * execution (nothing is recorded for it).
 */
export class InvalidIdentifierError extends Schema.TaggedError<InvalidIdentifierError>()(
  "InvalidIdentifierError",
  {
    kind: Schema.Literals(["execution id", "activity id", "signal name"]),
    /** The identifier, quoted, with control characters and surrogates escaped. */
    value: Schema.String,
    workflow: Schema.NullOr(Schema.String),
    message: Schema.String
  }
) {
  readonly retryable = false
}

/**
 * A child workflow (`Workflow.executeChild`) was interrupted by someone other than its parent
 * (`engine.interrupt` of the child). The parent gets it as a typed failure, recorded with the
 * child's step: catch it to carry on (e.g. compensate), or list it in the parent's failure schema
 * to fail the parent with it. Terminal for that child.
 */
export class ChildCancelledError extends Schema.TaggedError<ChildCancelledError>()("ChildCancelledError", {
  executionId: Schema.String,
  workflow: Schema.String,
  childExecutionId: Schema.String,
  childWorkflow: Schema.String,
  message: Schema.String
}) {
  readonly retryable = false
}

/** Why an execution is suspended. Stored in the journal with the execution. */
export const SuspendReason = Schema.Union([
  JournalDecodeError,
  ActivityResultError,
  NonDeterminismError,
  ExecutionYielded,
  UnknownWorkflowError,
  InvalidIdentifierError
])

/** @see SuspendReason */
export type SuspendReason = typeof SuspendReason.Type

/**
 * Returned by `send` when the execution is (or becomes) suspended instead of completing.
 * `reason` is the error that suspended it. Call `resume` and `send` again to attach.
 */
export class ExecutionSuspendedError extends Schema.TaggedError<ExecutionSuspendedError>()(
  "ExecutionSuspendedError",
  { executionId: Schema.String, workflow: Schema.String, reason: SuspendReason }
) {
  readonly retryable = false
}

/** Every error the engine itself (not the workflow) can return from `send`. */
export type WorkflowEngineError =
  | JournalError
  | InvalidRequestError
  | UnknownWorkflowError
  | ExecutionIdConflictError
  | ExecutionSuspendedError
  | JournalDecodeError
  | InvalidIdentifierError

/**
 * An exported execution journal (a file from `engine.exportJournal`, read by `WorkflowTest.replay`)
 * could not be read or is not one: `source` is the file, `path` the first bad field. Terminal:
 * export the journal again, or fix the file.
 */
export class InvalidJournalExportError extends Schema.TaggedError<InvalidJournalExportError>()(
  "InvalidJournalExportError",
  { source: Schema.String, path: Schema.String, message: Schema.String }
) {
  readonly retryable = false
}
