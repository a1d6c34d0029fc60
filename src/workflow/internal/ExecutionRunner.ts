/**
 * Runs (or resumes) one execution in one fiber: decodes its request, replays its journal through
 * the workflow body, and when the fiber ends records how the run ended — a final result, a
 * suspension, or (graceful shutdown, I8) only the outcomes already delivered, leaving the
 * execution `running` for the next engine.
 */
import { Cause, type Context, Deferred, Effect, Exit, Result, type Semaphore } from "effect"
import * as LeaseGuard from "../../internal/LeaseGuard.ts"
import * as Instrument from "../../observability/internal/instrument.ts"
import type { ExecutionRecord, StatusChange, StepRecord } from "../DurableExecutionJournal.ts"
import type { Any } from "../Workflow.ts"
import { WorkflowContext } from "../WorkflowContext.ts"
import {
  ActivityResultError,
  ExecutionYielded,
  JournalDecodeError,
  JournalError,
  NonDeterminismError,
  SuspendReason
} from "../WorkflowErrors.ts"
import { runActivity } from "./ActivityStep.ts"
import { runChild } from "./ChildStep.ts"
import {
  decodeJsonResult,
  encodeJsonResult,
  encodeJsonRoundTrip,
  exitSchema,
  withoutExitEnvelope
} from "./codec.ts"
import { ExecutionState } from "./ExecutionState.ts"
import { recordLocal, recordVersion } from "./LocalSteps.ts"
import { describe, Replay } from "./Replay.ts"
import * as RunLoads from "./RunLoads.ts"
import type { StepEnvironment } from "./StepEnvironment.ts"
import { awaitSignal, sleepUntil } from "./WaitSteps.ts"

/** How a run of an execution ended. */
export type RunOutcome =
  | {
      readonly _tag: "Completed"
      readonly exit: Exit.Exit<unknown, unknown>
      /** What the run stored: the final status and the result's JSON. */
      readonly status: "succeeded" | "failed" | "interrupted"
      readonly result: string
    }
  | { readonly _tag: "Suspended"; readonly reason: SuspendReason }
  /** The engine is shutting down; the execution stays `running` for the next engine. */
  | { readonly _tag: "Stopped" }
  /** The journal failed for good; the execution stays `running` for the next engine. */
  | { readonly _tag: "Failed"; readonly error: JournalError }
  /** The row changed before the run could start (final or suspended meanwhile): read it again. */
  | { readonly _tag: "Stale" }
  /** Parked until `wakeAt` (null: until a signal): the engine's timer starts a new run then. */
  | { readonly _tag: "Sleeping"; readonly wakeAt: number | null }

/** What the engine keeps of a run in progress. */
export interface RunHandle {
  readonly state: ExecutionState
  readonly outcome: Deferred.Deferred<RunOutcome>
}

export interface RunnerEnvironment extends StepEnvironment {
  readonly isGracefulShutdown: () => boolean
  /** Bounds how many runs load their journal at once (a shard taken over resumes many). */
  readonly loading?: Semaphore.Semaphore | undefined
  /**
   * Loads a run's journal, batched with the runs loading at the same time (`RunLoads.make`).
   * Undefined: each run reads its own (`RunLoads.loadOne`).
   */
  readonly load?: ((executionId: string) => Effect.Effect<RunLoads.Loaded>) | undefined
  /**
   * Replay only (`WorkflowReplay`): recorded steps are replayed and checked, nothing runs past
   * the journal's frontier, and nothing is written.
   */
  readonly replayOnly?: boolean | undefined
  /**
   * Whether the run's lease (its shard's, at its epoch) still holds, by the pod's own clock: asked
   * whenever a fiber of the run resumes, before its next step; once it does not, the run stops
   * there (see `LeaseGuard`). Undefined: an unfenced run, never stopped for that.
   */
  readonly leaseHolds?: (() => boolean) | undefined
}

const stopped: RunOutcome = { _tag: "Stopped" }

/**
 * Starts a run of `row` in a new fiber and returns its handle at once. `freshRequest` is the
 * request object when this engine has just created the execution: nothing to decode or load.
 */
