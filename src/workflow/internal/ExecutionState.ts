/**
 * The mutable state of one run of one execution, shared by the execution runner and the step
 * runner. A run ends when the body completes, the execution suspends, or the engine shuts down.
 */
import { Deferred, Effect, Fiber } from "effect"
import type { SuspendReason } from "../WorkflowErrors.ts"
import type { Replay } from "./Replay.ts"

/** Why a run must stop before the body completes. */
export type StopReason =
  | { readonly _tag: "Suspend"; readonly reason: SuspendReason }
  | { readonly _tag: "Shutdown" }

export class ExecutionState {
  /** Completed once, with the first reason to stop. */
  readonly stop: Deferred.Deferred<StopReason> = Deferred.makeUnsafe<StopReason>()
  /** Set once the run is being torn down: no new activity attempt may start. */
  stopping = false
  /** Whether the interruption requested by `WorkflowEngine.interrupt` reached the body fiber. */
  interruptDelivered = false
  bodyFiber: Fiber.Fiber<unknown, unknown> | undefined = undefined

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

  /** Stops the run with `reason` (the runner then interrupts the body); never returns. */
  halt(reason: StopReason): Effect.Effect<never> {
    return Deferred.succeed(this.stop, reason).pipe(Effect.andThen(Effect.never))
  }

  /** Suspends the execution with `reason`; never returns. */
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
