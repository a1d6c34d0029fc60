/**
 * Admission control of an engine: at most `permits` starts are admitted at once (stored, their run
 * started and its journal loaded); the callers beyond wait in arrival order, each holding only its
 * place in the queue. When callers `send` faster than the pod can load their executions (clients
 * retrying after an outage), they are back-pressured here instead of each holding a run, its
 * journal and its writes in memory at once, and the pod's work per turn of the event loop stays
 * bounded (its lease renewals keep running).
 *
 * A queue of its own rather than effect's `Semaphore`: a release there looks at every waiter,
 * which is quadratic with tens of thousands of callers waiting.
 */
import { Effect } from "effect"

interface Waiter {
  readonly resume: (effect: Effect.Effect<void>) => void
  cancelled: boolean
}

export class Admission {
  private free: number
  private queue: Array<Waiter> = []
  private head = 0

  constructor(permits: number) {
    this.free = permits
  }

  /** Callers waiting for admission now. */
  get waiting(): number {
    return this.queue.length - this.head
  }

  /** Runs `effect` once admitted, and gives the place to the next caller when it ends. */
  admit<A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> {
    return Effect.uninterruptibleMask((restore) =>
      Effect.flatMap(restore(this.acquire()), () =>
        Effect.ensuring(
          restore(effect),
          Effect.sync(() => this.release())
        )
      )
    )
  }

  private acquire(): Effect.Effect<void> {
    return Effect.suspend(() => {
      if (this.free > 0 && this.waiting === 0) {
        this.free--
        return Effect.void
      }
      return Effect.callback<void>((resume) => {
        const waiter: Waiter = { resume, cancelled: false }
        this.queue.push(waiter)
        // Interrupted while waiting: its place is skipped (a permit it was handed is passed on).
        return Effect.sync(() => {
          waiter.cancelled = true
        })
      })
    })
  }

  private release(): void {
    while (this.head < this.queue.length) {
      const next = this.queue[this.head]!
      this.head++
      if (this.head > 1024 && this.head * 2 > this.queue.length) {
        this.queue = this.queue.slice(this.head)
        this.head = 0
      }
      if (next.cancelled) continue
      // The permit passes straight to the next caller.
      next.resume(Effect.void)
      return
    }
    this.free++
  }
}
