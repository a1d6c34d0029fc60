/**
 * A tiny OTLP/HTTP collector for the tests (node:http): keeps every JSON body posted to
 * `/v1/traces` and `/v1/metrics`, and reads spans out of them.
 */
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"

/** An OTLP attribute as JSON carries it. */
interface KeyValue {
  readonly key: string
  readonly value: {
    readonly stringValue?: string
    readonly intValue?: number | string
    readonly boolValue?: boolean
    readonly doubleValue?: number
  }
}

/** A span as OTLP/JSON carries it (the fields the tests read). */
export interface OtlpSpan {
  readonly traceId: string
  readonly spanId: string
  readonly parentSpanId?: string
  readonly name: string
  readonly attributes: ReadonlyArray<KeyValue>
  readonly links?: ReadonlyArray<{
    readonly traceId: string
    readonly spanId: string
    readonly attributes: ReadonlyArray<KeyValue>
  }>
}

interface TracesBody {
  readonly resourceSpans: ReadonlyArray<{
    readonly resource: { readonly attributes: ReadonlyArray<KeyValue> }
    readonly scopeSpans: ReadonlyArray<{ readonly spans: ReadonlyArray<OtlpSpan> }>
  }>
}

/** The plain value of an OTLP attribute. */
export const attributeOf = (attributes: ReadonlyArray<KeyValue>, key: string): unknown => {
  const value = attributes.find((entry) => entry.key === key)?.value
  if (value === undefined) return undefined
  if (value.intValue !== undefined) return Number(value.intValue)
  return value.stringValue ?? value.boolValue ?? value.doubleValue
}

/** Starts a collector on 127.0.0.1 (a free port); `close` stops it. */
export const startCollector = async () => {
  const bodies: Array<{ readonly path: string; readonly body: unknown }> = []
  const server = createServer((request, response) => {
    const chunks: Array<Buffer> = []
    request.on("data", (chunk: Buffer) => chunks.push(chunk))
    request.on("end", () => {
      bodies.push({ path: request.url ?? "", body: JSON.parse(Buffer.concat(chunks).toString("utf8")) })
      response.writeHead(200, { "content-type": "application/json" })
      response.end("{}")
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const { port } = server.address() as AddressInfo
  const traces = () =>
    bodies.filter((entry) => entry.path === "/v1/traces").map((entry) => entry.body as TracesBody)
  return {
    url: `http://127.0.0.1:${port}`,
    bodies,
    /** Every span received, with its resource's service name. */
    spans: (): Array<OtlpSpan & { readonly service: unknown }> =>
      traces().flatMap((body) =>
        body.resourceSpans.flatMap((resource) =>
          resource.scopeSpans.flatMap((scope) =>
            scope.spans.map((span) => ({
              ...span,
              service: attributeOf(resource.resource.attributes, "service.name")
            }))
          )
        )
      ),
    /** The names of the metrics received. */
    metricNames: (): Set<string> =>
      new Set(
        bodies
          .filter((entry) => entry.path === "/v1/metrics")
          .flatMap((entry) =>
            (
              entry.body as {
                resourceMetrics: ReadonlyArray<{
                  scopeMetrics: ReadonlyArray<{ metrics: ReadonlyArray<{ name: string }> }>
                }>
              }
            ).resourceMetrics.flatMap((r) => r.scopeMetrics.flatMap((s) => s.metrics.map((m) => m.name)))
          )
      ),
    close: () => new Promise<void>((resolve) => server.close(() => resolve()))
  }
}
