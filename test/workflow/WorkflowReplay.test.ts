/**
 * Journal replay for safe upgrades: an execution exported from a running engine is replayed
 * against changed code without running any activity, and a change that would break it fails with
 * the error it would be suspended with after the deploy.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import {
  Activity,
  DurableExecutionJournal,
  JournalExport,
  Workflow,
  WorkflowReplay,
  WorkflowTest
} from "../../src/index.ts"

class Order extends Workflow.TaggedRequest<Order>()("Order", {
  payload: { id: Schema.String },
  success: Schema.String,
  failure: Schema.Never
}) {}

/** Activities that log their runs; `block` makes one wait forever (an execution in progress). */
const make = (ran: Array<string>, block?: string) => {
  const step = <A>(id: string, schema: Schema.Codec<A, any, never, never>, value: A) =>
    Effect.suspend(() => {
      ran.push(id)
      return id === block ? Effect.never : Effect.succeed(value)
    }).pipe(Activity.make(id, schema, Schema.Never))
  return { step }
}

type Version = "v1" | "reordered" | "removed" | "added-after" | "schema-changed" | "branches"

const order = (ran: Array<string>, version: Version, block?: string) => {
  const { step } = make(ran, block)
  return Workflow.make(
    Order,
    (r) => `order@${r.id}`,
    ({ id }) =>
      Effect.gen(function* () {
        switch (version) {
          case "v1":
          case "added-after": {
            const total = yield* step("total", Schema.Number, 42)
            yield* step("charge", Schema.String, `charged ${total}`)
            const tracking = yield* step("ship", Schema.String, `track-${id}`)
            if (version === "added-after") yield* step("survey", Schema.String, "sent")
            return tracking
          }
          case "reordered": {
            yield* step("charge", Schema.String, "charged")
            yield* step("total", Schema.Number, 42)
            return yield* step("ship", Schema.String, `track-${id}`)
          }
          case "removed": {
            yield* step("total", Schema.Number, 42)
            return yield* step("ship", Schema.String, `track-${id}`)
          }
          case "schema-changed": {
            const total = yield* step("total", Schema.Struct({ amount: Schema.Number }), { amount: 42 })
            yield* step("charge", Schema.String, `charged ${total.amount}`)
            return yield* step("ship", Schema.String, `track-${id}`)
          }
          case "branches": {
            const [a, b] = yield* Effect.all(
              [
                Effect.andThen(step("a1", Schema.String, "a1"), step("a2", Schema.String, "a2")),
                Effect.andThen(
                  step("b1", Schema.String, "b1"),
                  Effect.andThen(step("b2", Schema.String, "b2"), step("b3", Schema.String, "b3"))
                )
              ],
              { concurrency: "unbounded" }
            )
            return `${a} ${b}`
          }
        }
      })
  )
}

/** Runs `version` until the activity `block` hangs (or to the end), and exports the journal. */
const recordJournal = (version: Version, block?: string) =>
  Effect.gen(function* () {
    const engine = yield* WorkflowTest.makeEngine(order([], version, block))
    yield* engine.sendDiscard(new Order({ id: "o-1" }))
    yield* WorkflowTest.advance("1 second")
    return yield* engine.exportJournal("order@o-1")
  }).pipe(Effect.scoped)

const dirs: Array<string> = []
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
})

