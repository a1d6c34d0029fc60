/**
 * An in-memory span exporter for the tests: a `Tracer` that makes effect's native spans and keeps
 * each one when it ends, plus helpers to read attributes and build the tree.
 */
import { Effect, Layer, Metric, Tracer } from "effect"
import { Telemetry } from "effect-cluster"

/** A tracer that records every span when it ends, and the layer that turns telemetry on with it. */
export const makeSpanCollector = () => {
  const ended: Array<Tracer.Span> = []
  const tracer = Tracer.make({
    span(options) {
      const span = Tracer.nativeTracer.span(options)
      const end = span.end.bind(span)
      span.end = (endTime, exit) => {
        end(endTime, exit)
        ended.push(span)
      }
      return span
    }
  })
  const layer = Layer.mergeAll(Telemetry.enabled, Layer.succeed(Tracer.Tracer, tracer))
  return { ended, tracer, layer }
}

/** A span's attribute. */
export const attr = (span: Tracer.Span, key: string): unknown => span.attributes.get(key)

/** The parent span id of `span` ("" for a root). */
export const parentId = (span: Tracer.Span): string =>
  span.parent._tag === "Some" ? span.parent.value.spanId : ""

/** The current value of a counter series. */
export const counterValue = (metric: Metric.Counter<number>, attributes: Record<string, string>) =>
  Effect.map(Metric.value(Metric.withAttributes(metric, attributes)), (state) => state.count)

/** The sum of the observations of a histogram series. */
export const histogramSum = (metric: Metric.Histogram<number>, attributes: Record<string, string>) =>
  Effect.map(Metric.value(Metric.withAttributes(metric, attributes)), (state) => state.sum)

/** The number of observations of a histogram series. */
export const histogramCount = (metric: Metric.Histogram<number>, attributes: Record<string, string>) =>
  Effect.map(Metric.value(Metric.withAttributes(metric, attributes)), (state) => state.count)
