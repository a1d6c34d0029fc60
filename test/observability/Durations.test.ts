/**
 * The durations telemetry records for an activity attempt and a group commit: the time from the
 * span's start to its end, on the live clock. The span's own start time is used (one clock read
 * fewer per span); with span timing off (`References.TracerTimingEnabled`), the durations are still
 * measured, and the spans keep no times.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, References, type Tracer } from "effect"
import { Telemetry, TelemetryMetrics } from "effect-cluster"
import * as Instrument from "../../src/observability/internal/instrument.ts"
import { attr, histogramCount, histogramSum, makeSpanCollector } from "./spanCollector.ts"

const A = Telemetry.Attributes
const PAUSE_MS = 30

/** A failed attempt that took `PAUSE_MS`, and a group commit that took as long. */
const attemptAndCommit = (workflow: string) =>
  Effect.gen(function* () {
    const attempt = yield* Instrument.attempt(
      Effect.as(Effect.sleep(PAUSE_MS), Exit.fail("declined")),
      { workflow, executionId: `${workflow}/1` },
      "charge",
      "charge#1",
      1
    )
    yield* Instrument.commit(Effect.sleep(PAUSE_MS), workflow, 3, true)
    return attempt
  })

const series = (workflow: string) => ({ workflow, activity: "charge", outcome: "failed" })

/** Milliseconds from a span's start to its end (0 when the span has no times). */
const millisOf = (span: Tracer.Span): number =>
  span.status._tag === "Ended" ? Number(span.status.endTime - span.status.startTime) / 1e6 : Number.NaN

describe("telemetry durations", () => {
  it.live("an attempt's and a commit's durations are their spans' durations", () =>
    Effect.gen(function* () {
      const collector = makeSpanCollector()
      const exit = yield* attemptAndCommit("timed").pipe(Effect.provide(collector.layer))
      // The attempt's exit is returned as it was; its span ends with it as an error.
      expect(Exit.isFailure(exit)).toBe(true)
      const attempt = collector.ended.find((span) => span.name === Telemetry.SpanNames.activity)!
      const commit = collector.ended.find((span) => span.name === Telemetry.SpanNames.commit)!
      expect(attr(attempt, A.outcome)).toBe("failed")
      expect(attempt.status._tag === "Ended" && Exit.isFailure(attempt.status.exit)).toBe(true)

      const attemptMillis = yield* histogramSum(TelemetryMetrics.activityDuration, series("timed"))
      const commitMillis = yield* histogramSum(TelemetryMetrics.commitDuration, { store: "timed" })
      expect(attemptMillis).toBeGreaterThanOrEqual(PAUSE_MS - 1)
      expect(attemptMillis).toBeCloseTo(millisOf(attempt), 6)
      expect(commitMillis).toBeGreaterThanOrEqual(PAUSE_MS - 1)
      expect(commitMillis).toBeCloseTo(millisOf(commit), 6)
      expect(yield* histogramCount(TelemetryMetrics.commitBatchSize, { store: "timed" })).toBe(1)
    })
  )

  it.live("with span timing off, the durations are still measured", () =>
    Effect.gen(function* () {
      const collector = makeSpanCollector()
      yield* attemptAndCommit("untimed").pipe(
        Effect.provide(collector.layer),
        Effect.provideService(References.TracerTimingEnabled, false)
      )
      for (const span of collector.ended) expect(millisOf(span)).toBe(0)
      expect(collector.ended.map((span) => span.name).sort()).toEqual(
        [Telemetry.SpanNames.activity, Telemetry.SpanNames.commit].sort()
      )
      const attemptMillis = yield* histogramSum(TelemetryMetrics.activityDuration, series("untimed"))
      const commitMillis = yield* histogramSum(TelemetryMetrics.commitDuration, { store: "untimed" })
      // Measured from the start of each, not from a span time of 0 (the epoch).
      for (const millis of [attemptMillis, commitMillis]) {
        expect(millis).toBeGreaterThanOrEqual(PAUSE_MS - 1)
        expect(millis).toBeLessThan(60_000)
      }
    })
  )
})
