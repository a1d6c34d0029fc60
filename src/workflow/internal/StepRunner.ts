/**
 * Runs one activity step of an execution: replays its recorded outcome (I1), or runs attempts
 * until an outcome is recorded (I2), checking on the way that replay follows the journal (I7) and
 * that outcomes round-trip through their schemas (I6).
 *
 * Write protocol: before an attempt's body runs, one journal write stores its attempt marker
 * together with every outcome this execution delivered since its last write. So an outcome is on
 * disk before anything that could depend on it has a side effect, and a sequential workflow pays
 * one durable commit per activity.
 */
import { Cause, Effect, Exit, Option, Result } from "effect"
import type { ActivityDefinition } from "../Activity.ts"
import { ActivityContext } from "../ActivityContext.ts"
import type { DurableExecutionJournal, StepRecord } from "../DurableExecutionJournal.ts"
import { delayAfter, type ResolvedRetryPolicy, resolve } from "../RetryPolicy.ts"
import { ActivityResultError, JournalDecodeError, NonDeterminismError } from "../WorkflowErrors.ts"
import { decodeJsonResult, encodeJsonResult, exitSchema, withoutExitEnvelope } from "./codec.ts"
import type { ExecutionState } from "./ExecutionState.ts"
import { describe } from "./Replay.ts"

/**
 * What a step needs from its engine. The journal given here already retries storage faults;
 * an error that still escapes it is a defect of the run.
 */
export interface StepEnvironment {
  readonly journal: DurableExecutionJournal["Service"]
  readonly retryPolicy: ResolvedRetryPolicy
  /** The engine's clock, read synchronously on the hot path. */
  readonly now: () => number
}

/** How many times a new step yields to sibling fibers before declaring a recorded step skipped. */
const OVERDUE_YIELDS = 8

export const runActivity = <A, E, R>(
  env: StepEnvironment,
  state: ExecutionState,
  definition: ActivityDefinition<A, E>,
  body: Effect.Effect<A, E, R>
): Effect.Effect<A, E, R> =>
  Effect.suspend(() => {
    if (state.stopping) return Effect.interrupt
    const stepKey = state.replay.nextStepKey(definition.id)
    const recorded = state.replay.recordedStep(stepKey)
    if (recorded !== undefined) {
      const divergence = state.replay.checkRecorded(recorded)
      if (divergence !== undefined) return diverge(state, divergence.expected, divergence.actual)
      state.replay.markAsked(stepKey)
      if (recorded.outcome !== null)
        return replayOutcome(state, definition, recorded.stepKey, recorded.outcome)
      return fresh(env, state, definition, body, stepKey, recorded)
    }
    if (state.replay.overdueStep() === undefined) {
      state.replay.markAsked(stepKey)
      return fresh(env, state, definition, body, stepKey, undefined)
    }
    return Effect.andThen(awaitSiblings(state, stepKey), () => {
      state.replay.markAsked(stepKey)
      return fresh(env, state, definition, body, stepKey, undefined)
    })
  })

const diverge = (state: ExecutionState, expected: string, actual: string): Effect.Effect<never> =>
  state.suspend(
    new NonDeterminismError({
      executionId: state.executionId,
      workflow: state.workflow,
      expected,
      actual,
      message: `workflow "${state.workflow}" diverged from its journal: expected ${expected}, but it asked for ${actual}`
    })
  )

/**
 * A new step is asked while a recorded step the workflow should already have reached is un-asked.
 * Sibling fibers (forEach, race) may simply not have been scheduled yet: let them run first.
 */
const awaitSiblings = (state: ExecutionState, stepKey: string): Effect.Effect<void> =>
  Effect.gen(function* () {
    for (let i = 0; i < OVERDUE_YIELDS; i++) {
      yield* Effect.yieldNow
      if (state.replay.overdueStep() === undefined) return
    }
    const overdue = state.replay.overdueStep()
    if (overdue !== undefined) yield* diverge(state, describe(overdue), `the new step "${stepKey}"`)
  })