export const start = (
  env: RunnerEnvironment,
  workflow: Any,
  row: ExecutionRecord,
  freshRequest: unknown,
  services: Context.Context<never>,
  onEnd: (outcome: RunOutcome) => void
): Effect.Effect<RunHandle> =>
  Effect.suspend(() => {
    const state = new ExecutionState(row.executionId, row.workflow, new Replay([]), row.interruptRequested)
    state.replayOnly = env.replayOnly === true
    const handle: RunHandle = { state, outcome: Deferred.makeUnsafe<RunOutcome>() }
    const program = Effect.onExit(runBody(env, workflow, row, state, freshRequest), (exit) =>
      finish(env, workflow, state, exit).pipe(
        Effect.catchCause((cause): Effect.Effect<RunOutcome> => {
          // The journal gave up on a statement (its statement timeout): callers get its error.
          const gaveUp = journalGaveUp(cause)
          if (gaveUp !== undefined && !env.isGracefulShutdown())
            return Effect.as(
              Effect.logError(`execution ${row.executionId} stopped: the journal failed`, gaveUp),
              { _tag: "Failed", error: gaveUp } as const
            )
          // A defect of the run (not of the workflow): the execution stays running in the journal
          // and is resumed by the next engine; callers waiting on it are told the run stopped.
          // During shutdown it is the journal given up on, which the engine reports once.
          return Effect.as(
            env.isGracefulShutdown() || Cause.hasInterruptsOnly(cause)
              ? Effect.logDebug(`run of execution ${row.executionId} stopped during shutdown`, cause)
              : Effect.logError(`run of execution ${row.executionId} stopped`, cause),
            stopped
          )
        }),
        Effect.flatMap((outcome) => {
          const end = Effect.sync(() => {
            ended = outcome
            if (!state.telemetry) publish()
          })
          return state.telemetry ? Effect.andThen(Instrument.runEnds(row.workflow, outcome, row), end) : end
        })
      )
    )
    let ended: RunOutcome | undefined
    const publish = () => {
      if (ended === undefined) return
      state.markLoaded()
      onEnd(ended)
      Deferred.doneUnsafe(handle.outcome, Exit.succeed(ended))
    }
    // With telemetry, callers hear of the outcome once the run's span has ended (an exporter
    // closing with the program then has it).
    const traced = Instrument.execution(program, state, row.executionId, row.workflow, publish)
    // After a stall past the lease (a SIGSTOP, a long synchronous block), the run stops before any
    // fiber of it takes another step, whichever timer fires first: the body's, or the watchdog's.
    // Forked outside the caller's lease (a parent run starting its child's): it answers to its own.
    const leaseHolds = env.leaseHolds
    const run =
      leaseHolds === undefined
        ? traced
        : LeaseGuard.guard(traced, { holds: leaseHolds, lapsed: () => state.stopNow({ _tag: "Shutdown" }) })
    const fork = LeaseGuard.unguarded(Effect.forkDetach(Effect.provideContext(run, services)))
    return Effect.map(fork, (fiber) => {
      state.bodyFiber = fiber
      // A fiber interrupted before it began (an engine shutting down right after it was forked)
      // never runs `program`, so nothing above completes the outcome: do it here.
      fiber.addObserver(() => {
        if (Deferred.isDoneUnsafe(handle.outcome)) return
        state.markLoaded()
        onEnd(stopped)
        Deferred.doneUnsafe(handle.outcome, Exit.succeed(stopped))
      })
      return handle
    })
  })

