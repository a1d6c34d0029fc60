/**
 * The errors of the workflow subsystem, as data.
 *
 * Every error is a `Schema.TaggedError` so it can be persisted (a suspended execution stores the
 * error that suspended it) and matched with `Effect.catchTag`. Each class says whether retrying
 * the same call can help (`retryable`): storage faults are retryable, bad input and divergent
 * workflow code are terminal until someone changes the data or the code.
 *
 * Every error explains itself: its `message` (what `Cause.pretty` and loggers print) says what
 * happened, to which execution, workflow or activity, and what to do. Errors that store a
 * `message` compose it in their constructor from their fields and an optional `detail` (the
 * underlying cause, e.g. a schema's complaint), so every place that raises one says the same
 * thing; a `message` passed explicitly (or decoded from the journal) is kept as it is.
 */
import { Schema } from "effect"

/**
 * What the constructor of an error with a stored `message` takes: its other fields, and either
 * the `message` itself (kept as is) or a `detail` the class composes its message with.
 */
type MessageInput<Fields> = Fields & {
  readonly message?: string | undefined
  readonly detail?: string | undefined
}

/** `: detail`, or nothing when there is none. */
const suffix = (detail: string | undefined): string =>
  detail === undefined || detail === "" ? "" : `: ${detail}`

/** ` at path`, or nothing when the whole value is concerned. */
const at = (path: string): string => (path === "" ? "" : ` at ${path}`)

/** How `engine.resume` of `executionId` is written in messages. */
const resumeCall = (executionId: string): string => `engine.resume(${JSON.stringify(executionId)})`

/** The fields of `JournalError` besides its message. */
export interface JournalErrorFields {
  /** The operation, e.g. `write`; for a statement timeout, its purpose (`write of execution "x"`). */
  readonly operation: string
  readonly transient: boolean
  /** Set when the database cancelled the statement at its statement timeout (this many ms). */
  readonly timeoutMillis?: number | undefined
}

/** What a `JournalError` says after its detail: whether and how the engine retries it. */
const journalAdvice = (props: JournalErrorFields): string => {
  if (props.timeoutMillis !== undefined)
    return props.transient
      ? "The engine retries it a few times with backoff, then gives up and fails the call."
      : "The engine gave up: the statement waits for a lock held longer than that, or needs longer on this database. Nothing the cancelled statement wrote was kept. Look for the blocking session (pg_stat_activity, pg_locks) or raise statementTimeout; the execution stays unfinished and runs again when it is sent again or its shard is taken over."
  return props.transient
    ? "This fault is transient: the engine retries it with backoff until the store answers; check that the database is reachable."
    : "Retrying will not help: check the store's configuration and the row named above."
}

/**
 * The journal could not be read or written. `transient` faults (connection lost, database busy)
 * are retryable; others (a row that does not decode, a failed migration) are not.
 *
 * A statement the database cancelled at its statement timeout (PostgreSQL's `statement_timeout`)
 * has `timeoutMillis` and names its purpose in `operation`. The engine retries it a few times
 * (a lock held for a moment), then gives up: the same error with `transient: false`, which fails
 * the run and the caller's call instead of retrying forever.
 *
 * @example
 * ```ts
 * engine.send(request).pipe(
 *   Effect.catchTag("JournalError", (error) =>
 *     error.timeoutMillis !== undefined ? alertSlowDatabase(error.operation) : Effect.fail(error)
 *   )
 * )
 * ```
 */
export class JournalError extends Schema.TaggedError<JournalError>()("JournalError", {
  operation: Schema.String,
  message: Schema.String,
  transient: Schema.Boolean,
  timeoutMillis: Schema.optionalKey(Schema.Number)
}) {
  constructor(props: MessageInput<JournalErrorFields>, options?: Schema.MakeOptions) {
    super(
      {
        operation: props.operation,
        transient: props.transient,
        ...(props.timeoutMillis === undefined ? {} : { timeoutMillis: props.timeoutMillis }),
        message:
          props.message ??
          (props.timeoutMillis === undefined
            ? `the journal operation "${props.operation}" failed${suffix(props.detail)}. ${journalAdvice(props)}`
            : `the journal's statement for the ${props.operation} was cancelled by the statement timeout (${props.timeoutMillis} ms)${suffix(props.detail)}. ${journalAdvice(props)}`)
      },
      options
    )
  }

  get retryable(): boolean {
    return this.transient
  }
}

/**
 * A store opened without migrating it (`migrate: false`: the CLI and the dashboard unless
 * `--migrate`) is not at the schema version this build needs. `found` is the store's version, null
 * when there are no tables with `tablePrefix` at all (a new store, or a typo in the prefix);
 * `needed` is this build's. Nothing was changed. Terminal: migrate (`--migrate`, `migrate: true`, or
 * start an engine of this version on it), or use the effect-cluster that matches the store.
 */
