/**
 * Effect semantics are durable: each workflow runs until a gate activity blocks, the engine shuts
 * down, and a new engine replays the journal. Nothing recorded may run again and the result must
 * be the one the uninterrupted program computes.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { Activity, MemoryJournal, Workflow } from "../../src/index.ts"
import { Calls, fastRetry, OutOfStockError, untilStep, withEngine } from "./fixtures.ts"

class Order extends Workflow.TaggedRequest<Order>()("Order", {
  payload: { id: Schema.String },
  success: Schema.String,
  failure: OutOfStockError
}) {}

/** Blocks on the first run (engine 1) and passes on the replay (engine 2). */
const makeGate = () => {
  let open = false
  return {
    open: () => {
      open = true
    },
    gate: Effect.suspend(() => (open ? Effect.void : Effect.never)).pipe(
      Activity.make("gate", Schema.Void, Schema.Never)
    )
  }
}

const replayAcrossRestart = (
  id: string,
  body: (calls: Calls, gate: Effect.Effect<void, never, any>) => Effect.Effect<string, OutOfStockError, any>
) =>
  Effect.gen(function* () {
    const journal = yield* MemoryJournal.make
    const calls = new Calls()
    const { open, gate } = makeGate()
    const workflow = Workflow.make(
      Order,
      (r) => `order@${r.id}`,
      () => body(calls, gate)
    )
    // The first engine runs until the execution waits at the gate (its attempt is recorded), then
    // stops: whatever a loaded machine's pace, everything before the gate has run by then.
    const atGate = untilStep(journal, `order@${id}`, "gate")
    yield* withEngine(
      journal,
      workflow,
      (e) => Effect.andThen(e.sendDiscard(new Order({ id })), atGate),
      fastRetry
    )
    const before = new Map(calls.counts)
    const recorded = (yield* journal.steps(`order@${id}`)).filter((step) => step.outcome !== null)
    expect(recorded.length).toBeGreaterThan(0)
    open()
    const result = yield* withEngine(journal, workflow, (e) => e.send(new Order({ id })), fastRetry)
    // Activities whose outcome was recorded before the restart never run again (I1).
    for (const { activityId } of recorded) {
      expect([activityId, calls.count(activityId)]).toEqual([activityId, before.get(activityId)])
    }
    return { result, calls }
  })

describe("durable Effect semantics", () => {
  it.live("catchTag: the refund compensation runs once, the charge is not repeated", () =>
    Effect.gen(function* () {
      const { result, calls } = yield* replayAcrossRestart("catch", (calls, gate) =>
        calls.activity("charge", Schema.Number, 42).pipe(
          Effect.andThen(
            calls
              .tracked("ship", Effect.fail(new OutOfStockError({ sku: "A1" })))
              .pipe(Activity.make("ship", Schema.String, OutOfStockError, { retry: { maxAttempts: 1 } }))
          ),
          Effect.catchTag("OutOfStockError", () =>
            Effect.andThen(gate, calls.activity("refund", Schema.String, "refunded"))
          )
        )
      )
      expect(result).toBe("refunded")
      expect([calls.count("charge"), calls.count("ship"), calls.count("refund")]).toEqual([1, 1, 1])
    })
  )

  it.live("Effect.retry around a group re-runs the group as new steps, and replays every iteration", () =>
    Effect.gen(function* () {
      let failures = 0
      const { result, calls } = yield* replayAcrossRestart("retry", (calls, gate) =>
        Effect.gen(function* () {
          yield* calls.activity("reserve", Schema.Number, 1)
          return yield* calls
            .tracked(
              "pay",
              Effect.suspend(() =>
                failures++ < 2 ? Effect.fail(new OutOfStockError({ sku: "B" })) : Effect.succeed("paid")
              )
            )
            .pipe(Activity.make("pay", Schema.String, OutOfStockError, { retry: { maxAttempts: 1 } }))
        }).pipe(
          Effect.retry({ times: 3 }),
          Effect.tap(() => gate)
        )
      )
      expect(result).toBe("paid")
      expect([calls.count("reserve"), calls.count("pay")]).toEqual([3, 3])
      expect(calls.persistenceIds.get("pay")).toEqual([
        "order@retry/pay",
        "order@retry/pay#2",
        "order@retry/pay#3"
      ])
    })
  )

  it.live("Effect.forEach with concurrency replays every item without re-running it", () =>
    Effect.gen(function* () {
      const { result, calls } = yield* replayAcrossRestart("forEach", (calls, gate) =>
        Effect.forEach([1, 2, 3, 4, 5, 6], (n) => calls.activity(`item-${n}`, Schema.Number, n * 10), {
          concurrency: 3
        }).pipe(
          Effect.tap(() => gate),
          Effect.map((values) => values.join(","))
        )
      )
      expect(result).toBe("10,20,30,40,50,60")
      for (let n = 1; n <= 6; n++) expect(calls.count(`item-${n}`)).toBe(1)
    })
  )

  it.live("Effect.race keeps the recorded winner on replay", () =>
    Effect.gen(function* () {
      const { result, calls } = yield* replayAcrossRestart("race", (calls, gate) =>
        Effect.race(
          calls.tracked("slow", Effect.never).pipe(Activity.make("slow", Schema.String, Schema.Never)),
          calls.activity("fast", Schema.String, "fast won")
        ).pipe(Effect.tap(() => gate))
      )
      expect(result).toBe("fast won")
      expect(calls.count("fast")).toBe(1)
      // The loser recorded nothing, so the replayed race may start it again; it still loses.
      expect(calls.count("slow")).toBeGreaterThanOrEqual(1)
    })
  )

  it.live("concurrent branches with their own sequences replay in any completion order", () =>
    Effect.gen(function* () {
      const { result, calls } = yield* replayAcrossRestart("branches", (calls, gate) =>
        Effect.all(
          [
            Effect.gen(function* () {
              const a1 = yield* calls
                .tracked("a1", Effect.as(Effect.sleep("20 millis"), 1))
                .pipe(Activity.make("a1", Schema.Number, Schema.Never))
              return yield* calls.activity("a2", Schema.Number, a1 + 1)
            }),
            calls
              .tracked("b", Effect.as(Effect.sleep("2 millis"), 10))
              .pipe(Activity.make("b", Schema.Number, Schema.Never))
          ],
          { concurrency: "unbounded" }
        ).pipe(
          Effect.tap(() => gate),
          Effect.map(([a, b]) => `${a + b}`)
        )
      )
      expect(result).toBe("12")
      expect([calls.count("a1"), calls.count("a2"), calls.count("b")]).toEqual([1, 1, 1])
    })
  )

  it.live("a fail-fast Effect.all whose sibling was cut off replays into its compensation", () =>
    Effect.gen(function* () {
      const { result, calls } = yield* replayAcrossRestart("failfast", (calls, gate) =>
        Effect.all(
          [
            calls
              .tracked(
                "reserve",
                Effect.andThen(Effect.sleep("10 millis"), Effect.fail(new OutOfStockError({ sku: "Z" })))
              )
              .pipe(Activity.make("reserve", Schema.Number, OutOfStockError, { retry: { maxAttempts: 1 } })),
            calls.activity("quote", Schema.Number, 2)
          ],
          { concurrency: "unbounded" }
        ).pipe(
          Effect.as("reserved"),
          Effect.catchTag("OutOfStockError", () =>
            Effect.andThen(gate, calls.activity("apologize", Schema.String, "sorry"))
          )
        )
      )
      expect(result).toBe("sorry")
      expect([calls.count("reserve"), calls.count("quote"), calls.count("apologize")]).toEqual([1, 1, 1])
    })
  )
})
