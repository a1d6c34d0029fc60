/**
 * The mutable state of one run of one execution, shared by the execution runner and the step
 * runner. A run ends when the body completes, the execution suspends, or the engine shuts down.
 */
import { Deferred, Effect, Exit, Fiber } from "effect"
import type { AttemptRecord, StepOutcome } from "../DurableExecutionJournal.ts"
import { type JournalError, NonDeterminismError, type SuspendReason } from "../WorkflowErrors.ts"
import { Frontier } from "./Frontier.ts"
import { describe, type Replay } from "./Replay.ts"

/** A sleep or a signal wait in progress. */
export interface Wait {
  readonly wakeAt: number | null
  readonly signal: string | undefined
}

/** Why a run must stop before the body completes. */
export type StopReason =
  | { readonly _tag: "Suspend"; readonly reason: SuspendReason }
  | { readonly _tag: "Shutdown" }
  | { readonly _tag: "JournalFailed"; readonly error: JournalError }
  /**
   * `Workflow.sleep` or `Signal.receive` parks the execution: the run ends, no fiber waits. The
   * wake-up time and the signals awaited are those of every wait registered in `waits`.
   */
  | { readonly _tag: "Sleep" }
  /** A replay-only run (`WorkflowReplay`) has replayed everything the journal recorded. */
  | { readonly _tag: "Replayed" }

export class ExecutionState {
  /** The first reason to stop the run early; the run's end records it instead of the body's exit. */
  stopReason: StopReason | undefined = undefined
  /** Set once the run is being torn down: no new activity attempt may start. */
  stopping = false
  /**
   * Its shard is being handed over to another pod: attempts in progress may finish and record
   * their outcomes, but the next attempt stops the run instead of starting (see `Runs.drainShard`).
   */
  draining = false
  /** Whether the interruption requested by `WorkflowEngine.interrupt` reached the body fiber. */
  interruptDelivered = false
  bodyFiber: Fiber.Fiber<unknown, unknown> | undefined = undefined
  /**
   * Outcomes delivered to the workflow but not yet written: they are committed with the next
   * write of this execution (the next attempt marker or the final status), which always happens
   * before another activity body starts.
   */
  private pending: Array<StepOutcome> = []
  readonly executionId: string
  readonly workflow: string
  /** Replaced by the runner once the journal of the execution is loaded. */
  replay: Replay
  /** `WorkflowEngine.interrupt` was called for this execution (possibly before a restart). */
  interruptRequested: boolean

  constructor(executionId: string, workflow: string, replay: Replay, interruptRequested: boolean) {
    this.executionId = executionId
    this.workflow = workflow
    this.replay = replay
    this.interruptRequested = interruptRequested
  }

  /**
   * Completed when the latest write that carried outcomes, and every such write before it, has
   * finished: an attempt waits for it before its body runs, so no side effect can happen before an
   * outcome the workflow already acted on is durable.
   */
  outcomesWritten: Deferred.Deferred<void> | undefined = undefined
  /**
   * Whether replay has caught up with the journal (the run asked its first step without a recorded
   * outcome): only then can an interruption be delivered without skipping compensations that the
   * replay has not rebuilt yet.
   */
  caughtUp = false
  /**
   * Completed once the run has loaded its journal (or ended without): resuming a shard waits for
   * a page of runs to load before it starts the next page.
   */
  readonly loaded: Deferred.Deferred<void> = Deferred.makeUnsafe<void>()

  /** Marks the journal as loaded (idempotent). */
  markLoaded(): void {
    Deferred.doneUnsafe(this.loaded, Exit.void)
  }

  /** The row was no longer `running` when the run loaded it: the run ends without writing. */
  stale = false
  /**
   * Activity steps in progress (writing their marker, running, or waiting to retry). A durable
   * sleep parks the whole execution only when none is (otherwise it would interrupt them); it
   * sleeps in memory instead.
   */
  activeAttempts = 0
  /**
   * The waits in progress in this run (sleeps and signal waits, registered when they begin, before
   * any I/O): when the execution parks, it wakes at the earliest deadline among them, or when any
   * of their signals arrives, so a sibling's timeout is never lost.
   */
  readonly waits = new Set<Wait>()

