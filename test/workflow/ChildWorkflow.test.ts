/** Workflow.executeChild: a durable child execution, attached on replay, cancelled with its parent. */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Option, Schema } from "effect"
import { Activity, MemoryJournal, Workflow } from "../../src/index.ts"
import { Calls, withEngine } from "./fixtures.ts"

class Order extends Workflow.TaggedRequest<Order>()("Order", {
  payload: { id: Schema.String },
  success: Schema.String,
  failure: Schema.String
}) {}

class Ship extends Workflow.TaggedRequest<Ship>()("Ship", {
  payload: { orderId: Schema.String, fail: Schema.Boolean },
  success: Schema.String,
  failure: Schema.String
}) {}

const make = (
  calls: Calls,
  options: { readonly fail?: boolean; readonly gate?: Deferred.Deferred<void> } = {}
) => {
  const shipping = Workflow.make(
    Ship,
    (r) => `ship@${r.orderId}`,
    ({ orderId, fail }) =>
      Effect.gen(function* () {
        const label = yield* calls.activity("label", Schema.String, `L-${orderId}`)
        // Blocks (and opens the gate) while `options.gate` is given, passes otherwise.
        yield* Effect.suspend(() =>
          options.gate === undefined
            ? Effect.void
            : Effect.andThen(Deferred.succeed(options.gate, undefined), Effect.never)
        ).pipe(Activity.make("wait-truck", Schema.Void, Schema.Never))
        if (fail) return yield* Effect.fail("no truck")
        return label
      }).pipe(Effect.onInterrupt(() => Effect.asVoid(calls.activity("void-label", Schema.String, "voided"))))
  )
  const order = Workflow.make(
    Order,
    (r) => `order@${r.id}`,
    ({ id }) =>
      Effect.gen(function* () {
        const paid = yield* calls.activity("pay", Schema.String, "paid")
        const label = yield* Workflow.executeChild(
          shipping,
          new Ship({ orderId: id, fail: options.fail ?? false })
        ).pipe(
          Effect.catchTag("ChildCancelledError", (cancelled) =>
            Effect.andThen(
              calls.activity("refund", Schema.String, "refunded"),
              Effect.fail(`shipping cancelled: ${cancelled.childExecutionId}`)
            )
          )
        )
        return `${paid} ${label}`
      })
  )
  return Workflow.union(order, shipping)
}

describe("Workflow.executeChild", () => {
  it.live("runs the child as its own execution and records its result; a replay attaches to it", () =>
    Effect.gen(function* () {
      const journal = yield* MemoryJournal.make
      const calls = new Calls()
      const workflows = make(calls)
      const result = yield* withEngine(journal, workflows, (e) => e.send(new Order({ id: "1" })))
      expect(result).toBe("paid L-1")
      expect(Option.map(yield* journal.get("ship@1"), (row) => row.status)).toEqual(Option.some("succeeded"))
      const steps = (yield* journal.steps("order@1")).map((s) => s.stepKey)
      expect(steps).toEqual(["pay", "effect-cluster/child/ship@1"])
      // Another engine: everything replays, nothing runs again.
      const again = yield* withEngine(journal, workflows, (e) => e.send(new Order({ id: "1" })))
      expect(again).toBe("paid L-1")
      expect([calls.count("pay"), calls.count("label")]).toEqual([1, 1])
    })
  )

  it.live("the child's typed failure is the parent's", () =>
    Effect.gen(function* () {
      const journal = yield* MemoryJournal.make
      const workflows = make(new Calls(), { fail: true })
      const exit = yield* withEngine(journal, workflows, (e) => Effect.exit(e.send(new Order({ id: "2" }))))
      expect(exit).toEqual(Exit.fail("no truck"))
    })
  )

  it.live("a restart while the child runs: both resume, the parent attaches to the same child", () =>
    Effect.gen(function* () {
      const journal = yield* MemoryJournal.make
      const calls = new Calls()
      const gate = yield* Deferred.make<void>()
      yield* withEngine(journal, make(calls, { gate }), (e) =>
        Effect.andThen(e.sendDiscard(new Order({ id: "3" })), Deferred.await(gate))
      )
      const result = yield* withEngine(journal, make(calls), (e) => e.send(new Order({ id: "3" })))
      expect(result).toBe("paid L-3")
      expect([calls.count("pay"), calls.count("label")]).toEqual([1, 1])
    })
  )

  it.live("interrupting the parent interrupts the child, whose compensation runs", () =>
    Effect.gen(function* () {
      const journal = yield* MemoryJournal.make
      const calls = new Calls()
      const gate = yield* Deferred.make<void>()
      yield* withEngine(journal, make(calls, { gate }), (e) =>
        Effect.gen(function* () {
          yield* e.sendDiscard(new Order({ id: "4" }))
          yield* Deferred.await(gate)
          yield* e.interrupt("order@4")
        })
      )
      const status = (id: string) =>
        Effect.map(
          journal.get(id),
          Option.map((row) => row.status)
        )
      expect(yield* status("order@4")).toEqual(Option.some("interrupted"))
      expect(yield* status("ship@4")).toEqual(Option.some("interrupted"))
      expect(calls.count("void-label")).toBe(1)
    })
  )

  it.live(
    "a child interrupted on its own fails the parent with ChildCancelledError, which it can catch",
    () =>
      Effect.gen(function* () {
        const journal = yield* MemoryJournal.make
        const calls = new Calls()
        const gate = yield* Deferred.make<void>()
        const exit = yield* withEngine(journal, make(calls, { gate }), (e) =>
          Effect.gen(function* () {
            const parent = yield* Effect.forkChild(Effect.exit(e.send(new Order({ id: "5" }))))
            yield* Deferred.await(gate)
            yield* e.interrupt("ship@5")
            return yield* Fiber.join(parent)
          })
        )
        // The parent was not interrupted: it caught the cancellation, compensated and failed typed.
        expect(exit).toEqual(Exit.fail("shipping cancelled: ship@5"))
        expect(calls.count("refund")).toBe(1)
        const status = (id: string) =>
          Effect.map(
            journal.get(id),
            Option.map((row) => row.status)
          )
        expect(yield* status("order@5")).toEqual(Option.some("failed"))
        expect(yield* status("ship@5")).toEqual(Option.some("interrupted"))
        // A new engine replays the recorded cancellation: the same failure, nothing runs again.
        const again = yield* withEngine(journal, make(calls), (e) =>
          Effect.exit(e.send(new Order({ id: "5" })))
        )
        expect(again).toEqual(Exit.fail("shipping cancelled: ship@5"))
        expect(calls.count("refund")).toBe(1)
      })
  )
})
