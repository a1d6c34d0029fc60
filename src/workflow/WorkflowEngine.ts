/**
 * The workflow engine: starts executions, resumes unfinished ones, and shuts down gracefully.
 *
 * `makeScoped(workflows)` resumes every execution the journal has as `running` (I2), then accepts
 * requests. Starting a request whose execution id exists attaches to that execution (I4). When the
 * scope closes, running activities are interrupted without recording anything and the executions
 * stay `running`, so the next engine resumes them (I8).
 *
 * @example
 * ```ts
 * const main = Effect.gen(function* () {
 *   const engine = yield* WorkflowEngine.makeScoped(Workflow.union(processPayment))
 *   const shipped = yield* engine.send(new ProcessPaymentRequest({ orderId: "order-1", ... }))
 * }).pipe(Effect.scoped, Effect.provide(SqliteJournal.layer({ filename: "journal.db" })))
 * ```
 */
import { Cause, Clock, Deferred, Duration, Effect, Exit, Option, Result, type Scope } from "effect"
import {
  type AttemptRecord,
  DurableExecutionJournal,
  type ExecutionRecord,
  type ExecutionStatus,
  isFinal,
  type StatusChange,
  type StepRecord
} from "./DurableExecutionJournal.ts"
import {
  decodeJson,
  encodeJson,
  encodeJsonResult,
  exitSchema,
  withoutExitEnvelope
} from "./internal/codec.ts"
import { type RunHandle, type RunnerEnvironment, start as startRun } from "./internal/ExecutionRunner.ts"
import { invalidIdentifier } from "./internal/identifier.ts"
import { reliable } from "./internal/ReliableJournal.ts"
import type { ExecutionJournal } from "./JournalExport.ts"
import { defaults, type RetryPolicy, resolve } from "./RetryPolicy.ts"
import type { Signal } from "./Signal.ts"
import {
  type Any,
  type FailureFor,
  type Requests,
  type Requirements,
  type SuccessFor,
  type WorkflowUnion,
  byTag as workflowsByTag
} from "./Workflow.ts"
import {
  ExecutionIdConflictError,
  ExecutionNotFoundError,
  ExecutionSuspendedError,
  type InvalidIdentifierError,
  InvalidRequestError,
  InvalidSignalError,
  JournalDecodeError,
  type JournalError,
  SuspendReason,
  UnknownWorkflowError,
  type WorkflowEngineError
} from "./WorkflowErrors.ts"

/** What `status` reports about an execution. */
export interface ExecutionInfo {
  readonly executionId: string
  readonly workflow: string
  readonly status: ExecutionStatus
  /** Why it is suspended, when it is. */
  readonly suspendedBecause: Option.Option<SuspendReason>
  /** When a sleeping execution wakes (epoch ms). */
  readonly wakeAt: Option.Option<number>
  readonly interruptRequested: boolean
  readonly createdAt: number
  readonly updatedAt: number
}

/** One step of an execution, as `history` shows it. */
export interface StepInfo {
  readonly stepKey: string
  readonly activityId: string
  readonly seq: number
  /** The latest attempt started (1, 2, ...). */
  readonly attempts: number
  readonly startedAt: number
  readonly completedAt: Option.Option<number>
  /** `running` until an outcome is recorded; then whether it succeeded or failed. */
  readonly state: "running" | "succeeded" | "failed"
  /** The recorded outcome (the encoded `Exit`, JSON): the value, or the error / defect. */
  readonly outcome: Option.Option<unknown>
  /** The last heartbeat details (JSON), if the activity reported progress. */
  readonly heartbeat: Option.Option<unknown>
  /**
   * The attempts that failed and were retried, with their timing and failure (the encoded `Exit`).
   * Attempts cut short by a crash or a shutdown are not here: `attempts` counts them.
   */
  readonly failedAttempts: ReadonlyArray<{
    readonly attempt: number
    readonly startedAt: number
    readonly endedAt: number
    readonly failure: unknown
  }>
}

