import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Option } from "effect"
import { DurableExecutionJournal, MemoryJournal, WorkflowEngine } from "../../src/index.ts"
import { Calls, ThreeSteps, threeSteps } from "./fixtures.ts"

describe("WorkflowEngine", () => {
  it.live("send runs every activity once and returns the workflow result", () =>
    Effect.gen(function* () {
      const calls = new Calls()
      const engine = yield* WorkflowEngine.makeScoped(threeSteps(calls))
      const result = yield* engine.send(new ThreeSteps({ id: "1" }))
      expect(result).toBe(6)
      expect([calls.count("a"), calls.count("b"), calls.count("c")]).toEqual([1, 1, 1])
      expect(calls.persistenceIds.get("b")).toEqual(["three@1/b"])
      const status = yield* engine.status("three@1")
      expect(Option.map(status, (s) => s.status)).toEqual(Option.some("succeeded"))
    }).pipe(Effect.provide(MemoryJournal.layer))
  )

  it.live("I4: concurrent and repeated sends of one request run the body once", () =>
    Effect.gen(function* () {
      const calls = new Calls()
      const engine = yield* WorkflowEngine.makeScoped(threeSteps(calls))
      const results = yield* Effect.all(
        Array.from({ length: 5 }, () => engine.send(new ThreeSteps({ id: "x" }))),
        { concurrency: "unbounded" }
      )
      expect(results).toEqual([6, 6, 6, 6, 6])
      const again = yield* engine.send(new ThreeSteps({ id: "x" }))
      expect(again).toBe(6)
      expect([calls.count("a"), calls.count("b"), calls.count("c")]).toEqual([1, 1, 1])
    }).pipe(Effect.provide(MemoryJournal.layer))
  )

  it.live("a restarted engine replays recorded activities instead of running them", () =>
    Effect.gen(function* () {
      const journal = yield* MemoryJournal.make
      const calls = new Calls()
      yield* Effect.scoped(
        Effect.gen(function* () {
          const engine = yield* WorkflowEngine.makeScoped(threeSteps(calls))
          expect(yield* engine.send(new ThreeSteps({ id: "r" }))).toBe(6)
        })
      ).pipe(Effect.provideService(DurableExecutionJournal.DurableExecutionJournal, journal))
      const fiber = yield* Effect.scoped(
        Effect.gen(function* () {
          const engine = yield* WorkflowEngine.makeScoped(threeSteps(calls))
          return yield* engine.send(new ThreeSteps({ id: "r" }))
        })
      ).pipe(
        Effect.provideService(DurableExecutionJournal.DurableExecutionJournal, journal),
        Effect.forkChild
      )
      const exit = yield* Fiber.await(fiber)
      expect(exit).toEqual(Exit.succeed(6))
      expect(calls.count("a")).toBe(1)
    })
  )
})