describe("journal replay", () => {
  it.effect("the same code replays an execution in progress up to its frontier, running nothing", () =>
    Effect.gen(function* () {
      const journal = yield* recordJournal("v1", "ship")
      expect(journal.steps.map((s) => [s.stepKey, s.outcome === null])).toEqual([
        ["total", false],
        ["charge", false],
        ["ship", true]
      ])
      const ran: Array<string> = []
      const report = yield* WorkflowTest.replay(order(ran, "v1"), journal)
      expect(report).toEqual({
        executionId: "order@o-1",
        workflow: "Order",
        recordedSteps: 3,
        ended: "frontier"
      })
      expect(ran).toEqual([])
    })
  )

  it.effect("reordered activities fail with NonDeterminismError naming the expected and actual step", () =>
    Effect.gen(function* () {
      const journal = yield* recordJournal("v1", "ship")
      const ran: Array<string> = []
      const error = yield* Effect.flip(WorkflowTest.replay(order(ran, "reordered"), journal))
      expect(error._tag).toBe("NonDeterminismError")
      if (error._tag !== "NonDeterminismError") return
      expect(error.expected).toBe('"total" (recorded step 1)')
      expect(error.actual).toBe('"charge" (recorded step 2)')
      expect(error.executionId).toBe("order@o-1")
      expect(ran).toEqual([])
    })
  )

  it.effect("a removed activity fails; an activity added after the frontier replays", () =>
    Effect.gen(function* () {
      const journal = yield* recordJournal("v1", "ship")
      const removed = yield* Effect.flip(WorkflowTest.replay(order([], "removed"), journal))
      expect(removed._tag).toBe("NonDeterminismError")
      expect(removed.message).toContain('"charge" (recorded step 2)')
      const ran: Array<string> = []
      const added = yield* WorkflowTest.replay(order(ran, "added-after"), journal)
      expect(added.ended).toBe("frontier")
      expect(ran).toEqual([])
    })
  )

  it.effect("a completed execution replays to its end; removing a step fails", () =>
    Effect.gen(function* () {
      const journal = yield* recordJournal("v1")
      expect(journal.execution.status).toBe("succeeded")
      const ran: Array<string> = []
      expect((yield* WorkflowTest.replay(order(ran, "v1"), journal)).ended).toBe("completed")
      const error = yield* Effect.flip(WorkflowTest.replay(order(ran, "removed"), journal))
      expect(error._tag).toBe("NonDeterminismError")
      // A step added after the last recorded one is the new frontier: nothing recorded breaks.
      expect((yield* WorkflowTest.replay(order(ran, "added-after"), journal)).ended).toBe("frontier")
      expect(ran).toEqual([])
    })
  )

  it.effect("a changed activity schema fails with the JournalDecodeError of the recorded value", () =>
    Effect.gen(function* () {
      const journal = yield* recordJournal("v1", "ship")
      const error = yield* Effect.flip(WorkflowTest.replay(order([], "schema-changed"), journal))
      expect(error._tag).toBe("JournalDecodeError")
      if (error._tag !== "JournalDecodeError") return
      expect(error.activity).toBe("total")
    })
  )

  it.effect("concurrent branches: one stops at its frontier while the other replays all it recorded", () =>
    Effect.gen(function* () {
      const journal = yield* recordJournal("branches", "a2")
      // b3's outcome waits for the execution's next write: a2 and b3 are the frontier.
      expect(
        journal.steps.map((s) => `${s.stepKey}:${s.outcome === null ? "started" : "done"}`).sort()
      ).toEqual(["a1:done", "a2:started", "b1:done", "b2:done", "b3:started"])
      const ran: Array<string> = []
      expect((yield* WorkflowTest.replay(order(ran, "branches"), journal)).ended).toBe("frontier")
      expect(ran).toEqual([])
    })
  )

  it.effect("through a file: exported, written, read back and replayed; a bad file names the field", () =>
    Effect.gen(function* () {
      const dir = mkdtempSync(join(tmpdir(), "replay-"))
      dirs.push(dir)
      const file = join(dir, "order-v1.json")
      yield* JournalExport.writeFile(file, yield* recordJournal("v1", "ship"))
      expect((yield* WorkflowTest.replay(order([], "v1"), file)).recordedSteps).toBe(3)

      const bad = join(dir, "bad.json")
      writeFileSync(bad, JSON.stringify({ format: "effect-cluster/execution-journal", version: 2 }))
      const error = yield* Effect.flip(WorkflowTest.replay(order([], "v1"), bad))
      expect(error._tag).toBe("InvalidJournalExportError")
      expect(error.message).toContain(bad)
      expect(error.message).toContain('["version"]')
      const missing = yield* Effect.flip(WorkflowTest.replay(order([], "v1"), join(dir, "missing.json")))
      expect(missing.message).toContain("cannot read it: ENOENT")
    })
  )

  it.effect("WorkflowReplay on a live journal reads only: the execution and its steps are unchanged", () =>
    Effect.gen(function* () {
      const engine = yield* WorkflowTest.makeEngine(order([], "v1", "ship"))
      yield* engine.sendDiscard(new Order({ id: "o-1" }))
      yield* WorkflowTest.advance("1 second")
      const before = yield* engine.exportJournal("order@o-1")
      const error = yield* Effect.flip(
        WorkflowReplay.replay(order([], "reordered"), "order@o-1").pipe(
          Effect.provideService(DurableExecutionJournal.DurableExecutionJournal, engine.journal)
        )
      )
      expect(error._tag).toBe("NonDeterminismError")
      expect(yield* engine.exportJournal("order@o-1")).toEqual(before)
    }).pipe(Effect.scoped)
  )
})
