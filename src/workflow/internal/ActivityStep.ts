/**
 * Activity steps: replay of a recorded outcome (I1), or attempts until an outcome is recorded (I2),
 * each attempt's marker written before its body runs (see `Steps` for the write protocol), with
 * the retry policy, timeouts and heartbeats of the activity's definition.
 */
import { Cause, Duration, Effect, Exit, Option, Result } from "effect"
import * as Instrument from "../../observability/internal/instrument.ts"
import type { ActivityDefinition } from "../Activity.ts"
import { ActivityContext } from "../ActivityContext.ts"
import type { AttemptStart, StepRecord } from "../DurableExecutionJournal.ts"
import { delayAfter, type ResolvedRetryPolicy, resolve } from "../RetryPolicy.ts"
import { ExecutionYielded } from "../WorkflowErrors.ts"
import { encodeJsonRoundTrip, exitSchema } from "./codec.ts"
import type { ExecutionState } from "./ExecutionState.ts"
import { Progress, withTimeouts } from "./Heartbeats.ts"
import type { StepEnvironment } from "./StepEnvironment.ts"
import { counted, recordOutcome, replayOutcome, withStep, writeAttempt } from "./Steps.ts"

/** Runs the activity step `definition` of the execution with `body` as each attempt's work. */
export const runActivity = <A, E, R>(
  env: StepEnvironment,
  state: ExecutionState,
  definition: ActivityDefinition<A, E>,
  body: Effect.Effect<A, E, R>
): Effect.Effect<A, E, R> =>
  Effect.withFiber((fiber) => {
    if (state.stopping) return Effect.interrupt
    return withStep(state, fiber, definition.id, undefined, ({ stepKey, recorded, previous }) =>
      recorded?.outcome != null
        ? replayOutcome(state, definition, stepKey, recorded.outcome)
        : fresh(env, state, definition, body, stepKey, recorded, previous)
    )
  })

/** Runs attempts of a step that has no recorded outcome. Written without generators: hot path. */
const fresh = <A, E, R>(
  env: StepEnvironment,
  state: ExecutionState,
  definition: ActivityDefinition<A, E>,
  body: Effect.Effect<A, E, R>,
  stepKey: string,
  recorded: StepRecord | undefined,
  previous: string | null
): Effect.Effect<A, E, R> => {
  state.caughtUp = true
  if (state.replayOnly) return state.atFrontier()
  if (state.interruptRequested && !state.interruptDelivered) {
    // Replay has caught up with the interrupted execution: interrupt it here.
    return Effect.andThen(state.deliverInterrupt(), Effect.never)
  }
  const policy = resolve(definition.retry, env.retryPolicy)
  const seq = recorded?.seq ?? state.replay.allocateSeq()
  const persistenceId = `${state.executionId}/${stepKey}`
  const schema = exitSchema(definition.success, definition.failure)
  const progress = new Progress(env, state, stepKey, recorded?.heartbeat ?? null)
  const startToClose = millisOf(definition.startToCloseTimeout)
  const heartbeatTimeout = millisOf(definition.heartbeatTimeout)

  const attemptNumber = (attempt: number): Effect.Effect<A, E, R> => {
    const start: AttemptStart = {
      executionId: state.executionId,
      stepKey,
      activityId: definition.id,
      seq,
      previous: recorded?.previous ?? previous,
      attempt
    }
    let startedAt = 0
    // The attempt's clocks start when its body does, after its marker is written.
    const run = Effect.suspend(() => {
      startedAt = env.now()
      const lastHeartbeat = progress.startAttempt()
      return withTimeouts(
        Effect.provideService(body, ActivityContext, {
          activityId: definition.id,
          persistenceId,
          attempt,
          heartbeat: progress.beat,
          lastHeartbeat,
          fence: env.fence ?? null
        }),
        stepKey,
        startToClose,
        heartbeatTimeout,
        progress
      )
    })
    const attempted = Effect.uninterruptibleMask((restore) =>
      state.stopping
        ? Effect.interrupt
        : state.draining
          ? // The shard is being handed over: the new owner starts this attempt.
            state.halt({ _tag: "Shutdown" })
          : Effect.flatMap(restore(writeAttempt(env, state, start)), () =>
              Effect.flatMap(Effect.exit(restore(run)), (exit) =>
                // If this fiber was interrupted (shutdown, race lost), stop here: nothing is recorded.
                Effect.as(restore(Effect.void), exit)
              )
            )
    )
    const observed = state.telemetry
      ? Instrument.attempt(attempted, state, definition.id, persistenceId, attempt)
      : attempted
    return observed.pipe(
      Effect.flatMap((exit): Effect.Effect<A, E, R> => {
        if (Exit.isFailure(exit)) {
          // Interrupted without this fiber being interrupted (the run is stopping, or the body
          // interrupted itself): nothing to record, the step runs again on the next run.
          if (state.stopping || Cause.hasInterruptsOnly(exit.cause)) return exit
          if (shouldRetry(policy, exit.cause, attempt)) {
            // Kept for the history, written with the next attempt's marker.
            const failure = encodeJsonRoundTrip(schema, exit)
            state.addFailedAttempt({
              executionId: state.executionId,
              stepKey,
              attempt,
              startedAt,
              endedAt: env.now(),
              outcome: Result.isSuccess(failure)
                ? failure.success.json
                : JSON.stringify({ _tag: "Failure", cause: Cause.pretty(exit.cause) })
            })
            if (policy.yieldAfter !== undefined && attempt % policy.yieldAfter === 0) {
              // The attempt-failed signal: give the execution back instead of retrying on.
              const message = `activity "${stepKey}" failed ${attempt} attempts; last error: ${Cause.pretty(exit.cause).split("\n")[0]}`
              return Effect.andThen(
                Effect.logWarning(`execution ${state.executionId} yields: ${message}`),
                state.suspend(
                  new ExecutionYielded({
                    executionId: state.executionId,
                    workflow: state.workflow,
                    detail: message
                  })
                )
              )
            }
            const backoff = Effect.andThen(
              Effect.sleep(delayAfter(policy, attempt)),
              attemptNumber(attempt + 1)
            )
            return state.telemetry
              ? Effect.andThen(Instrument.retried(state.workflow, definition.id), backoff)
              : backoff
          }
        }
        return recordOutcome(state, start, schema, exit, "activity")
      })
    )
  }
  return counted(state, attemptNumber((recorded?.attempt ?? 0) + 1))
}

const millisOf = (duration: Duration.Input | undefined): number | undefined =>
  duration === undefined ? undefined : Duration.toMillis(Duration.fromInputUnsafe(duration))

const shouldRetry = (policy: ResolvedRetryPolicy, cause: Cause.Cause<unknown>, attempt: number): boolean => {
  if (attempt >= policy.maxAttempts) return false
  const error = Cause.findErrorOption(cause)
  return Option.isNone(error) || policy.retryWhile(error.value)
}
