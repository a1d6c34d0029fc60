/**
 * The protocol every step of an execution follows, whatever its kind (activity, local value,
 * signal wait, child workflow): ask the replay for the step and check determinism (I7), wait at the
 * frontier while recorded steps remain unasked (`Frontier`), replay a recorded outcome (decoded
 * with the current schemas, I6), or begin the step and queue its outcome for the next write.
 *
 * Write protocol: before an attempt's body runs, one journal write stores its attempt marker
 * together with every outcome this execution delivered since its last write, and the attempt waits
 * until every earlier write that carried outcomes has committed. So an outcome is on disk before
 * anything that could depend on it has a side effect, and a sequential workflow pays one durable
 * commit per activity.
 */
import { Deferred, Effect, Exit, Result, type Schema } from "effect"
import type { ActivityDefinition } from "../Activity.ts"
import type { AttemptStart, StepRecord } from "../DurableExecutionJournal.ts"
import {
  ActivityResultError,
  type InvalidIdentifierError,
  JournalDecodeError,
  type JournalError,
  NonDeterminismError
} from "../WorkflowErrors.ts"
import { decodeJsonResult, encodeJsonRoundTrip, exitSchema, withoutExitEnvelope } from "./codec.ts"
import type { ExecutionState } from "./ExecutionState.ts"
import { invalidIdentifier } from "./identifier.ts"
import type { StepEnvironment } from "./StepEnvironment.ts"

/** A step asked by a fiber: its key, its recorded row (if any) and the fiber's previous step. */
export interface AskedStep {
  readonly stepKey: string
  readonly recorded: StepRecord | undefined
  readonly previous: string | null
}

/** What an identifier checked when a step is asked is (an activity id by default). */
export interface CheckedIdentifier {
  readonly kind: InvalidIdentifierError["kind"]
  readonly value: string
}

/**
 * Asks for the next step of `id` in `fiber` and continues with `k` when its turn comes (see
 * `Frontier`): a recorded outcome once the run is where it was when the outcome was recorded, a
 * step absent from the journal once every recorded step has been asked, a step in progress at
 * once. A divergence from the journal suspends the run instead.
 */
export const withStep = <A, E, R>(
  state: ExecutionState,
  fiber: object,
  id: string,
  checked: CheckedIdentifier | undefined,
  k: (asked: AskedStep) => Effect.Effect<A, E, R>
): Effect.Effect<A, E, R> => {
  const asked = askStep(state, fiber, id, checked)
  if (Effect.isEffect(asked)) return asked
  const recorded = asked.recorded
  let turn: Effect.Effect<void> | undefined
  if (recorded === undefined) {
    turn = state.frontier.admitNew(asked.stepKey)
  } else {
    state.frontier.recordedAsked()
    if (recorded.outcome !== null) turn = state.frontier.admitOutcome(recorded)
  }
  if (turn === undefined) return k(asked)
  return Effect.flatMap(turn, () => (state.stopping ? Effect.interrupt : k(asked)))
}

/**
 * Asks the replay for the next step of `id` in this fiber and checks determinism (I7). Returns the
 * step key, its recorded row and the fiber's previous step, or the effect that suspends the run.
 */
const askStep = (
  state: ExecutionState,
  fiber: object,
  id: string,
  checked: CheckedIdentifier = { kind: "activity id", value: id }
): AskedStep | Effect.Effect<never> => {
  state.asks++
  const invalid = invalidIdentifier(checked.kind, checked.value, state.workflow)
  if (invalid !== undefined) return state.suspend(invalid)
  const stepKey = state.replay.nextStepKey(id)
  const recorded = state.replay.recordedStep(stepKey)
  const previous = state.replay.previousOf(fiber)
  const divergence = state.replay.ask(fiber, stepKey, recorded)
  if (divergence === undefined) return { stepKey, recorded, previous }
  return state.suspend(
    new NonDeterminismError({
      executionId: state.executionId,
      workflow: state.workflow,
      expected: divergence.expected,
      actual: divergence.actual
    })
  )
}