export class SchemaVersionError extends Schema.TaggedError<SchemaVersionError>()("SchemaVersionError", {
  tablePrefix: Schema.String,
  found: Schema.NullOr(Schema.Number),
  needed: Schema.Number
}) {
  readonly retryable = false

  override get message(): string {
    if (this.found === null)
      return `the store has no effect-cluster tables with the prefix "${this.tablePrefix}" (no schema; this effect-cluster needs schema version ${this.needed}); nothing was created. Check the store and --table-prefix, or run with --migrate to create the tables.`
    if (this.found > this.needed)
      return `the store's tables (prefix "${this.tablePrefix}") are at schema version ${this.found}, newer than the version ${this.needed} this effect-cluster needs; nothing was changed. Use the effect-cluster version that migrated it.`
    return `the store's tables (prefix "${this.tablePrefix}") are at schema version ${this.found}; this effect-cluster needs schema version ${this.needed}; nothing was changed. Run with --migrate to apply the migrations (or start an engine of this version on it).`
  }
}

/** The fields of `InvalidRequestError` besides its message. */
export interface InvalidRequestErrorFields {
  readonly workflow: string
  readonly path: string
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
  constructor(props: MessageInput<InvalidRequestErrorFields>, options?: Schema.MakeOptions) {
    super(
      {
        workflow: props.workflow,
        path: props.path,
        message:
          props.message ??
          `the request for workflow "${props.workflow}" is invalid${at(props.path)}${suffix(props.detail)}. Nothing was stored: fix the request and send it again.`
      },
      options
    )
  }

  readonly retryable = false
}

/** The fields of `PayloadTooLargeError` besides its message. */
export interface PayloadTooLargeErrorFields {
  /** What was too large: a workflow's request, or a signal's value. */
  readonly payload: "request" | "signal"
  /** The workflow (of a request) or the signal (of a signal value). */
  readonly payloadOf: string
  readonly bytes: number
  readonly limit: number
}

/**
 * A request or a signal value is larger, encoded, than the engine's `maxPayloadBytes`. Nothing was
 * stored. Terminal: send a smaller one (keep large data elsewhere and pass a reference to it).
 */
export class PayloadTooLargeError extends Schema.TaggedError<PayloadTooLargeError>()("PayloadTooLargeError", {
  payload: Schema.Literals(["request", "signal"]),
  payloadOf: Schema.String,
  bytes: Schema.Number,
  limit: Schema.Number,
  message: Schema.String
}) {
  constructor(props: MessageInput<PayloadTooLargeErrorFields>, options?: Schema.MakeOptions) {
    super(
      {
        payload: props.payload,
        payloadOf: props.payloadOf,
        bytes: props.bytes,
        limit: props.limit,
        message:
          props.message ??
          `the ${props.payload === "request" ? `request for workflow "${props.payloadOf}"` : `value of signal "${props.payloadOf}"`} is ${props.bytes} bytes encoded, over the engine's limit of ${props.limit} (maxPayloadBytes). Nothing was stored: keep large data elsewhere and pass a reference to it, or raise maxPayloadBytes.`
      },
      options
    )
  }

  readonly retryable = false
}

/** The fields of `ActivityTimeoutError` besides its message. */
export interface ActivityTimeoutErrorFields {
  readonly activity: string
  readonly timeout: "start-to-close" | "heartbeat"
  readonly millis: number
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
}) {
  constructor(props: MessageInput<ActivityTimeoutErrorFields>, options?: Schema.MakeOptions) {
    super(
      {
        activity: props.activity,
        timeout: props.timeout,
        millis: props.millis,
        message:
          props.message ??
          (props.timeout === "heartbeat"
            ? `activity "${props.activity}" sent no heartbeat for ${props.millis} ms (its heartbeatTimeout): the attempt was interrupted and is retried per the activity's retry policy. Call Activity.heartbeat more often, or raise heartbeatTimeout.`
            : `activity "${props.activity}" ran longer than its startToCloseTimeout of ${props.millis} ms: the attempt was interrupted and is retried per the activity's retry policy. Raise startToCloseTimeout if the work legitimately takes longer.`)
      },
      options
    )
  }
}

/** The fields of `InvalidSignalError` besides its message. */
export interface InvalidSignalErrorFields {
  readonly signal: string
  readonly executionId: string
  readonly path: string
}

