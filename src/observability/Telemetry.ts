/**
 * Traces and metrics of effect-cluster, through effect's own `Tracer` and `Metric`: off by default
 * (nothing is created or recorded, not even effect's native spans), on with one layer.
 *
 * - `Telemetry.layer({ serviceName, url })`: exports spans and metrics over OTLP/HTTP (JSON) with
 *   the exporter effect ships (`effect/observability`): no dependency beyond `effect`. Without
 *   `url`, the standard `OTEL_EXPORTER_OTLP_*` variables decide (read through effect's `Config`).
 * - `Telemetry.enabled`: turns the instrumentation on and leaves the export to whatever `Tracer`
 *   the program provides (`@effect/opentelemetry`'s `NodeSdk`, a test tracer).
 *
 * Provide it outside the layers it should see (the engine, the journal, `Sharding`): they read the
 * switch and the tracer when they are built, and their fibers keep them.
 *
 * The span names are in `SpanNames`, their attributes in `Attributes`, the metrics in
 * `TelemetryMetrics`.
 *
 * @example
 * ```ts
 * import { Telemetry } from "effect-cluster"
 * import { Effect } from "effect"
 *
 * program.pipe(Effect.provide(Telemetry.layer({ serviceName: "payments", url: "http://localhost:4318" })))
 * ```
 */
import { Context, type Duration, Layer } from "effect"
import * as FetchHttpClient from "effect/http/FetchHttpClient"
import type * as OtlpExporter from "effect/observability/OtlpExporter"
import * as OtlpMetrics from "effect/observability/OtlpMetrics"
import * as OtlpSerialization from "effect/observability/OtlpSerialization"
import * as OtlpTracer from "effect/observability/OtlpTracer"

/** Whether effect-cluster creates its spans and records its metrics. Default false. */
export const TelemetryEnabled: Context.Reference<boolean> = Context.Reference<boolean>(
  "effect-cluster/observability/TelemetryEnabled",
  { defaultValue: () => false }
)

/**
 * The share of executions whose runs are traced, from 0 to 1 (default 1: all). The choice is the
 * execution's, made from its trace id (`ExecutionTrace.isSampled`), so every run of it, on any pod,
 * makes the same one. An execution left out makes no span (its runs' parent is its span context,
 * marked not sampled, so the spans of the code it runs are not sampled either); its metrics are
 * recorded all the same. Set it with `sampling` or `TelemetryOptions.traceSampleRate`.
 */
export const TraceSampleRate: Context.Reference<number> = Context.Reference<number>(
  "effect-cluster/observability/TraceSampleRate",
  { defaultValue: () => 1 }
)

/**
 * Traces `rate` of the executions (0 to 1), chosen by their trace ids: see `TraceSampleRate`.
 *
 * @example
 * ```ts
 * import { Telemetry } from "effect-cluster"
 * import { Layer } from "effect"
 *
 * // Every metric, and the traces of one execution in ten.
 * const telemetry = Layer.merge(Telemetry.enabled, Telemetry.sampling(0.1))
 * ```
 */
export const sampling = (rate: number): Layer.Layer<never> =>
  Layer.succeed(TraceSampleRate, Number.isNaN(rate) ? 1 : Math.min(1, Math.max(0, rate)))

/** The names of the spans effect-cluster creates. */
export const SpanNames = {
  /**
   * The execution as a whole, the root of its trace (`ExecutionTrace.traceIdOf(id)`) and the parent
   * of each of its runs: from its creation to its completion, exported once it completes.
   */
  executionRoot: "effect-cluster.execution.root",
  /** One run of an execution; every run of one execution is in the trace `ExecutionTrace.traceIdOf(id)`. */
  execution: "effect-cluster.execution",
  /** One attempt of an activity: its attempt marker write and its body. */
  activity: "effect-cluster.activity",
  /** One write of an execution to its journal (outcomes, attempt marker, status change). */
  journalWrite: "effect-cluster.journal.write",
  /** One group commit of the SQL stores: one transaction carrying `batch_size` writes. */
  commit: "effect-cluster.journal.commit",
  /** One message handled by an entity. */
  entityMessage: "effect-cluster.entity.message",
  /** This pod took a shard: its executions resume, its entities may start. */
  shardAcquire: "effect-cluster.shard.acquire",
  /** This pod stopped the runs of a shard it lost or hands over. */
  shardLose: "effect-cluster.shard.lose"
} as const

