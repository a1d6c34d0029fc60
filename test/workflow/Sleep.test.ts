/**
 * Durable sleep with the engine: parked executions hold no fiber, an interruption reaches a
 * parked execution and runs its compensations, and a sleep raced against an activity (a timeout)
 * does not park the execution under the activity.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Option, Schema } from "effect"
import { Activity, MemoryJournal, Signal, Workflow, WorkflowTest } from "../../src/index.ts"
import { awaitStatus, Calls, withEngine } from "./fixtures.ts"

class Job extends Workflow.TaggedRequest<Job>()("Job", {
  payload: { id: Schema.String },
  success: Schema.String,
  failure: Schema.Never
}) {}

describe("Workflow.sleep", () => {
  it.effect("500 sleeping executions hold no fiber; all wake and complete", () =>
    Effect.gen(function* () {
      const calls = new Calls()
      const workflow = Workflow.make(
        Job,
        (r) => `sleepy@${r.id}`,
        ({ id }) =>
          Effect.andThen(Workflow.sleep("1 hour"), calls.activity("after", Schema.String, `done ${id}`))
      )
      const ids = Array.from({ length: 500 }, (_, i) => String(i))
      const engine = yield* WorkflowTest.makeEngine(workflow)
      yield* Effect.forEach(ids, (id) => engine.sendDiscard(new Job({ id })), { discard: true })
      yield* WorkflowTest.advance("1 minute")
      expect(engine.runningCount()).toBe(0)
      expect((yield* engine.journal.listDue(Number.MAX_SAFE_INTEGER, 1_000)).due).toHaveLength(500)
      expect(calls.count("after")).toBe(0)
      const results = yield* WorkflowTest.within(
        "1 hour",
        Effect.forEach(ids, (id) => engine.send(new Job({ id })), { concurrency: "unbounded" })
      )
      expect(results).toEqual(ids.map((id) => `done ${id}`))
      expect(calls.count("after")).toBe(500)
    }).pipe(Effect.scoped)
  )

  it.live("interrupting a parked execution wakes it and runs its compensations", () =>
    Effect.gen(function* () {
      const journal = yield* MemoryJournal.make
      const calls = new Calls()
      const workflow = Workflow.make(
        Job,
        (r) => `reserve@${r.id}`,
        () =>
          Effect.gen(function* () {
            yield* calls.activity("reserve", Schema.String, "reserved")
            yield* Workflow.sleep("1 hour")
            return "kept"
          }).pipe(
            Effect.onInterrupt(() => Effect.asVoid(calls.activity("release", Schema.String, "released")))
          )
      )
      yield* withEngine(journal, workflow, (engine) =>
        Effect.gen(function* () {
          yield* engine.sendDiscard(new Job({ id: "1" }))
          yield* awaitStatus(engine, "reserve@1", "sleeping")
          yield* engine.interrupt("reserve@1")
        })
      )
      expect(Option.map(yield* journal.get("reserve@1"), (row) => row.status)).toEqual(
        Option.some("interrupted")
      )
      expect(calls.count("release")).toBe(1)
      expect(calls.count("reserve")).toBe(1)
    })
  )

  it.live("a timeout raced against an activity does not park the execution under the activity", () =>
    Effect.gen(function* () {
      const journal = yield* MemoryJournal.make
      const calls = new Calls()
      const workflow = Workflow.make(
        Job,
        (r) => `timeout@${r.id}`,
        () =>
          Effect.raceFirst(
            Workflow.sleep("5 seconds").pipe(Effect.as("timed out")),
            calls
              .tracked("fetch", Effect.as(Effect.sleep("200 millis"), "fetched"))
              .pipe(Activity.make("fetch", Schema.String, Schema.Never))
          )
      )
      const result = yield* withEngine(journal, workflow, (engine) => engine.send(new Job({ id: "1" })))
      expect(result).toBe("fetched")
      expect(calls.count("fetch")).toBe(1)
    })
  )

  it.live("interrupting an execution that waits for a signal runs its compensations", () =>
    Effect.gen(function* () {
      const journal = yield* MemoryJournal.make
      const calls = new Calls()
      const approval = Signal.make("approval", Schema.String)
      const workflow = Workflow.make(
        Job,
        (r) => `approval@${r.id}`,
        () =>
          Effect.gen(function* () {
            yield* calls.activity("hold", Schema.String, "held")
            return yield* Signal.receive(approval)
          }).pipe(Effect.onInterrupt(() => Effect.asVoid(calls.activity("unhold", Schema.String, "unheld"))))
      )
      yield* withEngine(journal, workflow, (engine) =>
        Effect.gen(function* () {
          yield* engine.sendDiscard(new Job({ id: "1" }))
          yield* awaitStatus(engine, "approval@1", "sleeping")
          yield* engine.interrupt("approval@1")
          // A signal after the interruption changes nothing.
          yield* engine.signal("approval@1", approval, "too late")
        })
      )
      expect(Option.map(yield* journal.get("approval@1"), (row) => row.status)).toEqual(
        Option.some("interrupted")
      )
      expect([calls.count("hold"), calls.count("unhold")]).toEqual([1, 1])
    })
  )
})
