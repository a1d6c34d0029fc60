/**
 * Runs (or resumes) one execution: decodes its request, replays its journal through the workflow
 * body, and records how the run ended — a final result, a suspension, or nothing at all when the
 * engine shuts down gracefully (I8).
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
import { decodeJson, encodeJson, exitSchema, withoutExitEnvelope } from "./codec.ts"
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

export const run = (env: RunnerEnvironment, workflow: Any, row: ExecutionRecord, handle: RunHandle) =>
  Effect.gen(function* () {
    const journal = env.journal
    const state = handle.state
    const request = yield* Effect.result(decodeJson(workflow.request, row.request))
    if (Result.isFailure(request)) {
      const failure = request.failure
      return yield* suspendNow(
        env,
        row,
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
    const steps = yield* Effect.orDie(journal.steps(row.executionId))
    const replay = new Replay(steps)
    // The handle was registered before the journal was read; give it the loaded history.
    state.replay = replay
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
    const fiber = yield* Effect.forkDetach(body, { startImmediately: false })
    state.bodyFiber = fiber
    const ended = yield* Effect.race(
      Effect.map(Fiber.await(fiber), (exit) => ({ _tag: "Done" as const, exit })),
      Effect.map(Deferred.await(state.stop), (reason) => ({ _tag: "Stop" as const, reason }))
    )
    if (ended._tag === "Stop") {
      state.stopping = true
      yield* Fiber.interrupt(fiber)
      if (ended.reason._tag === "Shutdown") return { _tag: "Stopped" } as const
      return yield* suspendNow(env, row, ended.reason.reason)
    }
    const exit = ended.exit
    const interrupted = Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause)
    if (!interrupted) {
      const unasked = replay.unaskedOutcome()
      if (unasked !== undefined) {
        return yield* suspendNow(
          env,
          row,
          new NonDeterminismError({
            executionId: row.executionId,
            workflow: row.workflow,
            expected: describe(unasked),
            actual: "the workflow completed",
            message: `workflow "${row.workflow}" completed without asking for ${describe(unasked)} that its journal recorded`
          })
        )
      }
    }
    const encoded = yield* Effect.result(
      encodeJson(exitSchema(workflow.request.success, workflow.request.failure), exit).pipe(
        Effect.mapError(withoutExitEnvelope)
      )
    )
    if (Result.isFailure(encoded)) {
      const failure = encoded.failure
      return yield* suspendNow(
        env,
        row,
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
    yield* change(env, row.executionId, { _tag: "Complete", status, result: encoded.success })
    return { _tag: "Completed", exit } as const
  }).pipe(
    Effect.exit,
    Effect.flatMap((exit) => {
      if (Exit.isSuccess(exit)) return Deferred.succeed(handle.outcome, exit.value)
      // A defect of the run (not of the workflow): the execution stays running in the journal and
      // is resumed by the next engine; callers waiting on it are told the run stopped.
      return Effect.logError(`run of execution ${row.executionId} stopped`, exit.cause).pipe(
        Effect.andThen(Deferred.succeed(handle.outcome, { _tag: "Stopped" } as const))
      )
    })
  )

const change = (env: RunnerEnvironment, executionId: string, statusChange: StatusChange) =>
  Effect.flatMap(Clock.currentTimeMillis, (now) =>
    env.journal.changeStatus(executionId, statusChange, now)
  ).pipe(Effect.orDie)

const suspendNow = (env: RunnerEnvironment, row: ExecutionRecord, reason: SuspendReason) =>
  Effect.gen(function* () {
    const encoded = yield* encodeJson(SuspendReason, reason).pipe(Effect.orDie)
    yield* Effect.logWarning(`execution ${row.executionId} suspended: ${reason.message}`)
    yield* change(env, row.executionId, { _tag: "Suspend", reason: encoded })
    return { _tag: "Suspended", reason } as const
  })
