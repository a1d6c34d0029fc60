/**
 * Runs (or resumes) one execution: decodes its request, replays its journal through the workflow
 * body, and records how the run ended — a final result, a suspension, or (graceful shutdown, I8)
 * only the outcomes already delivered, leaving the execution `running` for the next engine.
 */
import { Cause, Clock, Deferred, Effect, Exit, Fiber, Result } from "effect"
import type { ExecutionRecord, StatusChange } from "../DurableExecutionJournal.ts"
import type { Any } from "../Workflow.ts"
import { WorkflowContext } from "../WorkflowContext.ts"
import {
  ActivityResultError,
  ExecutionYielded,
  JournalDecodeError,
  NonDeterminismError,
  SuspendReason
} from "../WorkflowErrors.ts"
import { decodeJsonResult, encodeJsonResult, exitSchema, withoutExitEnvelope } from "./codec.ts"
import { ExecutionState } from "./ExecutionState.ts"
import { describe, Replay } from "./Replay.ts"
import { runActivity, type StepEnvironment } from "./StepRunner.ts"

/** How a run of an execution ended. */
export type RunOutcome =
  | { readonly _tag: "Completed"; readonly exit: Exit.Exit<unknown, unknown> }
  | { readonly _tag: "Suspended"; readonly reason: SuspendReason }
  | { readonly _tag: "Stopped" }

/** What the engine keeps of a run in progress. */
export interface RunHandle {
  readonly state: ExecutionState
  readonly outcome: Deferred.Deferred<RunOutcome>
}

export interface RunnerEnvironment extends StepEnvironment {
  readonly isGracefulShutdown: () => boolean
}

/** Creates the handle of a run; `run` then drives it. Synchronous so the engine can register it atomically. */
export const makeHandle = (row: ExecutionRecord): RunHandle => ({
  state: new ExecutionState(row.executionId, row.workflow, new Replay([]), row.interruptRequested),
  outcome: Deferred.makeUnsafe<RunOutcome>()
})

const stopped: RunOutcome = { _tag: "Stopped" }

export const run = (env: RunnerEnvironment, workflow: Any, row: ExecutionRecord, handle: RunHandle) =>
  Effect.gen(function* () {
    const state = handle.state
    const request = decodeJsonResult(workflow.request, row.request)
    if (Result.isFailure(request)) {
      const failure = request.failure
      return yield* suspendNow(
        env,
        state,
        new JournalDecodeError({
          executionId: row.executionId,
          workflow: row.workflow,
          record: "request",
          activity: null,
          path: failure.path,
          message: `stored request of workflow "${row.workflow}" no longer decodes: ${failure.message}`
        })
      )
    }
    // The handle was registered before the journal was read; give it the loaded history.
    state.replay = new Replay(yield* Effect.orDie(env.journal.steps(row.executionId)))
    const context = WorkflowContext.of({
      executionId: row.executionId,
      workflow: row.workflow,
      isGracefulShutdown: env.isGracefulShutdown,
      runtime: {
        runActivity: (definition, body) => runActivity(env, state, definition, body),
        yieldExecution: (message) =>
          state.interruptRequested
            ? state.deliverInterrupt().pipe(Effect.andThen(Effect.never))
            : state.suspend(
                new ExecutionYielded({ executionId: row.executionId, workflow: row.workflow, message })
              )
      }
    })
    // The engine provides the workflow's requirements (captured by `makeScoped`) around the run.
    const body = Effect.provideService(
      workflow.body(request.success),
      WorkflowContext,
      context
    ) as Effect.Effect<unknown, unknown>
    state.bodyFiber = yield* Effect.forkDetach(
      // onExit runs even when the body fiber is interrupted from outside.
      Effect.onExit(body, (exit) => Deferred.succeed(state.ended, { _tag: "Done", exit }))
    )
    const ending = yield* Deferred.await(state.ended)
    if (ending._tag === "Stop") {
      state.stopping = true
      yield* Fiber.interrupt(state.bodyFiber)
      if (ending.reason._tag === "Shutdown") {
        yield* write(env, state, undefined)
        return stopped
      }
      return yield* suspendNow(env, state, ending.reason.reason)
    }
    const exit = ending.exit
    const interrupted = Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause)
    const unasked = interrupted ? undefined : state.replay.unaskedOutcome()
    if (unasked !== undefined) {
      return yield* suspendNow(
        env,
        state,
        new NonDeterminismError({
          executionId: row.executionId,
          workflow: row.workflow,
          expected: describe(unasked),
          actual: "the workflow completed",
          message: `workflow "${row.workflow}" completed without asking for ${describe(unasked)} that its journal recorded`
        })
      )
    }
    const encoded = encodeJsonResult(exitSchema(workflow.request.success, workflow.request.failure), exit)
    if (Result.isFailure(encoded)) {
      const failure = withoutExitEnvelope(encoded.failure)
      return yield* suspendNow(
        env,
        state,
        new ActivityResultError({
          executionId: row.executionId,
          workflow: row.workflow,
          activity: "<workflow result>",
          path: failure.path,
          message: `workflow "${row.workflow}" returned a result its schemas cannot encode: ${failure.message}`
        })
      )
    }
    const status = interrupted ? "interrupted" : Exit.isSuccess(exit) ? "succeeded" : "failed"
    yield* write(env, state, { _tag: "Complete", status, result: encoded.success })
    return { _tag: "Completed", exit } as const
  }).pipe(
    Effect.exit,
    Effect.flatMap((exit) => {
      if (Exit.isSuccess(exit)) return Deferred.succeed(handle.outcome, exit.value)
      // A defect of the run (not of the workflow): the execution stays running in the journal and
      // is resumed by the next engine; callers waiting on it are told the run stopped.
      return Effect.logError(`run of execution ${row.executionId} stopped`, exit.cause).pipe(
        Effect.andThen(Deferred.succeed(handle.outcome, stopped))
      )
    })
  )

/** Writes the outcomes still pending and, if given, the status change, in one transaction. */
const write = (env: RunnerEnvironment, state: ExecutionState, status: StatusChange | undefined) =>
  Effect.gen(function* () {
    const outcomes = state.takePending()
    if (outcomes.length === 0 && status === undefined) return
    const now = yield* Clock.currentTimeMillis
    yield* Effect.orDie(env.journal.write({ executionId: state.executionId, outcomes, status, now }))
  })

const suspendNow = (env: RunnerEnvironment, state: ExecutionState, reason: SuspendReason) =>
  Effect.gen(function* () {
    const encoded = encodeJsonResult(SuspendReason, reason)
    if (Result.isFailure(encoded)) return yield* Effect.die(new Error(encoded.failure.message))
    yield* Effect.logWarning(`execution ${state.executionId} suspended: ${reason.message}`)
    yield* write(env, state, { _tag: "Suspend", reason: encoded.success })
    return { _tag: "Suspended", reason } as const
  })
