/**
 * The heartbeats and timeouts of an activity's attempts: throttled heartbeat writes, the details
 * kept for the next attempt, and the start-to-close and heartbeat timeouts.
 */
import { Cause, Effect, Exit, Fiber } from "effect"
import { ActivityTimeoutError } from "../WorkflowErrors.ts"
import type { ExecutionState } from "./ExecutionState.ts"
import type { StepEnvironment } from "./StepEnvironment.ts"

/**
 * Heartbeats are stored at most this often per step (advisory writes); the latest details are
 * stored within this delay, so a crash loses at most the last second of progress.
 */
const HEARTBEAT_WRITE_MILLIS = 1_000

/**
 * The heartbeats of one step: the latest details (kept for the next attempt), when the running
 * attempt last reported, and throttled writes to the journal.
 */
export class Progress {
  details: string | null
  lastBeat = 0
  private lastWrite = 0
  private readonly env: StepEnvironment
  private readonly state: ExecutionState
  private readonly stepKey: string

  constructor(env: StepEnvironment, state: ExecutionState, stepKey: string, recorded: string | null) {
    this.env = env
    this.state = state
    this.stepKey = stepKey
    this.details = recorded
  }

  now(): number {
    return this.env.now()
  }

  /** An attempt starts: its heartbeat clock starts now; returns what earlier attempts reported. */
  startAttempt(): string | null {
    this.lastBeat = this.env.now()
    return this.details
  }

  readonly beat = (details: string): Effect.Effect<void> =>
    Effect.suspend(() => {
      const now = this.env.now()
      this.details = details
      this.lastBeat = now
      const wait = this.lastWrite + HEARTBEAT_WRITE_MILLIS - now
      if (wait <= 0) return this.store()
      if (this.trailing) return Effect.void
      // Stored at most once a second, but the latest details are always stored within a second.
      this.trailing = true
      return Effect.map(Effect.forkDetach(Effect.andThen(Effect.sleep(wait), this.store())), (fiber) => {
        this.trailingFiber = fiber
      })
    })

  private trailing = false
  private trailingFiber: Fiber.Fiber<void> | undefined = undefined

  /**
   * The attempt ended. A trailing write still waiting is cancelled; if the attempt failed (it will
   * be retried, maybe after a long backoff or a crash), the latest details are stored now. After a
   * success (the outcome follows) or an interruption (a shutdown: the journal may be closing) they
   * are not.
   */
  readonly stop = (exit: Exit.Exit<unknown, unknown>): Effect.Effect<void> =>
    Effect.suspend(() => {
      const fiber = this.trailingFiber
      const pending = this.trailing
      this.trailingFiber = undefined
      this.trailing = false
      const cancel = fiber === undefined ? Effect.void : Fiber.interrupt(fiber)
      const failed = Exit.isFailure(exit) && !Cause.hasInterruptsOnly(exit.cause)
      return pending && failed ? Effect.andThen(cancel, this.store()) : cancel
    })

  private store(): Effect.Effect<void> {
    return Effect.suspend(() => {
      this.trailing = false
      this.lastWrite = this.env.now()
      const details = this.details
      if (details === null) return Effect.void
      return this.env.journal
        .heartbeat({
          executionId: this.state.executionId,
          stepKey: this.stepKey,
          details,
          now: this.lastWrite
        })
        .pipe(Effect.catchCause((cause) => Effect.logWarning("a heartbeat could not be stored", cause)))
    })
  }
}

/** Fails the attempt with `ActivityTimeoutError` when it runs too long or stops heartbeating. */
export const withTimeouts = <A, E, R>(
  run: Effect.Effect<A, E, R>,
  stepKey: string,
  startToClose: number | undefined,
  heartbeatTimeout: number | undefined,
  progress: Progress
): Effect.Effect<A, E, R> => {
  let guarded = run
  if (heartbeatTimeout !== undefined) {
    const watchdog: Effect.Effect<never> = Effect.suspend(() => {
      const left = progress.lastBeat + heartbeatTimeout - progress.now()
      return left <= 0
        ? Effect.die(
            new ActivityTimeoutError({
              activity: stepKey,
              timeout: "heartbeat",
              millis: heartbeatTimeout
            })
          )
        : Effect.andThen(Effect.sleep(left), watchdog)
    })
    guarded = Effect.raceFirst(guarded, watchdog)
  }
  if (startToClose !== undefined) {
    guarded = Effect.timeoutOrElse(guarded, {
      duration: startToClose,
      orElse: () =>
        Effect.die(
          new ActivityTimeoutError({
            activity: stepKey,
            timeout: "start-to-close",
            millis: startToClose
          })
        )
    })
  }
  // Outermost: a timeout is a failure too, and its last details are stored.
  return Effect.onExit(guarded, progress.stop)
}
