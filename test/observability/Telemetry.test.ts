/**
 * The span tree of the payment demo's workflow, from an in-memory exporter: each run of an
 * execution is an `effect-cluster.execution` span in the execution's own trace, its activity
 * attempts are children (a failed charge then its retry, attempt 2), and the run after an engine
 * restart links to the execution's span context, and both runs nest under the execution's root span,
 * exported when it completed. The metrics move with them. With telemetry off,
 * nothing is traced.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Layer, Schema, Scope, type Tracer } from "effect"
import { ExecutionTrace, Telemetry, TelemetryMetrics, Workflow, WorkflowTest } from "effect-cluster"
import { inMemoryServices } from "../../examples/process-payment/in-memory-services.ts"
import { ProcessPaymentRequest, processPayment } from "../../examples/process-payment/workflow.ts"
import { attr, counterValue, histogramCount, makeSpanCollector, parentId } from "./spanCollector.ts"

const A = Telemetry.Attributes
const order2 = new ProcessPaymentRequest({
  orderId: "order-2",
  cardNumber: "5555-0000",
  email: "bob@example.com",
  deliveryAddress: "Via Roma 1, Milano"
})
const executionId = "ProcessPayment@order-2"

describe("Telemetry", () => {
  it.effect(
    "the payment workflow's span tree: attempts with a retry, and a resumed run linked to the first",
    () => {
      const collector = makeSpanCollector()
      return Effect.gen(function* () {
        const started = yield* counterValue(TelemetryMetrics.executionsStarted, {
          workflow: "ProcessPaymentRequest"
        })
        const resumed = yield* counterValue(TelemetryMetrics.executionsResumed, {
          workflow: "ProcessPaymentRequest"
        })
        const completed = yield* counterValue(TelemetryMetrics.executionsCompleted, {
          workflow: "ProcessPaymentRequest"
        })
        const retries = yield* counterValue(TelemetryMetrics.activityRetries, {
          workflow: "ProcessPaymentRequest",
          activity: "charge-credit-card"
        })
        const chargeFailed = yield* histogramCount(TelemetryMetrics.activityDuration, {
          workflow: "ProcessPaymentRequest",
          activity: "charge-credit-card",
          outcome: "failed"
        })

        // Run 1: the gateway refuses the first charge (attempt 2 succeeds), the warehouse is out of
        // stock, and the refund hangs: the engine stops (a restart) in the middle of it.
        const first = inMemoryServices({
          outOfStock: new Set(["order-2"]),
          chargeFailures: 1,
          refundHangs: true
        })
        const scope = yield* Scope.make()
        const engine1 = yield* WorkflowTest.makeEngine(processPayment(first.services)).pipe(
          Scope.provide(scope)
        )
        const sending = yield* Effect.forkChild(engine1.send(order2))
        while (!first.calls.includes("/payments/refund")) yield* WorkflowTest.advance("1 minute")
        yield* Scope.close(scope, Exit.void)
        yield* Fiber.interrupt(sending)

        // Run 2: a new engine on the same journal resumes the execution and finishes the refund.
        const second = inMemoryServices({ outOfStock: new Set(["order-2"]) })
        const engine2 = yield* WorkflowTest.makeEngine(processPayment(second.services), {
          journal: engine1.journal
        })
        expect(yield* WorkflowTest.within("1 hour", engine2.send(order2))).toBe(false)
        expect([...second.refunds.keys()]).toEqual(["ProcessPayment@order-2/refund-credit-card"])

        const spans = collector.ended
        const runs = spans.filter(
          (span) => span.name === Telemetry.SpanNames.execution && attr(span, A.executionId) === executionId
        )
        expect(runs).toHaveLength(2)
        const [run1, run2] = runs as [(typeof runs)[0], (typeof runs)[0]]
        const anchor = ExecutionTrace.spanOf(executionId)
        // Both runs: one trace (derived from the execution id), under the execution's span context.
        for (const run of runs) {
          expect(run.traceId).toBe(anchor.traceId)
          expect(parentId(run)).toBe(anchor.spanId)
          expect(attr(run, A.workflow)).toBe("ProcessPaymentRequest")
        }
        expect(attr(run1, A.resumed)).toBe(false)
        expect(attr(run1, A.outcome)).toBe("stopped")
        expect(run1.links).toEqual([])
        expect(attr(run2, A.resumed)).toBe(true)
        expect(attr(run2, A.outcome)).toBe("succeeded")
        expect(
          run2.links.map((link) => [link.span.traceId, link.span.spanId, link.attributes[A.link]])
        ).toEqual([[run1.traceId, parentId(run1), "resumed"]])

        // The execution's root span was exported once, when it completed: the runs' parent exists
        // (no "invalid parent span id"), it is the trace's root and spans both runs.
        const roots = spans.filter((span) => span.name === Telemetry.SpanNames.executionRoot)
        expect(roots).toHaveLength(1)
        const root = roots[0]!
        expect([root.traceId, root.spanId, parentId(root)]).toEqual([anchor.traceId, anchor.spanId, ""])
        expect([attr(root, A.executionId), attr(root, A.workflow), attr(root, A.outcome)]).toEqual([
          executionId,
          "ProcessPaymentRequest",
          "succeeded"
        ])
        const times = (span: Tracer.Span) =>
          span.status._tag === "Ended" ? [span.status.startTime, span.status.endTime] : [0n, 0n]
        const [rootStart, rootEnd] = times(root)
        for (const run of runs) {
          const [start, end] = times(run)
          expect(start! >= rootStart! && end! <= rootEnd!, "the root spans every run").toBe(true)
        }
        // Every span of the trace has an exported parent, or is the root.
        const exported = new Set(
          spans.filter((span) => span.traceId === anchor.traceId).map((span) => span.spanId)
        )
        for (const span of spans.filter((span) => span.traceId === anchor.traceId && span !== root)) {
          expect(exported.has(parentId(span)), `${span.name}'s parent was exported`).toBe(true)
        }

        // The attempts of each run are its children, with their attributes and outcomes.
        const attemptsOf = (run: typeof run1) =>
          spans
            .filter((span) => span.name === Telemetry.SpanNames.activity && parentId(span) === run.spanId)
            .map((span) => ({
              activity: attr(span, A.activityId),
              attempt: attr(span, A.attempt),
              outcome: attr(span, A.outcome),
              persistenceId: attr(span, A.persistenceId),
              executionId: attr(span, A.executionId),
              workflow: attr(span, A.workflow)
            }))
        const attempt = (activity: string, n: number, outcome: string) => ({
          activity,
          attempt: n,
          outcome,
          persistenceId: `${executionId}/${activity}`,
          executionId,
          workflow: "ProcessPaymentRequest"
        })
        expect(attemptsOf(run1)).toEqual([
          attempt("get-amount-due-order-2", 1, "succeeded"),
          attempt("charge-credit-card", 1, "failed"),
          attempt("charge-credit-card", 2, "succeeded"),
          attempt("create-shipping-tracking-code", 1, "succeeded"),
          attempt("send-order-to-shipping", 1, "failed"),
          attempt("refund-credit-card", 1, "interrupted")
        ])
        // Run 2 replays the recorded steps without running them: only the refund runs, attempt 2.
        expect(attemptsOf(run2)).toEqual([attempt("refund-credit-card", 2, "succeeded")])
        // A failed attempt's span ends with its failure (an error status in OpenTelemetry).
        const endedWith = (activity: string, n: number) => {
          const span = spans.find(
            (span) =>
              span.name === Telemetry.SpanNames.activity &&
              attr(span, A.activityId) === activity &&
              attr(span, A.attempt) === n &&
              parentId(span) === run1.spanId
          )
          return span?.status._tag === "Ended" ? (Exit.isFailure(span.status.exit) ? "error" : "ok") : "open"
        }
        expect([endedWith("charge-credit-card", 1), endedWith("charge-credit-card", 2)]).toEqual([
          "error",
          "ok"
        ])

        // Journal writes are spans inside the attempts and runs of the execution's trace.
        const writes = spans.filter((span) => span.name === Telemetry.SpanNames.journalWrite)
        const ids = new Set(
          spans.filter((span) => span.traceId === anchor.traceId).map((span) => span.spanId)
        )
        expect(writes.length).toBeGreaterThan(0)
        for (const write of writes) {
          expect(write.traceId).toBe(anchor.traceId)
          expect(ids.has(parentId(write))).toBe(true)
          expect(attr(write, A.executionId)).toBe(executionId)
        }

        // Metrics: one start, one resume, one completion, one retry, one failed charge timed.
        const workflow = { workflow: "ProcessPaymentRequest" }
        expect((yield* counterValue(TelemetryMetrics.executionsStarted, workflow)) - started).toBe(1)
        expect((yield* counterValue(TelemetryMetrics.executionsResumed, workflow)) - resumed).toBe(1)
        expect((yield* counterValue(TelemetryMetrics.executionsCompleted, workflow)) - completed).toBe(1)
        expect(
          (yield* counterValue(TelemetryMetrics.activityRetries, {
            ...workflow,
            activity: "charge-credit-card"
          })) - retries
        ).toBe(1)
        expect(
          (yield* histogramCount(TelemetryMetrics.activityDuration, {
            ...workflow,
            activity: "charge-credit-card",
            outcome: "failed"
          })) - chargeFailed
        ).toBe(1)
      }).pipe(Effect.provide(collector.layer), Effect.scoped)
    }
  )

  it.effect("failed and suspended executions: their counters move and their runs say so", () => {
    const collector = makeSpanCollector()
    class Fails extends Schema.TaggedError<Fails>()("Fails", {}) {}
    class Outcome extends Workflow.TaggedRequest<Outcome>()("Outcome", {
      payload: { id: Schema.String, fail: Schema.Boolean },
      success: Schema.String,
      failure: Fails
    }) {}
    const outcomes = Workflow.make(
      Outcome,
      (request) => `outcome/${request.id}`,
      (request) =>
        request.fail ? Effect.fail(new Fails()) : Workflow.yieldExecutionWith("wait for an operator")
    )
    return Effect.gen(function* () {
      const failed = yield* counterValue(TelemetryMetrics.executionsFailed, {
        workflow: "Outcome",
        status: "failed"
      })
      const suspended = yield* counterValue(TelemetryMetrics.executionsSuspended, { workflow: "Outcome" })
      const engine = yield* WorkflowTest.makeEngine(outcomes)
      expect((yield* Effect.flip(engine.send(new Outcome({ id: "a", fail: true }))))._tag).toBe("Fails")
      expect((yield* Effect.flip(engine.send(new Outcome({ id: "b", fail: false }))))._tag).toBe(
        "ExecutionSuspendedError"
      )
      expect(
        collector.ended
          .filter((span) => span.name === Telemetry.SpanNames.execution)
          .map((span) => [attr(span, A.executionId), attr(span, A.outcome)])
      ).toEqual([
        ["outcome/a", "failed"],
        ["outcome/b", "suspended"]
      ])
      expect(
        (yield* counterValue(TelemetryMetrics.executionsFailed, { workflow: "Outcome", status: "failed" })) -
          failed
      ).toBe(1)
      expect(
        (yield* counterValue(TelemetryMetrics.executionsSuspended, { workflow: "Outcome" })) - suspended
      ).toBe(1)
    }).pipe(Effect.provide(collector.layer), Effect.scoped)
  })

  it.effect("off by default: no span, no metric", () => {
    const collector = makeSpanCollector()
    return Effect.gen(function* () {
      const before = yield* counterValue(TelemetryMetrics.executionsStarted, {
        workflow: "ProcessPaymentRequest"
      })
      const fake = inMemoryServices()
      const engine = yield* WorkflowTest.makeEngine(processPayment(fake.services))
      expect(yield* engine.send(new ProcessPaymentRequest({ ...order2, orderId: "order-1" }))).toBe(true)
      expect(collector.ended.filter((span) => span.name.startsWith("effect-cluster."))).toEqual([])
      expect(
        yield* counterValue(TelemetryMetrics.executionsStarted, { workflow: "ProcessPaymentRequest" })
      ).toBe(before)
    }).pipe(
      // The tracer is there, the switch is not.
      Effect.provide(Layer.succeed(Telemetry.TelemetryEnabled, false)),
      Effect.withTracer(collector.tracer),
      Effect.scoped
    )
  })
})