/** An execution and its steps. */
export interface ExecutionHistory {
  readonly execution: ExecutionInfo
  readonly steps: ReadonlyArray<StepInfo>
}

const parseJson = (text: string | null): Option.Option<unknown> => {
  if (text === null) return Option.none()
  try {
    return Option.some(JSON.parse(text))
  } catch {
    return Option.some(text)
  }
}

const toStepInfo = (step: StepRecord, retried: ReadonlyArray<AttemptRecord>): StepInfo => {
  const outcome = parseJson(step.outcome)
  const failed = Option.isSome(outcome) && (outcome.value as { _tag?: unknown })?._tag === "Failure"
  return {
    stepKey: step.stepKey,
    activityId: step.activityId,
    seq: step.seq,
    attempts: step.attempt,
    startedAt: step.startedAt,
    completedAt: Option.fromNullishOr(step.completedAt),
    state: step.outcome === null ? "running" : failed ? "failed" : "succeeded",
    outcome,
    heartbeat: parseJson(step.heartbeat),
    failedAttempts: retried.map((a) => ({
      attempt: a.attempt,
      startedAt: a.startedAt,
      endedAt: a.endedAt,
      failure: Option.getOrUndefined(parseJson(a.outcome))
    }))
  }
}

/** A running engine for the workflows `W`. */
export interface WorkflowEngine<W extends Any> {
  /** Starts (or attaches to) the execution of `request` and waits for its result. */
  readonly send: <Req extends Requests<W>>(
    request: Req
  ) => Effect.Effect<SuccessFor<W, Req["_tag"]>, FailureFor<W, Req["_tag"]> | WorkflowEngineError>
  /** Starts (or attaches to) the execution; returns its id once the start is durably stored (I5). */
  readonly sendDiscard: <Req extends Requests<W>>(
    request: Req
  ) => Effect.Effect<
    string,
    | InvalidRequestError
    | UnknownWorkflowError
    | ExecutionIdConflictError
    | InvalidIdentifierError
    | JournalError
  >
  /** The stored state of an execution. */
  readonly status: (
    executionId: string
  ) => Effect.Effect<Option.Option<ExecutionInfo>, InvalidIdentifierError | JournalError>
  /**
   * A page of executions, optionally of one workflow and one status, by execution id. Pass the
   * returned `next` as `after` for the next page (none: this was the last).
   *
   * @example
   * ```ts
   * const page = yield* engine.list({ workflow: "ProcessPayment", status: "suspended", limit: 50 })
   * ```
   */
  readonly list: (query: {
    readonly workflow?: string | undefined
    readonly status?: ExecutionStatus | undefined
    readonly after?: string | undefined
    readonly limit?: number | undefined
  }) => Effect.Effect<
    { readonly executions: ReadonlyArray<ExecutionInfo>; readonly next: Option.Option<string> },
    JournalError
  >
  /** An execution and its steps in order: every failed attempt, timing, recorded outcomes. */
  readonly history: (
    executionId: string
  ) => Effect.Effect<ExecutionHistory, ExecutionNotFoundError | InvalidIdentifierError | JournalError>
  /**
   * The journal of an execution as a document (its row, steps and failed attempts): write it to a
   * file with `JournalExport.writeFile`, replay it against changed code with `WorkflowTest.replay`.
   */
  readonly exportJournal: (
    executionId: string
  ) => Effect.Effect<ExecutionJournal, ExecutionNotFoundError | InvalidIdentifierError | JournalError>
  /** Resumes a suspended execution (no-op for running or final ones). */
  readonly resume: (
    executionId: string
  ) => Effect.Effect<void, ExecutionNotFoundError | InvalidIdentifierError | JournalError>
  /**
   * Interrupts an execution: its finalizers and compensations run (activities included), then it
   * is recorded as `interrupted`. Durable: a crash in between continues the interruption on restart.
   * Returns once the execution is final (or suspended).
   */
  readonly interrupt: (
    executionId: string
  ) => Effect.Effect<void, ExecutionNotFoundError | InvalidIdentifierError | JournalError>
  /**
   * Completes the signal `signal` of an execution with `value` (encoded with its schema). Returns
   * true if this call completed it, false if it had been completed before (the first value stays).
   * A sleeping execution waiting for it wakes at once.
   */
  readonly signal: <A>(
    executionId: string,
    signal: Signal<A>,
    value: A
  ) => Effect.Effect<
    boolean,
    ExecutionNotFoundError | InvalidSignalError | InvalidIdentifierError | JournalError
  >
  /**
   * How many executions have a run (a fiber) in this engine now. Sleeping executions have none:
   * they are rows in the journal until the timer wakes them.
   */
  readonly runningCount: () => number
}

