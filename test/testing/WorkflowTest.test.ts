/**
 * The test kit: workflows that wait for days are tested on `TestClock` in no real time, and the
 * time skipped costs one wake-up of the engine's timer, not one per poll interval.
 */
import { describe, expect, it } from "@effect/vitest"
import { Clock, Effect, Fiber, Option, Schema } from "effect"
import { Activity, MemoryJournal, Signal, Workflow, WorkflowTest } from "../../src/index.ts"
import { Calls } from "../workflow/fixtures.ts"

class Job extends Workflow.TaggedRequest<Job>()("Job", {
  payload: { id: Schema.String },
  success: Schema.String,
  failure: Schema.Never
}) {}

class Unavailable extends Schema.TaggedError<Unavailable>()("Unavailable", {}) {}

const approval = Signal.make("approval", Schema.String)

describe("WorkflowTest", () => {
  it.effect("a 30-day sleep completes when the clock is advanced 31 days, not before", () =>
    Effect.gen(function* () {
      const calls = new Calls()
      const workflow = Workflow.make(
        Job,
        (r) => `remind@${r.id}`,
        ({ id }) => Effect.andThen(Workflow.sleep("30 days"), calls.activity("remind", Schema.String, id))
      )
      const engine = yield* WorkflowTest.makeEngine(workflow)
      const fiber = yield* Effect.forkChild(engine.send(new Job({ id: "r-1" })))
      yield* WorkflowTest.advance("29 days")
      expect(calls.count("remind")).toBe(0)
      const info = yield* engine.status("remind@r-1")
      expect(Option.map(info, (i) => i.status)).toEqual(Option.some("sleeping"))
      expect(engine.runningCount()).toBe(0)
      yield* WorkflowTest.advance("2 days")
      expect(yield* Fiber.join(fiber)).toBe("r-1")
      expect(calls.count("remind")).toBe(1)
    }).pipe(Effect.scoped)
  )

  it.effect("the engine's timer wakes once for a skipped month, not once per poll interval", () =>
    Effect.gen(function* () {
      let listings = 0
      const workflow = Workflow.make(
        Job,
        (r) => `month@${r.id}`,
        ({ id }) => Effect.as(Workflow.sleep("30 days"), id)
      )
      const journal = yield* MemoryJournal.make
      // The timer's journal queries, counted.
      const counting = {
        ...journal,
        listDue: (now: number, limit: number) =>
          Effect.andThen(
            Effect.sync(() => listings++),
            journal.listDue(now, limit)
          )
      }
      const second = yield* WorkflowTest.makeEngine(workflow, { journal: counting })
      const result = yield* WorkflowTest.within("31 days", second.send(new Job({ id: "m-1" })))
      expect(result).toBe("m-1")
      // A 1-second poll would have listed 2.6 million times.
      expect(listings).toBeLessThan(10)
    }).pipe(Effect.scoped)
  )

  it.effect("a signal wait with a 7-day timeout: none after 7 days; the value when sent in time", () =>
    Effect.gen(function* () {
      const workflow = Workflow.make(
        Job,
        (r) => `approve@${r.id}`,
        () =>
          Effect.map(
            Signal.receive(approval, { timeout: "7 days" }),
            Option.getOrElse(() => "timed out")
          )
      )
      const engine = yield* WorkflowTest.makeEngine(workflow)
      expect(yield* WorkflowTest.within("8 days", engine.send(new Job({ id: "late" })))).toBe("timed out")

      const fiber = yield* Effect.forkChild(engine.send(new Job({ id: "on-time" })))
      yield* WorkflowTest.advance("3 days")
      expect(yield* engine.signal("approve@on-time", approval, "approved by ops")).toBe(true)
      yield* WorkflowTest.advance("1 second")
      expect(yield* Fiber.join(fiber)).toBe("approved by ops")
    }).pipe(Effect.scoped)
  )

  it.effect("an activity that fails for an hour is retried with backoff until it succeeds", () =>
    Effect.gen(function* () {
      const started = yield* Clock.currentTimeMillis
      const attempts: Array<number> = []
      const flaky = Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        attempts.push(now - started)
        if (now - started < 60 * 60 * 1000) return yield* new Unavailable()
        return "charged"
      }).pipe(Activity.make("charge", Schema.String, Unavailable))
      const workflow = Workflow.make(
        Job,
        (r) => `retry@${r.id}`,
        () => Effect.orDie(flaky)
      )
      const engine = yield* WorkflowTest.makeEngine(workflow, {
        retry: { initialDelay: "1 minute", factor: 2, maxDelay: "10 minutes", maxAttempts: 50 }
      })
      expect(yield* WorkflowTest.within("2 hours", engine.send(new Job({ id: "r" })))).toBe("charged")
      // 1, 2, 4, 8 minutes, then every 10 minutes until the hour has passed.
      expect(attempts.slice(0, 5)).toEqual([0, 60_000, 180_000, 420_000, 900_000])
      expect(attempts.length).toBeGreaterThan(8)
      const history = yield* engine.history("retry@r")
      expect(history.steps[0]?.failedAttempts.length).toBe(attempts.length - 1)
    }).pipe(Effect.scoped)
  )

  it.effect("a second engine on the same journal resumes a sleeping execution (a restart)", () =>
    Effect.gen(function* () {
      const calls = new Calls()
      const workflow = Workflow.make(
        Job,
        (r) => `restart@${r.id}`,
        ({ id }) =>
          Effect.gen(function* () {
            yield* calls.activity("before", Schema.String, id)
            yield* Workflow.sleep("2 days")
            return yield* calls.activity("after", Schema.String, `${id} done`)
          })
      )
      const journal = yield* Effect.scoped(
        Effect.gen(function* () {
          const first = yield* WorkflowTest.makeEngine(workflow)
          yield* first.sendDiscard(new Job({ id: "x" }))
          yield* WorkflowTest.advance("1 hour")
          return first.journal
        })
      )
      const second = yield* WorkflowTest.makeEngine(workflow, { journal })
      expect(yield* WorkflowTest.within("2 days", second.send(new Job({ id: "x" })))).toBe("x done")
      expect(calls.count("before")).toBe(1)
      expect(calls.count("after")).toBe(1)
    }).pipe(Effect.scoped)
  )
})