/** A signal value that does not match its schema: nothing was stored. */
export class InvalidSignalError extends Schema.TaggedError<InvalidSignalError>()("InvalidSignalError", {
  signal: Schema.String,
  executionId: Schema.String,
  path: Schema.String,
  message: Schema.String
}) {
  constructor(props: MessageInput<InvalidSignalErrorFields>, options?: Schema.MakeOptions) {
    super(
      {
        signal: props.signal,
        executionId: props.executionId,
        path: props.path,
        message:
          props.message ??
          `the value of signal "${props.signal}" for execution ${props.executionId} is invalid${at(props.path)}${suffix(props.detail)}. Nothing was stored: send a value that matches the signal's schema.`
      },
      options
    )
  }

  readonly retryable = false
}

/** The fields of `UnknownWorkflowError` besides its message. */
export interface UnknownWorkflowErrorFields {
  readonly workflow: string
  /** Empty when a request was sent (nothing was stored). */
  readonly executionId: string
}

/** No registered workflow handles this request tag. Terminal until the workflow is deployed. */
export class UnknownWorkflowError extends Schema.TaggedError<UnknownWorkflowError>()("UnknownWorkflowError", {
  workflow: Schema.String,
  executionId: Schema.String,
  message: Schema.String
}) {
  constructor(props: MessageInput<UnknownWorkflowErrorFields>, options?: Schema.MakeOptions) {
    super(
      {
        workflow: props.workflow,
        executionId: props.executionId,
        message:
          props.message ??
          (props.executionId === ""
            ? `no workflow handles requests tagged "${props.workflow}" in this engine: nothing was stored. Register the workflow with WorkflowEngine.makeScoped(Workflow.union(...)).`
            : `execution ${props.executionId} belongs to workflow "${props.workflow}", which this engine does not handle: it is suspended. Register the workflow with WorkflowEngine.makeScoped(Workflow.union(...)), then call ${resumeCall(props.executionId)}.`)
      },
      options
    )
  }

  readonly retryable = false
}

/** The execution id is already used by an execution of another workflow. Terminal. */
export class ExecutionIdConflictError extends Schema.TaggedError<ExecutionIdConflictError>()(
  "ExecutionIdConflictError",
  { executionId: Schema.String, workflow: Schema.String, existingWorkflow: Schema.String }
) {
  readonly retryable = false

  override get message(): string {
    return `the execution id ${this.executionId} of a "${this.workflow}" request is already used by an execution of workflow "${this.existingWorkflow}": nothing was started. Make the workflows' executionId functions return ids that are unique across workflows (for example, prefixed with the workflow name).`
  }
}

/** No execution with this id exists in the journal. */
export class ExecutionNotFoundError extends Schema.TaggedError<ExecutionNotFoundError>()(
  "ExecutionNotFoundError",
  { executionId: Schema.String }
) {
  readonly retryable = false

  override get message(): string {
    return `no execution ${this.executionId} exists in the journal: check the id (engine.list shows the executions), or send its request to start it.`
  }
}

/** The fields of `JournalDecodeError` besides its message. */
export interface JournalDecodeErrorFields {
  readonly executionId: string
  readonly workflow: string
  readonly record: "request" | "activity" | "result"
  readonly activity: string | null
  readonly path: string
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
  constructor(props: MessageInput<JournalDecodeErrorFields>, options?: Schema.MakeOptions) {
    const what =
      props.record === "activity"
        ? props.activity === null
          ? "steps"
          : `outcome of step "${props.activity}"`
        : props.record
    super(
      {
        executionId: props.executionId,
        workflow: props.workflow,
        record: props.record,
        activity: props.activity,
        path: props.path,
        message:
          props.message ??
          `the stored ${what} of execution ${props.executionId} (workflow "${props.workflow}") no longer decodes${at(props.path)}${suffix(props.detail)}. The execution is suspended and nothing was deleted: make the schema accept the stored data again (or migrate it), then call ${resumeCall(props.executionId)}.`
      },
      options
    )
  }

  readonly retryable = false
}

/** The fields of `ActivityResultError` besides its message. */
export interface ActivityResultErrorFields {
  readonly executionId: string
  readonly workflow: string
  /** The step key, or `<workflow result>` for the workflow's own result. */
  readonly activity: string
  readonly path: string
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
  constructor(props: MessageInput<ActivityResultErrorFields>, options?: Schema.MakeOptions) {
    const what = props.activity === "<workflow result>" ? "the workflow's result" : `step "${props.activity}"`
    super(
      {
        executionId: props.executionId,
        workflow: props.workflow,
        activity: props.activity,
        path: props.path,
        message:
          props.message ??
          `${what} of execution ${props.executionId} (workflow "${props.workflow}") produced a value its schema cannot encode${at(props.path)}${suffix(props.detail)}. Nothing was recorded and the execution is suspended: fix the code or the schema, then call ${resumeCall(props.executionId)}.`
      },
      options
    )
  }

  readonly retryable = false
}