/**
 * A step with no recorded outcome begins: replay has caught up. Delivers a pending interruption
 * (`WorkflowEngine.interrupt` before a restart) instead, or returns the step's attempt start.
 */
export const beginStep = (
  state: ExecutionState,
  asked: AskedStep,
  activityId: string,
  attempt: number
): AttemptStart | Effect.Effect<never> => {
  state.caughtUp = true
  if (state.replayOnly) return state.atFrontier()
  if (state.interruptRequested && !state.interruptDelivered) {
    return Effect.andThen(state.deliverInterrupt(), Effect.never)
  }
  return {
    executionId: state.executionId,
    stepKey: asked.stepKey,
    activityId,
    seq: asked.recorded?.seq ?? state.replay.allocateSeq(),
    previous: asked.recorded?.previous ?? asked.previous,
    attempt
  }
}

/**
 * Queues the outcome of a step for the next write, encoded with `schema` (an `Exit` schema), and
 * returns the value a replay will see (decoded back from what is stored), so that the first run
 * cannot see more than replays do. A value the schema cannot encode suspends the run instead.
 */
export const recordOutcome = <A, E>(
  state: ExecutionState,
  start: AttemptStart,
  schema: Schema.Codec<Exit.Exit<A, E>, any, never, never>,
  exit: Exit.Exit<A, E>,
  what: string
): Effect.Effect<A, E> => {
  const encoded = encodeJsonRoundTrip(schema, exit)
  if (Result.isFailure(encoded)) {
    const failure = withoutExitEnvelope(encoded.failure)
    return state.suspend(
      new ActivityResultError({
        executionId: state.executionId,
        workflow: state.workflow,
        activity: start.stepKey,
        path: failure.path,
        detail: `(${what}) ${failure.message}`
      })
    )
  }
  state.addPending({ ...start, outcome: encoded.success.json, completedAfter: state.replay.lastSeq() })
  return encoded.success.value as Exit.Exit<A, E>
}

/** Returns a recorded outcome, decoded with the activity's current schemas. */
export const replayOutcome = <A, E>(
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
        detail: failure.message
      })
    )
  }
  // Decoded with Exit(success, failure): its value and error have the activity's types.
  return decoded.success as Exit.Exit<A, E>
}

/**
 * Writes an attempt marker with the pending outcomes, then waits for earlier outcome writes.
 * Outcomes of a write that fails or is interrupted go back to the queue; a write that fails for
 * good stops the run.
 */
export const writeAttempt = (
  env: StepEnvironment,
  state: ExecutionState,
  start: AttemptStart | undefined
): Effect.Effect<void> =>
  Effect.suspend(() => {
    const outcomes = state.takePending()
    if (start === undefined && outcomes.length === 0) return Effect.void
    const failedAttempts = state.takeFailedAttempts()
    const prior = state.outcomesWritten
    const mine = outcomes.length > 0 ? Deferred.makeUnsafe<void>() : undefined
    if (mine !== undefined) state.outcomesWritten = mine
    const written = env.journal
      .write({ executionId: state.executionId, outcomes, attempt: start, failedAttempts, now: env.now() })
      .pipe(Effect.andThen(prior === undefined ? Effect.void : Deferred.await(prior)))
    return written.pipe(
      Effect.onExit((exit) => {
        if (!Exit.isSuccess(exit)) {
          state.restorePending(outcomes)
          state.restoreFailedAttempts(failedAttempts)
        }
        return mine === undefined ? Effect.void : Deferred.succeed(mine, undefined)
      }),
      Effect.catch((error: JournalError) => state.halt({ _tag: "JournalFailed", error }))
    )
  })

/** Counts the step as in progress while it runs (see `ExecutionState.activeAttempts`). */
export const counted = <A, E, R>(state: ExecutionState, step: Effect.Effect<A, E, R>) =>
  Effect.suspend(() => {
    state.activeAttempts++
    return Effect.ensuring(
      step,
      Effect.sync(() => {
        if (--state.activeAttempts === 0) state.frontier.attemptsOver()
      })
    )
  })