/** Decodes the request, loads the journal and runs the workflow body with its context. */
const runBody = (
  env: RunnerEnvironment,
  workflow: Any,
  row: ExecutionRecord,
  state: ExecutionState,
  freshRequest: unknown
): Effect.Effect<unknown, unknown> =>
  Effect.gen(function* () {
    let request = freshRequest
    if (request === undefined) {
      const decoded = decodeJsonResult(workflow.request, row.request)
      if (Result.isFailure(decoded)) {
        const failure = decoded.failure
        return yield* state.suspend(
          new JournalDecodeError({
            executionId: row.executionId,
            workflow: row.workflow,
            record: "request",
            activity: null,
            path: failure.path,
            detail: failure.message
          })
        )
      }
      request = decoded.success
      const load =
        env.load === undefined ? RunLoads.loadOne(env.journal, row.executionId) : env.load(row.executionId)
      const loaded = yield* env.loading === undefined ? load : env.loading.withPermit(load)
      state.markLoaded()
      // A defect of either read is raised here: this run's own, as when it read them itself.
      const steps = yield* Effect.result(loaded.steps)
      const current = yield* loaded.row
      // A statement the journal gave up on (its statement timeout) is no decoding problem.
      if (Result.isFailure(steps) && steps.failure.timeoutMillis !== undefined) {
        return yield* state.halt({ _tag: "JournalFailed", error: steps.failure })
      }
      if (Result.isFailure(steps)) {
        return yield* state.suspend(
          new JournalDecodeError({
            executionId: row.executionId,
            workflow: row.workflow,
            record: "activity",
            activity: null,
            path: "<row>",
            detail: `they could not be loaded: ${steps.failure.message}`
          })
        )
      }
      // The row may have changed since the caller read it (finished, or suspended meanwhile).
      if (current._tag === "None" || current.value.status !== "running") {
        state.stale = true
        return yield* Effect.interrupt
      }
      state.replay = new Replay(steps.success)
      // A replay checks the recorded path; it delivers no interruption (that would run compensations).
      state.interruptRequested =
        !state.replayOnly && (state.interruptRequested || current.value.interruptRequested)
      if (steps.success.length === 0) state.caughtUp = true
    } else {
      // A new execution: nothing to load.
      state.markLoaded()
      state.caughtUp = true
    }
    // Recorded steps to replay: this run resumes the execution (after a resume, crash, restart, wake).
    if (state.telemetry && !state.replayOnly)
      yield* Instrument.runBegins(row.executionId, row.workflow, !state.caughtUp)
    const context = WorkflowContext.of({
      executionId: row.executionId,
      workflow: row.workflow,
      isGracefulShutdown: env.isGracefulShutdown,
      runtime: {
        runActivity: (definition, body) => runActivity(env, state, definition, body),
        recordLocal: (id, schema, compute) => recordLocal(state, id, schema, compute),
        version: (changeId, current) => recordVersion(state, changeId, current),
        sleepUntil: (deadline) => sleepUntil(env, state, deadline),
        awaitSignal: (name, schema, deadline) => awaitSignal(env, state, name, schema, deadline),
        runChild: (workflow, request) => runChild(env, state, workflow, request),
        yieldExecution: (message) =>
          state.interruptRequested
            ? state.deliverInterrupt().pipe(Effect.andThen(Effect.never))
            : state.suspend(
                new ExecutionYielded({
                  executionId: row.executionId,
                  workflow: row.workflow,
                  detail: message
                })
              )
      }
    })
    // The engine provides the workflow's requirements (captured by `makeScoped`) around the run.
    return yield* Effect.provideService(workflow.body(request), WorkflowContext, context) as Effect.Effect<
      unknown,
      unknown
    >
  })

/** A `JournalError` the journal gave up on (a statement timeout), among the cause's defects. */
const journalGaveUp = (cause: Cause.Cause<unknown>): JournalError | undefined => {
  for (const reason of cause.reasons) {
    const error = Cause.isDieReason(reason)
      ? reason.defect
      : Cause.isFailReason(reason)
        ? reason.error
        : undefined
    if (error instanceof JournalError && error.timeoutMillis !== undefined) return error
  }
  return undefined
}