/** A stored start: the workflow, its row, and the request object if this call created it. */
interface Started {
  readonly workflow: Any
  readonly execution: ExecutionRecord
  readonly freshRequest: unknown
}

type StartError =
  | UnknownWorkflowError
  | InvalidRequestError
  | ExecutionIdConflictError
  | InvalidIdentifierError
  | JournalError

/**
 * Checks an identifier at the engine's boundary (see `internal/identifier.ts`): the same typed
 * error on every backend for an id the journal could not store alike.
 */
const checkIdentifier = (
  kind: InvalidIdentifierError["kind"],
  value: string,
  workflow: string | null
): Effect.Effect<void, InvalidIdentifierError> => {
  const error = invalidIdentifier(kind, value, workflow)
  return error === undefined ? Effect.void : Effect.fail(error)
}

/** Options of `makeScoped`. */
export interface EngineOptions {
  /** The default retry policy of activities (each activity can override fields). */
  readonly retry?: RetryPolicy | undefined
  /**
   * How often the durable timer looks for sleeping executions it was not told about (parked by
   * another engine on the same journal). Its own sleeps wake on time regardless. Default 1 second;
   * on a journal that announces every wake-up (`MemoryJournal`) the timer does not poll at all
   * unless this is set.
   */
  readonly timerPollInterval?: Duration.Input | undefined
  /**
   * How long shutdown waits for runs to record what they delivered while the journal does not
   * answer (they retry with backoff meanwhile). After it, retrying stops and the scope closes:
   * those executions stay `running` with their last recorded outcomes, and the next engine
   * resumes them (their unrecorded activities run again, as after a crash). Default 10 seconds.
   */
  readonly shutdownTimeout?: Duration.Input | undefined
}

/** Due executions the timer wakes per journal query. */
const TIMER_BATCH = 256

