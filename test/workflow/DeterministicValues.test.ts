/** Workflow.now / Workflow.random / Workflow.randomInt: recorded, seeded, in range. */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { MemoryJournal, Workflow } from "../../src/index.ts"
import { seededRandom } from "../../src/workflow/internal/seededRandom.ts"
import { withEngine } from "./fixtures.ts"

class Draw extends Workflow.TaggedRequest<Draw>()("Draw", {
  payload: { id: Schema.String, count: Schema.Number },
  success: Schema.Array(Schema.Number),
  failure: Schema.Never
}) {}

const draws = (pick: Effect.Effect<number, never, any>) =>
  Workflow.make(
    Draw,
    (r) => `draw@${r.id}`,
    ({ count }) => Effect.forEach(Array.from({ length: count }), () => pick)
  )

const run = (workflow: ReturnType<typeof draws>, id: string, count: number) =>
  Effect.flatMap(MemoryJournal.make, (journal) =>
    withEngine(journal, workflow, (engine) => engine.send(new Draw({ id, count })))
  )

describe("deterministic values", () => {
  it.live("random is seeded by the execution: same id, same numbers, even in a fresh journal", () =>
    Effect.gen(function* () {
      const first = yield* run(draws(Workflow.random), "a", 50)
      const again = yield* run(draws(Workflow.random), "a", 50)
      const other = yield* run(draws(Workflow.random), "b", 50)
      expect(again).toEqual(first)
      expect(other).not.toEqual(first)
      expect(new Set(first).size).toBe(50)
    })
  )

  it.live("randomInt stays within its bounds and reaches both", () =>
    Effect.gen(function* () {
      const values = yield* run(draws(Workflow.randomInt(1, 6)), "dice", 600)
      expect(values.every((v) => Number.isInteger(v) && v >= 1 && v <= 6)).toBe(true)
      expect(new Set(values)).toEqual(new Set([1, 2, 3, 4, 5, 6]))
    })
  )

  it("seededRandom is uniform enough and in [0, 1)", () => {
    const values = Array.from({ length: 20_000 }, (_, i) => seededRandom(`exec/${i}`))
    expect(values.every((v) => v >= 0 && v < 1)).toBe(true)
    const mean = values.reduce((a, b) => a + b, 0) / values.length
    expect(mean).toBeGreaterThan(0.49)
    expect(mean).toBeLessThan(0.51)
    const buckets = Array.from(
      { length: 10 },
      (_, b) => values.filter((v) => Math.floor(v * 10) === b).length
    )
    for (const count of buckets) expect(Math.abs(count - 2000)).toBeLessThan(200)
  })
})
