/**
 * Trace sampling (`Telemetry.sampling`): a share of the executions is traced, chosen by each
 * execution's trace id, so that the choice is the same for every run of it; the others make no
 * span at all, and every execution counts in the metrics.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Schema } from "effect"
import {
  Activity,
  ExecutionTrace,
  MemoryJournal,
  Telemetry,
  TelemetryMetrics,
  Workflow,
  WorkflowEngine
} from "effect-cluster"
import { attr, counterValue, histogramCount, makeSpanCollector } from "./spanCollector.ts"

const A = Telemetry.Attributes
const N = 60

class Sampled extends Workflow.TaggedRequest<Sampled>()("Sampled", {
  payload: { id: Schema.String },
  success: Schema.String,
  failure: Schema.Never
}) {}
const sampledWorkflow = Workflow.make(
  Sampled,
  (request) => `sampled-${request.id}`,
  (request) =>
    Effect.gen(function* () {
      const a = yield* Effect.succeed(request.id).pipe(Activity.make("a", Schema.String, Schema.Never))
      return yield* Effect.succeed(`${a}!`).pipe(Activity.make("b", Schema.String, Schema.Never))
    })
)

/** Runs `N` executions with telemetry on at `rate`; the spans that ended, by name. */
const runAt = (rate: number) =>
  Effect.gen(function* () {
    const collector = makeSpanCollector()
    const series = { workflow: "Sampled" }
    const activity = { workflow: "Sampled", activity: "a", outcome: "succeeded" }
    const run = Effect.gen(function* () {
      const completed = yield* counterValue(TelemetryMetrics.executionsCompleted, series)
      const timed = yield* histogramCount(TelemetryMetrics.activityDuration, activity)
      const engine = yield* WorkflowEngine.makeScoped(sampledWorkflow)
      yield* Effect.forEach(
        Array.from({ length: N }, (_, i) => `${rate}-${i}`),
        (id) => engine.send(new Sampled({ id })),
        { concurrency: 8, discard: true }
      )
      return {
        completed: (yield* counterValue(TelemetryMetrics.executionsCompleted, series)) - completed,
        timed: (yield* histogramCount(TelemetryMetrics.activityDuration, activity)) - timed
      }
    }).pipe(
      Effect.scoped,
      Effect.provide(Layer.mergeAll(MemoryJournal.layer, collector.layer, Telemetry.sampling(rate)))
    )
    const counted = yield* run
    const executionsOf = (name: string) =>
      new Set(
        collector.ended
          .filter((span) => span.name === name)
          .map((span) => attr(span, A.executionId) as string)
      )
    return { counted, executionsOf, ids: Array.from({ length: N }, (_, i) => `sampled-${rate}-${i}`) }
  })

describe("trace sampling", () => {
  it.effect("half of the executions traced, chosen by their trace ids; every one counted", () =>
    Effect.gen(function* () {
      const { counted, executionsOf, ids } = yield* runAt(0.5)
      const expected = new Set(ids.filter((id) => ExecutionTrace.isSampled(id, 0.5)))
      // The sample is neither none nor all of them (60 ids: the chance of either is 2 × 2⁻⁶⁰).
      expect(expected.size).toBeGreaterThan(0)
      expect(expected.size).toBeLessThan(N)
      for (const name of [
        Telemetry.SpanNames.execution,
        Telemetry.SpanNames.executionRoot,
        Telemetry.SpanNames.activity,
        Telemetry.SpanNames.journalWrite
      ]) {
        expect([...executionsOf(name)].sort(), name).toEqual([...expected].sort())
      }
      // The metrics count every execution, traced or not.
      expect(counted).toEqual({ completed: N, timed: N })
    })
  )

  it.effect("at 0 no execution makes a span; at 1 (the default) every one does", () =>
    Effect.gen(function* () {
      const none = yield* runAt(0)
      expect(none.executionsOf(Telemetry.SpanNames.execution).size).toBe(0)
      expect(none.executionsOf(Telemetry.SpanNames.journalWrite).size).toBe(0)
      expect(none.counted).toEqual({ completed: N, timed: N })
      const all = yield* runAt(1)
      expect(all.executionsOf(Telemetry.SpanNames.execution).size).toBe(N)
      expect(all.executionsOf(Telemetry.SpanNames.executionRoot).size).toBe(N)
    })
  )

  it("the choice is the execution's: the same id, the same answer; a larger rate keeps it", () => {
    const ids = Array.from({ length: 1_000 }, (_, i) => `order-${i}`)
    const tenth = ids.filter((id) => ExecutionTrace.isSampled(id, 0.1))
    expect(ids.filter((id) => ExecutionTrace.isSampled(id, 0.1))).toEqual(tenth)
    // About a tenth (binomial, n = 1,000: within 5 standard deviations).
    expect(tenth.length).toBeGreaterThan(100 - 5 * 9.5)
    expect(tenth.length).toBeLessThan(100 + 5 * 9.5)
    for (const id of tenth) expect(ExecutionTrace.isSampled(id, 0.5)).toBe(true)
  })
})