/** Returns a recorded outcome, decoded with the activity's current schemas. */
const replayOutcome = <A, E>(
  state: ExecutionState,
  definition: ActivityDefinition<A, E>,
  stepKey: string,
  outcome: string
): Effect.Effect<A, E> => {
  const decoded = decodeJsonResult(exitSchema(definition.success, definition.failure), outcome)
  if (Result.isFailure(decoded)) {
    const failure = withoutExitEnvelope(decoded.failure)
    return state.suspend(
      new JournalDecodeError({
        executionId: state.executionId,
        workflow: state.workflow,
        record: "activity",
        activity: stepKey,
        path: failure.path,
        message: `recorded outcome of activity "${stepKey}" of workflow "${state.workflow}" no longer decodes: ${failure.message}`
      })
    )
  }
  state.replay.delivered++
  // Decoded with Exit(success, failure): its value and error have the activity's types.
  return decoded.success as Exit.Exit<A, E>
}

/** Runs attempts of a step that has no recorded outcome. Written without generators: hot path. */
const fresh = <A, E, R>(
  env: StepEnvironment,
  state: ExecutionState,
  definition: ActivityDefinition<A, E>,
  body: Effect.Effect<A, E, R>,
  stepKey: string,
  recorded: StepRecord | undefined
): Effect.Effect<A, E, R> => {
  if (state.interruptRequested && !state.interruptDelivered) {
    // Replay has caught up with the interrupted execution: interrupt it here.
    return Effect.andThen(state.deliverInterrupt(), Effect.never)
  }
  const policy = resolve(definition.retry, env.retryPolicy)
  const seq = recorded?.seq ?? state.replay.allocateSeq()
  const after = recorded?.after ?? state.replay.delivered
  const persistenceId = `${state.executionId}/${stepKey}`
  const schema = exitSchema(definition.success, definition.failure)

  const attemptNumber = (attempt: number): Effect.Effect<A, E, R> => {
    const start = { executionId: state.executionId, stepKey, activityId: definition.id, seq, after, attempt }
    const run = Effect.provideService(body, ActivityContext, {
      activityId: definition.id,
      persistenceId,
      attempt
    })
    return Effect.uninterruptibleMask((restore) => {
      if (state.stopping) return Effect.interrupt
      const write = env.journal.write({
        executionId: state.executionId,
        outcomes: state.takePending(),
        attempt: start,
        now: env.now()
      })
      return Effect.flatMap(restore(Effect.orDie(write)), () =>
        Effect.flatMap(Effect.exit(restore(run)), (exit) =>
          // If this fiber was interrupted (shutdown, race lost), stop here: nothing is recorded.
          Effect.as(restore(Effect.void), exit)
        )
      )
    }).pipe(
      Effect.flatMap((exit) => {
        if (!Exit.isSuccess(exit) && shouldRetry(policy, exit.cause, attempt)) {
          return Effect.andThen(Effect.sleep(delayAfter(policy, attempt)), attemptNumber(attempt + 1))
        }
        const encoded = encodeJsonResult(schema, exit)
        if (Result.isFailure(encoded)) {
          const failure = withoutExitEnvelope(encoded.failure)
          return state.suspend(
            new ActivityResultError({
              executionId: state.executionId,
              workflow: state.workflow,
              activity: stepKey,
              path: failure.path,
              message: `activity "${stepKey}" of workflow "${state.workflow}" produced an outcome its schema cannot encode: ${failure.message}`
            })
          )
        }
        state.addPending({ ...start, outcome: encoded.success })
        state.replay.delivered++
        return exit
      })
    )
  }
  return attemptNumber((recorded?.attempt ?? 0) + 1)
}

const shouldRetry = (policy: ResolvedRetryPolicy, cause: Cause.Cause<unknown>, attempt: number): boolean => {
  if (attempt >= policy.maxAttempts) return false
  const error = Cause.findErrorOption(cause)
  return Option.isNone(error) || policy.retryWhile(error.value)
}