  /**
   * A replay-only run (`WorkflowReplay`): it replays recorded steps and checks determinism, but
   * every fiber that reaches the frontier (a step or wait with nothing recorded) stops there, and
   * the run writes nothing. Once no fiber makes progress any more, the run stops with `Replayed`.
   */
  replayOnly = false
  /** Telemetry is on for this run (read once from its fiber): spans and metrics are made. */
  telemetry = false
  /** Steps asked so far in this run: a replay-only run is over when this stops growing. */
  asks = 0
  /** Holds steps absent from the journal while recorded steps remain unasked (I7). */
  readonly frontier: Frontier = new Frontier(this, {
    stalled: (expected, actual) =>
      this.stopNow({
        _tag: "Suspend",
        reason: new NonDeterminismError({
          executionId: this.executionId,
          workflow: this.workflow,
          expected: describe(expected),
          actual
        })
      }),
    replayed: () => this.stopNow({ _tag: "Replayed" })
  })

  /** Puts back outcomes whose write failed or was interrupted, ahead of newer ones. */
  restorePending(outcomes: ReadonlyArray<StepOutcome>): void {
    if (outcomes.length > 0) this.pending = [...outcomes, ...this.pending]
  }

  private failedAttempts: Array<AttemptRecord> = []

  /** Queues a failed (retried) attempt for the next write, for the history. */
  addFailedAttempt(attempt: AttemptRecord): void {
    this.failedAttempts.push(attempt)
  }

  /** Takes the queued failed attempts (the caller writes them; gives them back if it fails). */
  takeFailedAttempts(): ReadonlyArray<AttemptRecord> {
    const taken = this.failedAttempts
    this.failedAttempts = []
    return taken
  }

  restoreFailedAttempts(attempts: ReadonlyArray<AttemptRecord>): void {
    if (attempts.length > 0) this.failedAttempts = [...attempts, ...this.failedAttempts]
  }

  /** Queues an outcome for the next write. */
  addPending(outcome: StepOutcome): void {
    this.pending.push(outcome)
  }

  /** Takes the queued outcomes (the caller writes them). */
  takePending(): ReadonlyArray<StepOutcome> {
    const taken = this.pending
    this.pending = []
    return taken
  }

  /**
   * Stops the run with `reason`: interrupts the body fiber from outside and interrupts the
   * caller (which may be a finalizer, where waiting forever would hang the teardown).
   */
  halt(reason: StopReason): Effect.Effect<never> {
    return Effect.suspend(() => {
      this.stopNow(reason)
      return Effect.interrupt
    })
  }

  /** Records the first reason to stop and interrupts the body fiber (asynchronously). */
  stopNow(reason: StopReason): void {
    if (this.stopReason !== undefined) return
    this.stopReason = reason
    this.stopping = true
    const fiber = this.bodyFiber
    if (fiber !== undefined) Effect.runFork(Fiber.interrupt(fiber))
  }

  /**
   * In a replay-only run, a fiber that reached the frontier waits here for good; the run stops
   * once no fiber makes progress any more (see `Frontier`).
   */
  atFrontier(): Effect.Effect<never> {
    return this.frontier.reachedFrontier()
  }

  /** Suspends the execution with `reason`. */
  suspend(reason: SuspendReason): Effect.Effect<never> {
    return this.halt({ _tag: "Suspend", reason })
  }

  /**
   * Interrupts the body fiber from outside, so its finalizers and compensations run. Called when
   * an interruption was requested; a step calling it waits to be interrupted with its fiber.
   */
  deliverInterrupt(): Effect.Effect<void> {
    return Effect.suspend(() => {
      const fiber = this.bodyFiber
      if (this.interruptDelivered || fiber === undefined) return Effect.void
      this.interruptDelivered = true
      return Effect.forkDetach(Effect.interruptible(Fiber.interrupt(fiber))).pipe(Effect.asVoid)
    })
  }
}
