/**
 * Keeps code that runs on a lease (a run of an execution, an entity) from going on once the lease
 * lapsed: every time one of its fibers resumes, before its next step runs, the lease is asked
 * whether it still holds; if not, the owner is told (`lapsed`) and the fiber is interrupted right
 * there, so the step never runs.
 *
 * Why this is ordered, not a race: effect 4 resumes a waiting fiber in whatever callback ends its
 * wait — a timer's (`Effect.sleep` → `Clock.sleep` → `setTimeout(() => resume(...))`), a socket's,
 * a `Deferred` completed by another fiber, a task of the scheduler — by calling `fiber.evaluate`
 * synchronously in that callback. Its run loop asks `scheduler.shouldYield(fiber)` before each step
 * it evaluates, the first one included (`currentOpCount === 1`). The fibers of a guarded effect run
 * on a scheduler that answers that question after checking the lease: the check comes before the
 * resumed step whatever woke the fiber, whichever timer Node runs first after the event loop was
 * stalled (a SIGSTOP, a long synchronous block anywhere in the process). The pod's own watchdog is
 * a timer among others: after a stall, the timers of the runs may fire before it.
 *
 * What it does not cover: the code of a guarded fiber that blocks synchronously itself cannot be
 * cut short; after the block the fiber goes on until its next check (its next resumption, or
 * within `CHECK_EVERY` steps). Nor code outside effect's fibers (the callbacks of a promise the
 * code awaits). An uninterruptible region (a finalizer) finishes: the interruption takes effect
 * when it ends. And `Scheduler.PreventSchedulerYield` switches the check off with the yields.
 */
import { Effect, type Fiber, Scheduler } from "effect"

/** A lease as the code running on it sees it. */
export interface Lease {
  /** Whether the lease still holds by the owner's own clock (read on each resumption: keep it cheap). */
  readonly holds: () => boolean
  /** Called (once per fiber that meets it) when a fiber finds the lease lapsed, before it is interrupted. */
  readonly lapsed: () => void
}

/** How often (in steps) a guarded fiber that keeps running without waiting checks the lease again. */
const CHECK_EVERY = 128

/** The scheduler of a guarded effect's fibers: `inner`'s, with the lease checked first. */
class LeaseScheduler implements Scheduler.Scheduler {
  readonly inner: Scheduler.Scheduler
  private readonly lease: Lease
  /** The fibers already interrupted for the lapse (each is interrupted once). */
  private readonly interrupted = new WeakSet<Fiber.Fiber<unknown, unknown>>()

  constructor(inner: Scheduler.Scheduler, lease: Lease) {
    this.inner = inner
    this.lease = lease
  }

  get executionMode(): "sync" | "async" {
    return this.inner.executionMode
  }

  shouldYield(fiber: Fiber.Fiber<unknown, unknown>): boolean {
    const ops = fiber.currentOpCount
    if (
      (ops === 1 || (ops & (CHECK_EVERY - 1)) === 0) &&
      !this.interrupted.has(fiber) &&
      !this.lease.holds()
    ) {
      this.interrupted.add(fiber)
      this.lease.lapsed()
      // The fiber is running: its interruption is deferred to its next step, which is the yield
      // asked for here, evaluated instead of the resumed step (dropped with the rest of the
      // fiber's stack). In an uninterruptible region (a finalizer) the interruption waits for the
      // region's end, and the fiber goes on after this one yield: it is not stopped again.
      fiber.interruptUnsafe()
      return true
    }
    return this.inner.shouldYield(fiber)
  }

  makeDispatcher(): Scheduler.SchedulerDispatcher {
    return this.inner.makeDispatcher()
  }
}

/** The scheduler of the calling fiber, without the lease it may run under. */
const unleased = (fiber: Fiber.Fiber<unknown, unknown>): Scheduler.Scheduler => {
  const current = fiber.getRef(Scheduler.Scheduler)
  return current instanceof LeaseScheduler ? current.inner : current
}

/**
 * `effect` with every fiber it runs (the fibers it forks too) checking `lease` whenever it
 * resumes, before its next step: see the module comment. It answers to `lease` only, not to a
 * lease its caller runs under. The fibers keep the scheduler they would have had otherwise.
 */
export const guard = <A, E, R>(effect: Effect.Effect<A, E, R>, lease: Lease): Effect.Effect<A, E, R> =>
  Effect.withFiber((fiber) =>
    Effect.provideService(effect, Scheduler.Scheduler, new LeaseScheduler(unleased(fiber), lease))
  )

/**
 * `effect` outside any lease its caller runs under: for forking a fiber that belongs to something
 * else (a run started from another run's fiber, as a child workflow is), so that not even its
 * first step answers to the caller's lease.
 */
export const unguarded = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.withFiber((fiber) => {
    const inner = unleased(fiber)
    return inner === fiber.getRef(Scheduler.Scheduler)
      ? effect
      : Effect.provideService(effect, Scheduler.Scheduler, inner)
  })
