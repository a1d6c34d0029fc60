/**
 * `LeaseGuard` in one process, on the real event loop: a fiber asleep while the loop is blocked
 * synchronously past its lease (a busy loop: what a SIGSTOP looks like to the process once it
 * resumes) never runs the step after its sleep; its timer fires, and the check comes first. The
 * fibers it forks are guarded too, an uninterruptible region finishes before the interruption, a
 * lease that holds changes nothing, and a guarded effect started from a fiber of another lease
 * answers to its own lease only.
 */
import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Exit, Fiber, Scheduler } from "effect"
import * as BudgetScheduler from "../../src/internal/BudgetScheduler.ts"
import * as LeaseGuard from "../../src/internal/LeaseGuard.ts"

/** A lease that lapses at `validUntil` (performance.now()), counting the fibers that met the lapse. */
const leaseUntil = (validUntil: number) => {
  const lease = {
    lapses: 0,
    holds: () => performance.now() < validUntil,
    lapsed: () => {
      lease.lapses++
    }
  }
  return lease
}

/** Blocks the event loop until `until` (performance.now()) has passed. */
const blockUntil = (until: number) => {
  while (performance.now() <= until) {
    // a long synchronous stretch: no timer fires, no socket is read
  }
}

/** Sleeps `millis` and records the step after it, or "stop" if interrupted in the sleep. */
const sleeper = (steps: Array<string>, name: string, millis: number) =>
  Effect.andThen(
    Effect.sleep(millis).pipe(Effect.onInterrupt(() => Effect.sync(() => steps.push(`${name} stop`)))),
    Effect.sync(() => steps.push(`${name} after`))
  )

const isInterruptedOnly = (exit: Exit.Exit<unknown, unknown>) =>
  Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause)

describe("LeaseGuard", () => {
  it("a fiber whose timer fires after the loop was blocked past its lease is interrupted before its next step", async () => {
    const steps: Array<string> = []
    const validUntil = performance.now() + 30
    const lease = leaseUntil(validUntil)
    // The timer is due while the loop is blocked: it fires as soon as the block ends.
    const fiber = Effect.runFork(LeaseGuard.guard(sleeper(steps, "body", 5), lease))
    blockUntil(validUntil + 20)
    const exit = await Effect.runPromise(Fiber.await(fiber))
    expect(steps).toEqual(["body stop"])
    expect(isInterruptedOnly(exit)).toBe(true)
    expect(lease.lapses).toBe(1)
  })

  it("on the BudgetScheduler too, and for the fibers the guarded effect forks", async () => {
    const steps: Array<string> = []
    const validUntil = performance.now() + 30
    const lease = leaseUntil(validUntil)
    const program = Effect.all([sleeper(steps, "first", 5), sleeper(steps, "second", 8)], {
      concurrency: "unbounded"
    })
    const fiber = Effect.runFork(
      LeaseGuard.guard(program, lease).pipe(
        Effect.provideService(Scheduler.Scheduler, BudgetScheduler.shared)
      )
    )
    // Let the forked fibers start (and arm their timers) before blocking.
    await new Promise((resolve) => setImmediate(resolve))
    blockUntil(validUntil + 20)
    const exit = await Effect.runPromise(Fiber.await(fiber))
    expect(steps.filter((step) => step.endsWith("after"))).toEqual([])
    expect(isInterruptedOnly(exit)).toBe(true)
    expect(lease.lapses).toBeGreaterThanOrEqual(1)
  })

  it("an uninterruptible region finishes, then the fiber is interrupted", async () => {
    const steps: Array<string> = []
    const validUntil = performance.now() + 30
    const lease = leaseUntil(validUntil)
    const program = Effect.andThen(
      Effect.uninterruptible(sleeper(steps, "region", 5)),
      Effect.sync(() => steps.push("after the region"))
    )
    const fiber = Effect.runFork(LeaseGuard.guard(program, lease))
    blockUntil(validUntil + 20)
    const exit = await Effect.runPromise(Fiber.await(fiber))
    expect(steps).toEqual(["region after"])
    expect(isInterruptedOnly(exit)).toBe(true)
  })

  it("a lease that holds changes nothing", async () => {
    const steps: Array<string> = []
    const lease = leaseUntil(Number.POSITIVE_INFINITY)
    const exit = await Effect.runPromiseExit(LeaseGuard.guard(sleeper(steps, "body", 5), lease))
    expect(Exit.isSuccess(exit)).toBe(true)
    expect(steps).toEqual(["body after"])
    expect(lease.lapses).toBe(0)
  })

  it("a fiber forked outside its caller's lease answers to its own lease only, from its first step", async () => {
    const steps: Array<string> = []
    const validUntil = performance.now() + 30
    const outer = leaseUntil(validUntil)
    const own = leaseUntil(Number.POSITIVE_INFINITY)
    // As a run started from another run's fiber (a child workflow): with its own lease, or none.
    const fork = (effect: Effect.Effect<unknown>) => LeaseGuard.unguarded(Effect.forkDetach(effect))
    const [first, second] = await Effect.runPromise(
      LeaseGuard.guard(
        Effect.all([fork(LeaseGuard.guard(sleeper(steps, "own", 5), own)), fork(sleeper(steps, "none", 5))]),
        outer
      )
    )
    // The forked fibers have not taken their first step yet: they take it after the block.
    blockUntil(validUntil + 20)
    const exits = await Effect.runPromise(Effect.all([Fiber.await(first), Fiber.await(second)]))
    expect(exits.every(Exit.isSuccess)).toBe(true)
    expect(steps.sort()).toEqual(["none after", "own after"])
    expect(outer.lapses).toBe(0)
  })
})