/** Builds an engine for `workflows`, resumes unfinished executions, and stops it with the scope. */
export const makeScoped = <W extends Any>(
  workflows: WorkflowUnion<W> | W,
  options?: EngineOptions
): Effect.Effect<WorkflowEngine<W>, JournalError, Scope.Scope | DurableExecutionJournal | Requirements<W>> =>
  Effect.gen(function* () {
    const byTag: ReadonlyMap<string, Any> = workflowsByTag(workflows)
    const store = yield* DurableExecutionJournal
    const { journal, stopRetrying } = reliable(store)
    const services = yield* Effect.context<Requirements<W>>()
    const running = new Map<string, RunHandle>()
    /** Callers of `send` waiting for a sleeping execution to wake (false: engine stopping). */
    const wakeWaiters = new Map<string, Deferred.Deferred<boolean>>()
    let shuttingDown = false
    const clock = yield* Clock.Clock
    const env: RunnerEnvironment = {
      journal,
      retryPolicy: resolve(options?.retry, defaults),
      now: () => clock.currentTimeMillisUnsafe(),
      isGracefulShutdown: () => shuttingDown,
      // Called by runs, after the engine below is built.
      children: {
        start: (_workflow, request) =>
          Effect.flatMap(start(request), ({ workflow, execution, freshRequest }) =>
            execution.status === "running"
              ? Effect.as(ensureRunning(workflow, execution, freshRequest), execution.executionId)
              : Effect.succeed(execution.executionId)
          ),
        settled: (executionId) => settledRow(executionId),
        interrupt: (executionId) => engine.interrupt(executionId)
      }
    }

    /** The run of `row`, started if none is in progress. Registration is synchronous: one run per id. */
    const ensureRunning = (
      workflow: Any,
      row: ExecutionRecord,
      freshRequest?: unknown
    ): Effect.Effect<RunHandle> =>
      Effect.suspend(() => {
        const existing = running.get(row.executionId)
        if (existing !== undefined) return Effect.succeed(existing)
        // A shutting-down engine starts nothing: the next engine resumes the execution.
        if (shuttingDown) return Effect.interrupt
        const started = startRun(env, workflow, row, freshRequest, services, (outcome) => {
          running.delete(row.executionId)
          if (outcome._tag === "Sleeping" && outcome.wakeAt !== null) pokeTimer(outcome.wakeAt)
        })
        return Effect.tap(started, (handle) => Effect.sync(() => running.set(row.executionId, handle)))
      })

    const changeStatus = (executionId: string, status: StatusChange) =>
      Effect.suspend(() =>
        journal.write({ executionId, outcomes: [], status, now: clock.currentTimeMillisUnsafe() })
      )

    const unknownWorkflow = (row: ExecutionRecord) =>
      new UnknownWorkflowError({
        workflow: row.workflow,
        executionId: row.executionId
      })

    const suspendUnknown = (row: ExecutionRecord) =>
      Effect.gen(function* () {
        const error = unknownWorkflow(row)
        yield* Effect.logWarning(error.message)
        const reason = yield* encodeJson(SuspendReason, error).pipe(Effect.orDie)
        yield* changeStatus(row.executionId, { _tag: "Suspend", reason })
      })

    /** Starts a run for a `running` row whose workflow may be unknown. */
    const startRow = (row: ExecutionRecord) => {
      const workflow = byTag.get(row.workflow)
      return workflow === undefined ? suspendUnknown(row) : Effect.asVoid(ensureRunning(workflow, row))
    }

    const decodeReason = (row: ExecutionRecord): Effect.Effect<SuspendReason, JournalDecodeError> =>
      decodeJson(SuspendReason, row.reason ?? "null").pipe(
        Effect.mapError(
          (failure) =>
            new JournalDecodeError({
              executionId: row.executionId,
              workflow: row.workflow,
              record: "result",
              activity: null,
              path: failure.path,
              detail: `(the stored suspension reason) ${failure.message}`
            })
        )
      )

    const suspended = (row: ExecutionRecord, reason: SuspendReason) =>
      new ExecutionSuspendedError({ executionId: row.executionId, workflow: row.workflow, reason })

    /** Waits for `row` to be final and returns its result, decoded with the workflow's schemas. */
    const awaitResult = (
      workflow: Any,
      row: ExecutionRecord,
      freshRequest: unknown
    ): Effect.Effect<unknown, unknown> => {
      if (row.status === "sleeping") return afterWake(workflow, row.executionId)
      if (row.status !== "running") return finalOrSuspended(workflow, row)
      return Effect.flatMap(ensureRunning(workflow, row, freshRequest), (handle) =>
        Effect.flatMap(Deferred.await(handle.outcome), (outcome): Effect.Effect<unknown, unknown> => {
          switch (outcome._tag) {
            case "Completed":
              return outcome.exit
            case "Suspended":
              return Effect.fail(suspended(row, outcome.reason))
            case "Stopped":
              return Effect.interrupt
            case "Failed":
              return Effect.fail(outcome.error)
            case "Sleeping":
              return afterWake(workflow, row.executionId)
            case "Stale":
              // The execution finished or was suspended before the run started: read it again.
              return Effect.flatMap(getRow(row.executionId), (latest) =>
                latest.status === "running" ? Effect.interrupt : awaitResult(workflow, latest, undefined)
              )
          }
        })
      )
    }

    /** Waits until the timer wakes the sleeping execution `executionId`, then for its result. */
    const afterWake = (workflow: Any, executionId: string): Effect.Effect<unknown, unknown> =>
      Effect.andThen(
        waitForWake(executionId),
        Effect.flatMap(getRow(executionId), (latest) => awaitResult(workflow, latest, undefined))
      )

    /** Waits until `executionId` is final or suspended (running it here if needed); its row. */
    const settledRow = (executionId: string): Effect.Effect<ExecutionRecord, unknown> =>
      Effect.flatMap(getRow(executionId), (row): Effect.Effect<ExecutionRecord, unknown> => {
        if (isFinal(row.status) || row.status === "suspended") return Effect.succeed(row)
        if (row.status === "sleeping")
          return Effect.andThen(waitForWake(executionId), settledRow(executionId))
        return Effect.flatMap(resumeRow(row), (handle) =>
          Option.isSome(handle)
            ? Effect.andThen(Deferred.await(handle.value.outcome), settledRow(executionId))
            : settledRow(executionId)
        )
      })

    /** Waits until the timer (or a signal) wakes `executionId`; interrupted when the engine stops. */
    const waitForWake = (executionId: string): Effect.Effect<void, JournalError> =>
      Effect.suspend(() => {
        if (shuttingDown) return Effect.interrupt
        let waiter = wakeWaiters.get(executionId)
        if (waiter === undefined) {
          waiter = Deferred.makeUnsafe<boolean>()
          wakeWaiters.set(executionId, waiter)
        }
        const registered = waiter
        // Registered first, then read: a wake between the caller's read and the registration is
        // not missed (the row is no longer sleeping, or the wake completes the waiter).
        return Effect.flatMap(journal.get(executionId), (row) =>
          Option.isSome(row) && row.value.status === "sleeping"
            ? Effect.flatMap(Deferred.await(registered), (woke) => (woke ? Effect.void : Effect.interrupt))
            : Effect.void
        )
      })

    /** Tells callers waiting in `afterWake` that `executionId` woke (or may have: read it again). */
    const notifyWake = (executionId: string) => {
      const waiter = wakeWaiters.get(executionId)
      if (waiter === undefined) return
      wakeWaiters.delete(executionId)
      Deferred.doneUnsafe(waiter, Exit.succeed(true))
    }

    /** The result of a final execution, or the error of a suspended one. */
    const finalOrSuspended = (workflow: Any, row: ExecutionRecord): Effect.Effect<unknown, unknown> =>
      Effect.gen(function* () {
        if (isFinal(row.status)) {
          const exit = yield* decodeJson(
            exitSchema(workflow.request.success, workflow.request.failure),
            row.result ?? "null"
          ).pipe(
            Effect.mapError(withoutExitEnvelope),
            Effect.mapError(
              (failure) =>
                new JournalDecodeError({
                  executionId: row.executionId,
                  workflow: row.workflow,
                  record: "result",
                  activity: null,
                  path: failure.path,
                  detail: failure.message
                })
            )
          )
          // Decoded with Exit(success, failure) of this workflow.
          return yield* exit as Exit.Exit<unknown, unknown>
        }
        return yield* suspended(row, yield* decodeReason(row))
      })

    /** Validates and durably stores the start of `request`; returns its workflow and stored row. */
    const start = (request: { readonly _tag: string }): Effect.Effect<Started, StartError> =>
      Effect.suspend((): Effect.Effect<Started, StartError> => {
        const workflow = byTag.get(request._tag)
        if (workflow === undefined) {
          return Effect.fail(
            new UnknownWorkflowError({
              workflow: request._tag,
              executionId: ""
            })
          )
        }
        const encoded = encodeJsonResult(workflow.request, request)
        if (Result.isFailure(encoded)) {
          const { path, message } = encoded.failure
          return Effect.fail(
            new InvalidRequestError({
              workflow: workflow.tag,
              path,
              detail: message
            })
          )
        }
        const executionId = workflow.executionId(request)
        const invalid = invalidIdentifier("execution id", executionId, workflow.tag)
        if (invalid !== undefined) return Effect.fail(invalid)
        const stored = journal.start({
          executionId,
          workflow: workflow.tag,
          request: encoded.success,
          now: clock.currentTimeMillisUnsafe()
        })
        return Effect.flatMap(stored, ({ created, execution }) =>
          execution.workflow === workflow.tag
            ? // A new execution runs with the request object itself: nothing to decode or load.
              Effect.succeed({ workflow, execution, freshRequest: created ? request : undefined })
            : Effect.fail(
                new ExecutionIdConflictError({
                  executionId,
                  workflow: workflow.tag,
                  existingWorkflow: execution.workflow
                })
              )
        )
      })

    const getRow = (executionId: string) =>
      Effect.flatMap(
        Effect.andThen(checkIdentifier("execution id", executionId, null), journal.get(executionId)),
        (row) =>
          Option.match(row, {
            onNone: () => Effect.fail(new ExecutionNotFoundError({ executionId })),
            onSome: Effect.succeed
          })
      )

    /** Waits until a run of `executionId` that is already stopping has ended. */
    const settled = (executionId: string) =>
      Effect.suspend(() => {
        const handle = running.get(executionId)
        return handle?.state.stopping ? Effect.asVoid(Deferred.await(handle.outcome)) : Effect.void
      })

    /**
     * Makes sure a non-final execution runs: a suspended one is resumed first; a sleeping one only
     * with `wakeSleeping` (an interruption), since the timer wakes it otherwise.
     */
    const resumeRow = (row: ExecutionRecord, wakeSleeping = false) =>
      Effect.gen(function* () {
        if (isFinal(row.status)) return Option.none<RunHandle>()
        if (row.status === "suspended" || (row.status === "sleeping" && wakeSleeping)) {
          yield* changeStatus(row.executionId, { _tag: "Resume" })
          row = Option.getOrElse(yield* journal.get(row.executionId), () => row)
          if (row.status !== "running") return Option.none<RunHandle>()
        }
        if (row.status !== "running") return Option.none<RunHandle>()
        const workflow = byTag.get(row.workflow)
        if (workflow === undefined) {
          yield* suspendUnknown(row)
          return Option.none<RunHandle>()
        }
        const handle = yield* ensureRunning(workflow, row)
        notifyWake(row.executionId)
        return Option.some(handle)
      })

    /** When the timer loop will look again (epoch ms); an earlier park pokes it. */
    let timerAt = Number.POSITIVE_INFINITY
    let timerPoke: Deferred.Deferred<void> | undefined
    /** A poke arrived while the loop was listing or waking: it lists again before waiting. */
    let pokedWhileBusy = false
    const pokeTimer = (wakeAt: number) => {
      const poke = timerPoke
      if (poke === undefined) {
        pokedWhileBusy = true
        return
      }
      if (wakeAt >= timerAt) return
      timerPoke = undefined
      Deferred.doneUnsafe(poke, Exit.void)
    }

    /** Wakes one due execution: `running` again (advisory write), then a run. */
    const wake = (row: ExecutionRecord) =>
      Effect.andThen(
        changeStatus(row.executionId, { _tag: "Wake" }),
        resumeRow({ ...row, status: "running", wakeAt: null })
      )

    /**
     * The durable timer: wakes sleeping executions whose time has come, then waits for the next
     * `wakeAt` (or `timerPollInterval`, for sleeps parked by other engines on the same journal).
     */
    const timerLoop = Effect.gen(function* () {
      // A journal that announces every wake-up (memory) needs no polling: the timer then sleeps
      // until the earliest known deadline, so skipping a month of test time costs one wake-up.
      const pollMillis =
        options?.timerPollInterval === undefined && store.wakeups !== undefined
          ? Number.POSITIVE_INFINITY
          : Duration.toMillis(Duration.fromInputUnsafe(options?.timerPollInterval ?? "1 second"))
      while (true) {
        pokedWhileBusy = false
        const now = clock.currentTimeMillisUnsafe()
        // A failure (a row that no longer decodes, the journal down for good) is logged and the
        // timer looks again after a poll interval: it never stops for good.
        const found = yield* journal.listDue(now, TIMER_BATCH).pipe(
          Effect.catchCause((cause) =>
            Effect.as(Effect.logError("the durable timer could not list due executions", cause), {
              due: [],
              nextWakeAt: now + pollMillis
            })
          )
        )
        const { due, nextWakeAt } = found
        yield* Effect.forEach(
          due,
          (row) =>
            wake(row).pipe(
              Effect.catchCause((cause) =>
                Cause.hasInterruptsOnly(cause)
                  ? Effect.interrupt
                  : Effect.logError(`the durable timer could not wake ${row.executionId}`, cause)
              )
            ),
          { concurrency: "unbounded", discard: true }
        )
        if (due.length === TIMER_BATCH || pokedWhileBusy) continue
        const wait = Math.max(0, Math.min(pollMillis, (nextWakeAt ?? Number.POSITIVE_INFINITY) - now))
        timerAt = now + wait
        timerPoke = Deferred.makeUnsafe<void>()
        yield* Number.isFinite(wait)
          ? Effect.raceFirst(Effect.sleep(wait), Deferred.await(timerPoke))
          : Deferred.await(timerPoke)
        timerPoke = undefined
        timerAt = Number.POSITIVE_INFINITY
      }
    })

    /** An execution's row, steps and failed attempts: the document `exportJournal` returns. */
    const exportJournal = (executionId: string) =>
      Effect.gen(function* () {
        const execution = yield* getRow(executionId)
        const steps = yield* journal.steps(executionId)
        const attempts = yield* journal.attempts(executionId)
        return { format: "effect-cluster/execution-journal", version: 1, execution, steps, attempts } as const
      })

    const toInfo = (row: ExecutionRecord): ExecutionInfo => ({
      executionId: row.executionId,
      workflow: row.workflow,
      status: row.status,
      suspendedBecause:
        row.status === "suspended" ? Effect.runSync(Effect.option(decodeReason(row))) : Option.none(),
      wakeAt: Option.fromNullishOr(row.wakeAt),
      interruptRequested: row.interruptRequested,
      createdAt: row.createdAt,
      updatedAt: row.updatedAt
    })

    const engine: WorkflowEngine<W> = {
      runningCount: () => running.size,
      signal: (executionId, signal, value) =>
        Effect.gen(function* () {
          const encoded = encodeJsonResult(signal.schema, value)
          if (Result.isFailure(encoded)) {
            const { path, message } = encoded.failure
            return yield* new InvalidSignalError({
              signal: signal.name,
              executionId,
              path,
              detail: message
            })
          }
          yield* checkIdentifier("signal name", signal.name, null)
          yield* getRow(executionId)
          const now = clock.currentTimeMillisUnsafe()
          const stored = yield* journal.signal({
            executionId,
            name: signal.name,
            payload: encoded.success,
            now
          })
          pokeTimer(now)
          return stored
        }),
      send: (request) =>
        // The result was produced (or decoded) by the workflow that handles this request's tag.
        Effect.flatMap(start(request), ({ workflow, execution, freshRequest }) =>
          awaitResult(workflow, execution, freshRequest)
        ) as Effect.Effect<never, never>,
      sendDiscard: (request) =>
        Effect.gen(function* () {
          const { workflow, execution, freshRequest } = yield* start(request)
          if (execution.status === "running") yield* ensureRunning(workflow, execution, freshRequest)
          return execution.executionId
        }),
      status: (executionId) =>
        Effect.andThen(
          checkIdentifier("execution id", executionId, null),
          Effect.map(journal.get(executionId), Option.map(toInfo))
        ),
      list: (query) =>
        Effect.map(journal.list({ ...query, limit: query.limit ?? 100 }), (rows) => ({
          executions: rows.map(toInfo),
          next:
            rows.length === (query.limit ?? 100) && rows.length > 0
              ? Option.some(rows[rows.length - 1]!.executionId)
              : Option.none()
        })),
      history: (executionId) =>
        Effect.map(exportJournal(executionId), ({ execution, steps, attempts }) => ({
          execution: toInfo(execution),
          steps: steps.map((step) =>
            toStepInfo(
              step,
              attempts.filter((a) => a.stepKey === step.stepKey)
            )
          )
        })),
      exportJournal: (executionId) => exportJournal(executionId),
      resume: (executionId) =>
        settled(executionId).pipe(
          Effect.andThen(getRow(executionId)),
          Effect.flatMap(resumeRow),
          Effect.asVoid
        ),
      interrupt: (executionId) =>
        Effect.gen(function* () {
          const row = yield* getRow(executionId)
          if (isFinal(row.status)) return
          yield* changeStatus(executionId, { _tag: "RequestInterrupt" })
          const current = running.get(executionId)
          if (current !== undefined && !current.state.stopping) {
            current.state.interruptRequested = true
            // Before replay has caught up, the body has not rebuilt its compensations yet: the
            // run delivers the interruption at its first step without a recorded outcome.
            if (current.state.caughtUp) yield* current.state.deliverInterrupt()
            const outcome = yield* Deferred.await(current.outcome)
            // Parked at the same moment (a wait won the race): wake it to deliver the interruption.
            if (outcome._tag !== "Sleeping") return
          }
          yield* settled(executionId)
          const latest = yield* getRow(executionId)
          const handle = yield* resumeRow({ ...latest, interruptRequested: true }, true)
          if (Option.isSome(handle)) yield* Deferred.await(handle.value.outcome)
        })
    }

    yield* Effect.addFinalizer(() =>
      Effect.gen(function* () {
        shuttingDown = true
        for (const waiter of wakeWaiters.values()) Deferred.doneUnsafe(waiter, Exit.succeed(false))
        wakeWaiters.clear()
        const handles = [...running.values()]
        for (const handle of handles) {
          handle.state.stopNow({ _tag: "Shutdown" })
        }
        // Bounded: a journal that stays down must not keep the process from stopping.
        const ended = Effect.forEach(handles, (handle) => Deferred.await(handle.outcome), { discard: true })
        const timeout = options?.shutdownTimeout ?? "10 seconds"
        if (Option.isSome(yield* Effect.timeoutOption(ended, timeout))) return
        const waiting = handles.filter((handle) => !Deferred.isDoneUnsafe(handle.outcome)).length
        yield* Effect.logWarning(
          `shutdown: ${waiting} execution(s) could not record their last outcomes within ${Duration.format(Duration.fromInputUnsafe(timeout))} because the journal does not answer; they stay running and the next engine resumes them`
        )
        yield* stopRetrying
        yield* Effect.timeoutOption(ended, timeout)
      })
    )

    if (store.wakeups !== undefined) {
      const unsubscribe = store.wakeups(pokeTimer)
      yield* Effect.addFinalizer(() => Effect.sync(unsubscribe))
    }
    for (const row of yield* journal.listRunning) yield* startRow(row)
    yield* Effect.forkScoped(
      Effect.catchCause(timerLoop, (cause) => Effect.logError("the durable timer stopped", cause))
    )
    return engine
  })