/** Records how the run ended. Runs as the run fiber's finalizer. */
const finish = (
  env: RunnerEnvironment,
  workflow: Any,
  state: ExecutionState,
  exit: Exit.Exit<unknown, unknown>
): Effect.Effect<RunOutcome> =>
  Effect.suspend(() => {
    state.stopping = true
    if (state.stale) return Effect.succeed({ _tag: "Stale" } as const)
    const stop = state.stopReason
    if (stop !== undefined) {
      switch (stop._tag) {
        case "Shutdown":
          return Effect.as(write(env, state, undefined), stopped)
        case "JournalFailed":
          return Effect.as(
            Effect.logError(`execution ${state.executionId} stopped: the journal failed`, stop.error),
            { _tag: "Failed", error: stop.error } as const
          )
        case "Suspend":
          return suspendNow(env, state, stop.reason)
        case "Sleep":
          return park(env, state)
        case "Replayed": {
          // Every fiber replayed what it could: a recorded step nobody asked for means the code no
          // longer reaches it.
          const unasked = state.replay.firstUnasked()
          if (unasked === undefined) return Effect.succeed(stopped)
          return skipped(env, state, unasked, "nothing (every fiber stopped at the frontier before it)")
        }
      }
    }
    const interrupted = Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause)
    const unasked =
      interrupted || state.bodyFiber === undefined ? undefined : state.replay.skippedAfter(state.bodyFiber)
    if (unasked !== undefined) return skipped(env, state, unasked, "the workflow completed")
    const encoded = encodeJsonRoundTrip(exitSchema(workflow.request.success, workflow.request.failure), exit)
    if (Result.isFailure(encoded)) {
      const failure = withoutExitEnvelope(encoded.failure)
      return suspendNow(
        env,
        state,
        new ActivityResultError({
          executionId: state.executionId,
          workflow: state.workflow,
          activity: "<workflow result>",
          path: failure.path,
          detail: failure.message
        })
      )
    }
    const status = interrupted ? "interrupted" : Exit.isSuccess(exit) ? "succeeded" : "failed"
    // Callers get the result as decoded from what was stored, like every later caller.
    const stored = encoded.success.value as Exit.Exit<unknown, unknown>
    return Effect.as(write(env, state, { _tag: "Complete", status, result: encoded.success.json }), {
      _tag: "Completed",
      exit: stored,
      status,
      result: encoded.success.json
    } as const)
  })

/** Suspends the run: the journal recorded `step`, which the code never asked for. */
const skipped = (env: RunnerEnvironment, state: ExecutionState, step: StepRecord, actual: string) =>
  suspendNow(
    env,
    state,
    new NonDeterminismError({
      executionId: state.executionId,
      workflow: state.workflow,
      expected: describe(step),
      actual
    })
  )

/**
 * Parks the execution: it wakes at the earliest deadline of the waits in progress, or when one of
 * their signals arrives. A signal sent between a wait's last look and the park found the execution
 * running and could not wake it, so each awaited signal is looked up once more after parking and,
 * if one arrived, the execution is made due now.
 */
const park = (env: RunnerEnvironment, state: ExecutionState): Effect.Effect<RunOutcome> =>
  Effect.gen(function* () {
    const waits = [...state.waits]
    const deadlines = waits.flatMap((wait) => (wait.wakeAt === null ? [] : [wait.wakeAt]))
    const wakeAt = deadlines.length === 0 ? null : Math.min(...deadlines)
    yield* write(env, state, { _tag: "Sleep", wakeAt })
    for (const signal of new Set(waits.flatMap((wait) => (wait.signal === undefined ? [] : [wait.signal])))) {
      const payload = yield* Effect.orDie(env.journal.getSignal(state.executionId, signal))
      if (payload._tag === "None") continue
      const now = env.now()
      yield* Effect.orDie(
        env.journal.write({
          executionId: state.executionId,
          outcomes: [],
          status: { _tag: "WakeBy", wakeAt: now },
          now
        })
      )
      return { _tag: "Sleeping", wakeAt: now } as const
    }
    return { _tag: "Sleeping", wakeAt } as const
  })

/** Writes the outcomes still pending and, if given, the status change, in one transaction. */
const write = (env: RunnerEnvironment, state: ExecutionState, status: StatusChange | undefined) =>
  Effect.suspend(() => {
    if (state.replayOnly) return Effect.void
    const outcomes = state.takePending()
    const failedAttempts = state.takeFailedAttempts()
    if (outcomes.length === 0 && status === undefined && failedAttempts.length === 0) return Effect.void
    return Effect.orDie(
      env.journal.write({ executionId: state.executionId, outcomes, status, failedAttempts, now: env.now() })
    )
  })

const suspendNow = (
  env: RunnerEnvironment,
  state: ExecutionState,
  reason: SuspendReason
): Effect.Effect<RunOutcome> =>
  Effect.gen(function* () {
    const encoded = encodeJsonResult(SuspendReason, reason)
    if (Result.isFailure(encoded)) return yield* Effect.die(new Error(encoded.failure.message))
    if (!state.replayOnly)
      yield* Effect.logWarning(`execution ${state.executionId} suspended: ${reason.message}`)
    yield* write(env, state, { _tag: "Suspend", reason: encoded.success })
    return { _tag: "Suspended", reason } as const
  })