/** The attribute keys of effect-cluster's spans. */
export const Attributes = {
  workflow: "effect-cluster.workflow",
  executionId: "effect-cluster.execution.id",
  /** true when the run resumed recorded steps (after a resume, a crash, a restart, a wake-up). */
  resumed: "effect-cluster.execution.resumed",
  activityId: "effect-cluster.activity.id",
  attempt: "effect-cluster.activity.attempt",
  persistenceId: "effect-cluster.activity.persistence_id",
  /** How the span's work ended (execution: succeeded | failed | interrupted | suspended | sleeping | stopped ...). */
  outcome: "effect-cluster.outcome",
  outcomes: "effect-cluster.journal.outcomes",
  attemptMarker: "effect-cluster.journal.attempt_marker",
  status: "effect-cluster.journal.status",
  store: "effect-cluster.journal.store",
  batchSize: "effect-cluster.journal.batch_size",
  durable: "effect-cluster.journal.durable",
  entityType: "effect-cluster.entity.type",
  entityId: "effect-cluster.entity.id",
  messageId: "effect-cluster.message.id",
  shard: "effect-cluster.shard",
  epoch: "effect-cluster.epoch",
  pod: "effect-cluster.pod",
  /** On a resumed run's link to the execution's span context. */
  link: "effect-cluster.link"
} as const

/** Turns effect-cluster's spans and metrics on, exported by whatever the program provides. */
export const enabled: Layer.Layer<never> = Layer.succeed(TelemetryEnabled, true)

/** Options of `layer`. */
export interface TelemetryOptions {
  /** `service.name` of the exported resource. */
  readonly serviceName: string
  readonly serviceVersion?: string | undefined
  /**
   * The collector's OTLP/HTTP base URL (`/v1/traces` and `/v1/metrics` are appended), e.g.
   * `http://localhost:4318`. Omitted: `OTEL_EXPORTER_OTLP_ENDPOINT` and the other standard
   * variables decide, and without an endpoint nothing is exported.
   */
  readonly url?: string | undefined
  readonly headers?: Record<string, string> | undefined
  /** How often spans and metrics are sent (default 5 s for spans, 10 s for metrics). */
  readonly exportInterval?: Duration.Input | undefined
  /** The share of executions traced, 0 to 1 (default 1): see `TraceSampleRate`. */
  readonly traceSampleRate?: number | undefined
}

/**
 * Turns effect-cluster's telemetry on and exports it (and every other effect span and metric of the
 * program) over OTLP/HTTP with JSON bodies. Spans still buffered are sent when the layer's scope
 * closes (at most 3 s), or on `OtlpExporter.Flusher`'s `flush`.
 */
export const layer = (options: TelemetryOptions): Layer.Layer<OtlpExporter.Flusher> => {
  const resource = { serviceName: options.serviceName, serviceVersion: options.serviceVersion }
  const base = options.url?.replace(/\/+$/, "")
  const exporters =
    base === undefined
      ? Layer.mergeAll(
          OtlpTracer.layerFromConfig({ resource, headers: options.headers }),
          OtlpMetrics.layerFromConfig({ resource, headers: options.headers })
        )
      : Layer.mergeAll(
          OtlpTracer.layer({
            url: `${base}/v1/traces`,
            resource,
            headers: options.headers,
            exportInterval: options.exportInterval
          }),
          OtlpMetrics.layer({
            url: `${base}/v1/metrics`,
            resource,
            headers: options.headers,
            exportInterval: options.exportInterval
          })
        )
  return Layer.mergeAll(
    enabled,
    options.traceSampleRate === undefined ? Layer.empty : sampling(options.traceSampleRate),
    exporters.pipe(Layer.provide([OtlpSerialization.layerJson, FetchHttpClient.layer]))
  )
}
