/**
 * `Telemetry.layer` really exports: a local OTLP/HTTP collector (node:http) receives the spans of
 * the payment workflow and the metrics, as JSON, when the program's scope closes. Then the demo
 * itself (`npm start -- --otlp URL`): its first worker is SIGKILLed mid-charge, and the second
 * worker's run of order-1 reaches the collector in the trace derived from the execution id,
 * resumed, linked to the execution, with the charge at attempt 2.
 */
import { join } from "node:path"
import { afterEach, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { ExecutionTrace, Telemetry, WorkflowTest } from "effect-cluster"
import { inMemoryServices } from "../../examples/process-payment/in-memory-services.ts"
import { ProcessPaymentRequest, processPayment } from "../../examples/process-payment/workflow.ts"
import { runDemo } from "../../examples/shared/runDemo.ts"
import { testTempDir } from "../support/tempDir.ts"
import { attributeOf, startCollector } from "./otlpCollector.ts"

const A = Telemetry.Attributes
const order1 = new ProcessPaymentRequest({
  orderId: "order-1",
  cardNumber: "4242-4242",
  email: "my@email.com",
  deliveryAddress: "My address, 5, Italy"
})
const order1Id = "ProcessPayment@order-1"

const collectors: Array<{ close: () => Promise<void> }> = []
afterEach(async () => {
  await Promise.all(collectors.splice(0).map((collector) => collector.close()))
})

describe("OTLP export", () => {
  it.live("Telemetry.layer sends the workflow's spans and the metrics to the collector", () =>
    Effect.gen(function* () {
      const collector = yield* Effect.promise(startCollector)
      collectors.push(collector)
      yield* Effect.gen(function* () {
        const fake = inMemoryServices({ chargeFailures: 1 })
        const engine = yield* WorkflowTest.makeEngine(processPayment(fake.services), {
          retry: { initialDelay: "1 millis" }
        })
        expect(yield* engine.send(order1)).toBe(true)
      }).pipe(
        Effect.scoped,
        Effect.provide(
          Telemetry.layer({ serviceName: "otlp-test", url: collector.url, exportInterval: "1 hour" })
        )
      )
      // Nothing was due by the interval: all of it went out when the layer's scope closed.
      const spans = collector.spans()
      const runs = spans.filter((span) => span.name === Telemetry.SpanNames.execution)
      expect(runs).toHaveLength(1)
      const run = runs[0]
      expect(run?.service).toBe("otlp-test")
      expect(run?.traceId).toBe(ExecutionTrace.traceIdOf(order1Id))
      expect(run?.parentSpanId).toBe(ExecutionTrace.spanIdOf(order1Id))
      expect(attributeOf(run?.attributes ?? [], A.outcome)).toBe("succeeded")
      // The run's parent reached the collector: the execution's root span, with the derived ids.
      const roots = spans.filter((span) => span.name === Telemetry.SpanNames.executionRoot)
      expect(roots.map((root) => [root.traceId, root.spanId, root.parentSpanId ?? ""])).toEqual([
        [ExecutionTrace.traceIdOf(order1Id), ExecutionTrace.spanIdOf(order1Id), ""]
      ])
      const charges = spans
        .filter(
          (span) =>
            span.name === Telemetry.SpanNames.activity &&
            attributeOf(span.attributes, A.activityId) === "charge-credit-card"
        )
        .map((span) => [
          attributeOf(span.attributes, A.attempt),
          attributeOf(span.attributes, A.outcome),
          span.parentSpanId
        ])
      expect(charges).toEqual([
        [1, "failed", run?.spanId],
        [2, "succeeded", run?.spanId]
      ])
      const metrics = collector.metricNames()
      for (const name of [
        "effect-cluster.executions.started",
        "effect-cluster.executions.completed",
        "effect-cluster.activity.duration",
        "effect-cluster.activity.retries"
      ])
        expect(metrics).toContain(name)
    })
  )

  it("the demo with --otlp: the run after the SIGKILL is in the execution's trace, linked, charge attempt 2", async () => {
    const collector = await startCollector()
    collectors.push(collector)
    const main = join(import.meta.dirname, "..", "..", "examples", "process-payment", "main.ts")
    const { code, output } = await runDemo(main, testTempDir("demo-otlp-"), ["--otlp", collector.url])
    expect(output).toContain("was killed by SIGKILL")
    expect(output).toContain(`traces and metrics: exported to the OTLP/HTTP collector at ${collector.url}`)
    expect(output).toContain(`trace of ${order1Id}: ${ExecutionTrace.traceIdOf(order1Id)}`)
    expect(code).toBe(0)
    const spans = collector.spans()
    const runs = spans.filter(
      (span) =>
        span.name === Telemetry.SpanNames.execution &&
        attributeOf(span.attributes, A.executionId) === order1Id
    )
    // The SIGKILLed worker never ended its run's span: only the second worker's run is exported.
    expect(runs).toHaveLength(1)
    const run = runs[0]
    expect(run?.service).toBe("process-payment-demo")
    expect(run?.traceId).toBe(ExecutionTrace.traceIdOf(order1Id))
    expect(attributeOf(run?.attributes ?? [], A.resumed)).toBe(true)
    expect(
      run?.links?.map((link) => [link.traceId, link.spanId, attributeOf(link.attributes, A.link)])
    ).toEqual([[ExecutionTrace.traceIdOf(order1Id), ExecutionTrace.spanIdOf(order1Id), "resumed"]])
    const attempts = spans
      .filter((span) => span.name === Telemetry.SpanNames.activity && span.parentSpanId === run?.spanId)
      .map((span) => [attributeOf(span.attributes, A.activityId), attributeOf(span.attributes, A.attempt)])
    expect(attempts[0]).toEqual(["charge-credit-card", 2])
    expect(collector.metricNames()).toContain("effect-cluster.executions.resumed")
  })

  it("a malformed --otlp value is refused with a usage line", async () => {
    const main = join(import.meta.dirname, "..", "..", "examples", "process-payment", "main.ts")
    const { code, output } = await runDemo(main, testTempDir("demo-otlp-"), ["--otlp", "localhost:4318"])
    expect(code).toBe(2)
    expect(output).toContain("expected the collector's OTLP/HTTP base URL")
    expect(output).toContain("[--otlp URL]")
  })
})
