/** I7: replay that diverges from the journal stops the execution with the expected and actual step. */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Option, Schema } from "effect"
import { Activity, MemoryJournal, Workflow } from "../../src/index.ts"
import { Calls, withEngine } from "./fixtures.ts"

class Task extends Workflow.TaggedRequest<Task>()("Task", {
  payload: { id: Schema.String },
  success: Schema.String,
  failure: Schema.Never
}) {}

const gate = (open: boolean) =>
  (open ? Effect.void : Effect.never).pipe(Activity.make("gate", Schema.Void, Schema.Never))

/** Runs `v1` until it blocks, then `v2` on the same journal; returns v2's send exit. */
const runTwoVersions = (
  v1: (calls: Calls) => Effect.Effect<string, never, any>,
  v2: (calls: Calls) => Effect.Effect<string, never, any>
) =>
  Effect.gen(function* () {
    const journal = yield* MemoryJournal.make
    const calls = new Calls()
    const make = (body: (calls: Calls) => Effect.Effect<string, never, any>) =>
      Workflow.make(
        Task,
        () => "task",
        () => body(calls)
      )
    // The first version runs until it waits at its gate (its attempt is recorded), however busy
    // the machine: a fixed wait let a slow run stop before recording all of its history.
    const atGate = Effect.map(journal.steps("task"), (steps) => steps.some((step) => step.stepKey === "gate"))
    yield* withEngine(journal, make(v1), (e) =>
      Effect.andThen(
        e.sendDiscard(new Task({ id: "1" })),
        Effect.repeat(Effect.andThen(Effect.sleep("2 millis"), atGate), {
          until: (reached) => reached,
          times: 2_500
        })
      )
    )
    const stepsBefore = yield* journal.steps("task")
    const exit = yield* Effect.exit(withEngine(journal, make(v2), (e) => e.send(new Task({ id: "1" }))))
    const row = yield* journal.get("task")
    // Nothing recorded is deleted or rewritten by the failed replay.
    expect(yield* journal.steps("task")).toEqual(stepsBefore)
    return { exit, calls, row }
  })

/** The recorded history of the divergence cases: a, b, then a step that blocks. */
const aThenBThenBlock = (calls: Calls) =>
  Effect.gen(function* () {
    yield* calls.activity("a", Schema.Number, 1)
    yield* calls.activity("b", Schema.Number, 2)
    yield* gate(false)
    return "done"
  })

const reasonOf = (exit: Exit.Exit<unknown, unknown>) => {
  if (Exit.isSuccess(exit)) throw new Error("expected the execution to be suspended")
  const error = Exit.findErrorOption(exit)
  if (Option.isNone(error)) throw new Error("expected a typed error")
  const value = error.value as { _tag: string; reason: { _tag: string; expected: string; actual: string } }
  expect(value._tag).toBe("ExecutionSuspendedError")
  return value.reason
}

describe("I7 deterministic replay is checked", () => {
  it.live("activities asked in another order", () =>
    Effect.gen(function* () {
      const { exit, row, calls } = yield* runTwoVersions(
        (calls) =>
          Effect.gen(function* () {
            yield* calls.activity("reserve-stock", Schema.Number, 1)
            yield* calls.activity("charge-card", Schema.Number, 2)
            yield* gate(false)
            return "done"
          }),
        (calls) =>
          Effect.gen(function* () {
            yield* calls.activity("charge-card", Schema.Number, 2)
            yield* calls.activity("reserve-stock", Schema.Number, 1)
            yield* gate(true)
            return "done"
          })
      )
      const reason = reasonOf(exit)
      expect(reason._tag).toBe("NonDeterminismError")
      expect(reason.expected).toContain('"reserve-stock"')
      expect(reason.actual).toContain('"charge-card"')
      expect(Option.map(row, (r) => r.status)).toEqual(Option.some("suspended"))
      expect([calls.count("reserve-stock"), calls.count("charge-card")]).toEqual([1, 1])
    })
  )

  it.live("a recorded activity skipped by the new code", () =>
    Effect.gen(function* () {
      const { exit, calls } = yield* runTwoVersions(aThenBThenBlock, (calls) =>
        Effect.gen(function* () {
          yield* calls.activity("a", Schema.Number, 1)
          yield* calls.activity("c", Schema.Number, 3)
          yield* gate(true)
          return "done"
        })
      )
      const reason = reasonOf(exit)
      expect(reason._tag).toBe("NonDeterminismError")
      expect(reason.expected).toContain('"b"')
      expect(reason.actual).toContain('"c"')
      expect(calls.count("c")).toBe(0)
    })
  )

  it.live("the workflow completing without a recorded activity", () =>
    Effect.gen(function* () {
      const { exit } = yield* runTwoVersions(aThenBThenBlock, (calls) =>
        Effect.as(calls.activity("a", Schema.Number, 1), "done early")
      )
      const reason = reasonOf(exit)
      expect(reason._tag).toBe("NonDeterminismError")
      expect(reason.expected).toContain('"b"')
      expect(reason.actual).toBe("the workflow completed")
    })
  )

  it.live(
    "one activity id reused by concurrent branches replays in the recorded order: no outcome is swapped",
    () =>
      Effect.gen(function* () {
        // Each branch fetches, then processes what it fetched. The fast branch finished first, so
        // its steps got the keys of the first occurrences: replaying outcomes as soon as each is
        // asked would hand the slow branch the fast branch's outcomes (or report a divergence).
        // Recorded outcomes are delivered in the order the first run saw them instead.
        const journal = yield* MemoryJournal.make
        const calls = new Calls()
        const branches = (open: boolean) =>
          Effect.forEach(
            ["slow", "fast"],
            (item) =>
              calls
                .tracked("fetch", Effect.as(Effect.sleep(item === "slow" ? "20 millis" : "1 millis"), item))
                .pipe(
                  Activity.make("fetch", Schema.String, Schema.Never),
                  Effect.flatMap((value) =>
                    calls
                      .tracked("process", Effect.succeed(`processed ${value}`))
                      .pipe(Activity.make("process", Schema.String, Schema.Never))
                  )
                ),
            { concurrency: "unbounded" }
          ).pipe(
            Effect.tap(() => gate(open)),
            Effect.map((values) => values.join(","))
          )
        const make = (open: boolean) =>
          Workflow.make(
            Task,
            () => "task",
            () => branches(open)
          )
        const atGate = Effect.map(journal.steps("task"), (steps) =>
          steps.some((step) => step.stepKey === "gate")
        )
        yield* withEngine(journal, make(false), (e) =>
          Effect.andThen(
            e.sendDiscard(new Task({ id: "1" })),
            Effect.repeat(Effect.andThen(Effect.sleep("2 millis"), atGate), {
              until: (reached) => reached,
              times: 2_500
            })
          )
        )
        const recorded = yield* journal.steps("task")
        // The fast branch asked the first "process": its key belongs to the fast branch's history.
        expect(recorded.find((step) => step.stepKey === "process")?.outcome).toContain("processed fast")
        const result = yield* withEngine(journal, make(true), (e) => e.send(new Task({ id: "1" })))
        expect(result).toBe("processed slow,processed fast")
        // Replayed, not run again.
        expect([calls.count("fetch"), calls.count("process")]).toEqual([2, 2])
      })
  )
})