/** The fields of `NonDeterminismError` besides its message. */
export interface NonDeterminismErrorFields {
  readonly executionId: string
  readonly workflow: string
  readonly expected: string
  readonly actual: string
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
  constructor(props: MessageInput<NonDeterminismErrorFields>, options?: Schema.MakeOptions) {
    const actual =
      props.actual === "the workflow completed" ? "the workflow completed" : `it asked for ${props.actual}`
    super(
      {
        executionId: props.executionId,
        workflow: props.workflow,
        expected: props.expected,
        actual: props.actual,
        message:
          props.message ??
          `execution ${props.executionId} of workflow "${props.workflow}" diverged from its journal: expected ${props.expected}, but ${actual}${suffix(props.detail)}. It is suspended so that it cannot silently take another path: restore the code path that recorded this journal (use Workflow.version to change it for executions that have not reached this point, and check the change with WorkflowTest.replay), then call ${resumeCall(props.executionId)}.`
      },
      options
    )
  }

  readonly retryable = false
}

/** The fields of `ExecutionYielded` besides its message. */
export interface ExecutionYieldedFields {
  readonly executionId: string
  readonly workflow: string
}

/** The workflow called `Workflow.yieldExecution`: it waits for `WorkflowEngine.resume`. */
export class ExecutionYielded extends Schema.TaggedError<ExecutionYielded>()("ExecutionYielded", {
  executionId: Schema.String,
  workflow: Schema.String,
  message: Schema.String
}) {
  /** `detail` is why it yielded (the text given to `Workflow.yieldExecutionWith`). */
  constructor(props: MessageInput<ExecutionYieldedFields>, options?: Schema.MakeOptions) {
    super(
      {
        executionId: props.executionId,
        workflow: props.workflow,
        message:
          props.message ??
          `execution ${props.executionId} of workflow "${props.workflow}" yielded${suffix(props.detail)}. It waits: call ${resumeCall(props.executionId)} to continue it.`
      },
      options
    )
  }

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
  /** `detail` is what is wrong with it ("contains NUL (U+0000) at index 3"). */
  constructor(props: MessageInput<InvalidIdentifierErrorFields>, options?: Schema.MakeOptions) {
    const owner = props.workflow === null ? "" : ` (workflow "${props.workflow}")`
    super(
      {
        kind: props.kind,
        value: props.value,
        workflow: props.workflow,
        message:
          props.message ??
          `the ${props.kind} ${props.value}${owner} cannot be stored${suffix(props.detail)}. Identifiers must be 1 to 256 characters of well-formed text without NUL: fix the code that builds it${props.kind === "activity id" ? ", then resume the execution" : ""}.`
      },
      options
    )
  }

  readonly retryable = false
}

/** The fields of `InvalidIdentifierError` besides its message. */
export interface InvalidIdentifierErrorFields {
  readonly kind: "execution id" | "activity id" | "signal name"
  readonly value: string
  readonly workflow: string | null
}

/** The fields of `ChildCancelledError` besides its message. */
export interface ChildCancelledErrorFields {
  readonly executionId: string
  readonly workflow: string
  readonly childExecutionId: string
  readonly childWorkflow: string
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
  constructor(props: MessageInput<ChildCancelledErrorFields>, options?: Schema.MakeOptions) {
    super(
      {
        executionId: props.executionId,
        workflow: props.workflow,
        childExecutionId: props.childExecutionId,
        childWorkflow: props.childWorkflow,
        message:
          props.message ??
          `the child execution ${props.childExecutionId} (workflow "${props.childWorkflow}") of execution ${props.executionId} (workflow "${props.workflow}") was interrupted before it completed${suffix(props.detail)}. Catch ChildCancelledError in the parent to compensate, or list it in the parent's failure schema.`
      },
      options
    )
  }

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

  override get message(): string {
    return `execution ${this.executionId} of workflow "${this.workflow}" is suspended (${this.reason._tag}): ${this.reason.message} Once resumed, send the request again to wait for its result.`
  }
}

/** Every error the engine itself (not the workflow) can return from `send`. */
export type WorkflowEngineError =
  | JournalError
  | InvalidRequestError
  | PayloadTooLargeError
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
  /** `detail` is what went wrong (the file system's error, or the schema's complaint). */
  constructor(
    props: MessageInput<{ readonly source: string; readonly path: string }>,
    options?: Schema.MakeOptions
  ) {
    super(
      {
        source: props.source,
        path: props.path,
        message:
          props.message ??
          `${props.source} is not a readable effect-cluster execution journal${props.path === "<file>" ? "" : at(props.path)}${suffix(props.detail)}. Export it again with engine.exportJournal and JournalExport.writeFile.`
      },
      options
    )
  }

  readonly retryable = false
}
