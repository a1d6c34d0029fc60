/**
 * The batcher of the entities' outcome reads: callers at about the same time share one read, and
 * the queue never depends on one caller. A caller is an entity's fiber under its shard's lease
 * (`LeaseGuard`): a flush it started must not answer to that lease.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Option, Scheduler, Scope } from "effect"
import * as Batcher from "../../src/internal/Batcher.ts"
import { guard } from "../../src/internal/LeaseGuard.ts"

describe("Batcher", () => {
  it.effect("callers in one tick share one read, each gets its own result", () =>
    Effect.gen(function* () {
      const reads: Array<ReadonlyArray<number>> = []
      const batched = yield* Batcher.make((items: ReadonlyArray<number>) =>
        Effect.sync(() => {
          reads.push(items)
          return items.map((item) => item * 10)
        })
      )
      const results = yield* Effect.all([1, 2, 3].map(batched), { concurrency: "unbounded" })
      expect(results).toEqual([10, 20, 30])
      expect(reads).toEqual([[1, 2, 3]])
    })
  )

  it.live("a caller that asks as a flush ends is answered: no ask waits for the next caller", () =>
    Effect.gen(function* () {
      // A fiber that yields every few steps can stop between the flush loop's last look at the
      // queue and the end that clears its flag: a caller that asks then must still be answered.
      for (const maxOps of [3, 4, 5, 8]) {
        const answered = yield* Effect.gen(function* () {
          const batched = yield* Batcher.make((items: ReadonlyArray<number>) =>
            Effect.succeed(items.map((item) => item * 10))
          )
          let answered = 0
          for (let i = 0; i < 500; i++) {
            yield* batched(i)
            answered++
            yield* Effect.yieldNow
          }
          return answered
        }).pipe(Effect.provideService(Scheduler.MaxOpsBeforeYield, maxOps), Effect.timeoutOption("5 seconds"))
        expect(Option.getOrUndefined(answered), `every ${maxOps} steps`).toBe(500)
      }
    })
  )

  it.live("a caller whose lease lapsed leaves no queue behind: later callers are served", () =>
    Effect.gen(function* () {
      const batched = yield* Batcher.make((items: ReadonlyArray<number>) =>
        Effect.succeed(items.map((item) => item * 10))
      )
      // An entity whose lease has lapsed asks first: it starts the flush, then waits (it is
      // interrupted at its next resumption, as its lease says).
      const lapsed = yield* Effect.forkChild(guard(batched(1), { holds: () => false, lapsed: () => {} }))
      yield* Effect.yieldNow
      // A flush that answered to that lease was interrupted before its first read, with item 1
      // still queued: nobody started another, and this waited for good.
      const next = yield* batched(2).pipe(Effect.timeoutOption("5 seconds"))
      expect(Option.getOrUndefined(next)).toBe(20)
      yield* Fiber.interrupt(lapsed)
    })
  )

  it.live(
    "closing its scope interrupts a flush in progress and its callers; later calls are interrupted",
    () =>
      Effect.gen(function* () {
        const interrupted = Deferred.makeUnsafe<void>()
        const scope = yield* Scope.make()
        // A read that does not answer (a journal retried through an outage).
        const batched = yield* Batcher.make((_: ReadonlyArray<number>) =>
          Effect.never.pipe(Effect.onInterrupt(() => Deferred.succeed(interrupted, undefined)))
        ).pipe(Scope.provide(scope))
        const caller = yield* Effect.forkChild(batched(1))
        const queued = yield* Effect.forkChild(Effect.andThen(Effect.yieldNow, batched(2)))
        yield* Effect.yieldNow
        yield* Effect.yieldNow
        // The close returns without waiting for the read; the read is stopped all the same.
        yield* Scope.close(scope, Exit.void)
        expect(
          Option.isSome(yield* Deferred.await(interrupted).pipe(Effect.timeoutOption("5 seconds")))
        ).toBe(true)
        for (const fiber of [caller, queued]) {
          const exit = yield* Fiber.await(fiber).pipe(Effect.timeoutOption("5 seconds"))
          expect(Option.map(exit, Exit.hasInterrupts)).toEqual(Option.some(true))
        }
        const late = yield* Effect.exit(batched(3))
        expect(Exit.hasInterrupts(late)).toBe(true)
      })
  )
})
