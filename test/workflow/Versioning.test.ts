/**
 * Workflow.version: a change to a workflow with executions running. Executions recorded before
 * the change keep their path (0, nothing recorded, their replay still matches); executions that
 * reach the check for the first time record the current version and follow the new path.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { Activity, MemoryJournal, Workflow, WorkflowTest } from "../../src/index.ts"

class Order extends Workflow.TaggedRequest<Order>()("Order", {
  payload: { id: Schema.String },
  success: Schema.String,
  failure: Schema.Never
}) {}

/** v1: pay, email, ship. v2: pay, then ship before the email, behind Workflow.version. */
const order = (release: 1 | 2, ran: Array<string>, block?: string) => {
  const step = (id: string) =>
    Effect.suspend(() => {
      ran.push(id)
      return id === block ? Effect.never : Effect.succeed(id)
    }).pipe(Activity.make(id, Schema.String, Schema.Never))
  return Workflow.make(
    Order,
    (r) => `order@${r.id}`,
    () =>
      Effect.gen(function* () {
        yield* step("pay")
        const v = release === 2 ? yield* Workflow.version("ship-before-email", 1) : 0
        const path =
          v >= 1 ? [yield* step("ship"), yield* step("email")] : [yield* step("email"), yield* step("ship")]
        return `v${v}: ${path.join(", ")}`
      })
  )
}

/** Runs v1 until `block` hangs and exports the execution. */
const recordedByV1 = (block: string) =>
  Effect.gen(function* () {
    const engine = yield* WorkflowTest.makeEngine(order(1, [], block))
    yield* engine.sendDiscard(new Order({ id: "1" }))
    yield* WorkflowTest.advance("1 second")
    return yield* engine.exportJournal("order@1")
  }).pipe(Effect.scoped)

describe("Workflow.version", () => {
  it.effect("without the check, v2's reordering breaks an execution that v1 left in the email", () =>
    Effect.gen(function* () {
      const journal = yield* recordedByV1("email")
      const unversioned = Workflow.make(
        Order,
        (r) => `order@${r.id}`,
        () =>
          Effect.succeed("x").pipe(
            Activity.make("pay", Schema.String, Schema.Never),
            Effect.andThen(Effect.succeed("x").pipe(Activity.make("ship", Schema.String, Schema.Never)))
          )
      )
      const error = yield* Effect.flip(WorkflowTest.replay(unversioned, journal))
      expect(error._tag).toBe("NonDeterminismError")
    })
  )

  it.effect(
    "an execution recorded by v1 past the check replays with version 0 and resumes on v1's path",
    () =>
      Effect.gen(function* () {
        const journal = yield* recordedByV1("email")
        const ran: Array<string> = []
        expect((yield* WorkflowTest.replay(order(2, ran), journal)).ended).toBe("frontier")
        expect(ran).toEqual([])
        // Resumed by v2 code: the email (started by v1) runs again, then ship; no version recorded.
        const engine = yield* WorkflowTest.makeEngine(order(2, ran), {
          journal: yield* importJournal(journal)
        })
        expect(yield* engine.send(new Order({ id: "1" }))).toBe("v0: email, ship")
        expect(ran).toEqual(["email", "ship"])
        const keys = (yield* engine.history("order@1")).steps.map((s) => s.stepKey)
        expect(keys).toEqual(["pay", "email", "ship"])
      }).pipe(Effect.scoped)
  )

  it.effect("an execution v1 left before the check records version 1 and takes the new path", () =>
    Effect.gen(function* () {
      const journal = yield* recordedByV1("pay")
      const ran: Array<string> = []
      const engine = yield* WorkflowTest.makeEngine(order(2, ran), {
        journal: yield* importJournal(journal)
      })
      expect(yield* engine.send(new Order({ id: "1" }))).toBe("v1: ship, email")
      const exported = yield* engine.exportJournal("order@1")
      expect(exported.steps.map((s) => s.stepKey)).toEqual([
        "pay",
        "effect-cluster/version/ship-before-email",
        "ship",
        "email"
      ])
      // Its journal replays with v2, and keeps the recorded version even if `current` moves on.
      expect((yield* WorkflowTest.replay(order(2, []), exported)).ended).toBe("completed")
    }).pipe(Effect.scoped)
  )

  it.effect("a new execution records the current version; a replay of it returns that version", () =>
    Effect.gen(function* () {
      const ran: Array<string> = []
      const engine = yield* WorkflowTest.makeEngine(order(2, ran))
      expect(yield* engine.send(new Order({ id: "2" }))).toBe("v1: ship, email")
      const journal = yield* engine.exportJournal("order@2")
      const replayRan: Array<string> = []
      expect((yield* WorkflowTest.replay(order(2, replayRan), journal)).ended).toBe("completed")
      expect(replayRan).toEqual([])
      // v1 code on a v2 history: the recorded version step is not asked for — a divergence.
      const error = yield* Effect.flip(WorkflowTest.replay(order(1, []), journal))
      expect(error._tag).toBe("NonDeterminismError")
    }).pipe(Effect.scoped)
  )
})

const importJournal = (journal: Parameters<typeof WorkflowTest.replay>[1]) =>
  typeof journal === "string"
    ? Effect.die(new Error("a document is expected"))
    : MemoryJournal.fromExport(journal)
