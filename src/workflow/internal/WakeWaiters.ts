/**
 * Callers of `send` waiting for a sleeping execution to wake. The timer (or a signal) wakes the
 * execution and tells its waiters, who then read the row again; when the engine stops they are
 * interrupted.
 */
import { Deferred, Effect, Exit, Option } from "effect"
import type { JournalError } from "../WorkflowErrors.ts"
import type { RunJournal } from "./FencedJournal.ts"

export class WakeWaiters {
  private readonly waiters = new Map<string, Deferred.Deferred<boolean>>()
  private stopped = false

  private readonly journal: RunJournal

  constructor(journal: RunJournal) {
    this.journal = journal
  }

  /** Waits until `executionId` wakes (or is no longer sleeping); interrupted when the engine stops. */
  wait(executionId: string): Effect.Effect<void, JournalError> {
    return Effect.suspend(() => {
      if (this.stopped) return Effect.interrupt
      let waiter = this.waiters.get(executionId)
      if (waiter === undefined) {
        waiter = Deferred.makeUnsafe<boolean>()
        this.waiters.set(executionId, waiter)
      }
      const registered = waiter
      // Registered first, then read: a wake between the caller's read and the registration is
      // not missed (the row is no longer sleeping, or the wake completes the waiter).
      return Effect.flatMap(this.journal.get(executionId), (row) =>
        Option.isSome(row) && row.value.status === "sleeping"
          ? Effect.flatMap(Deferred.await(registered), (woke) => (woke ? Effect.void : Effect.interrupt))
          : Effect.void
      )
    })
  }

  /** `executionId` woke (or may have: its waiters read it again). */
  woke(executionId: string): void {
    const waiter = this.waiters.get(executionId)
    if (waiter === undefined) return
    this.waiters.delete(executionId)
    Deferred.doneUnsafe(waiter, Exit.succeed(true))
  }

  /** The engine stops: every waiter is interrupted, and later ones at once. */
  stop(): void {
    this.stopped = true
    for (const waiter of this.waiters.values()) Deferred.doneUnsafe(waiter, Exit.succeed(false))
    this.waiters.clear()
  }
}
