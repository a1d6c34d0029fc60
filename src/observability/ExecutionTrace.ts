/**
 * The trace of an execution, derived from its id: every run of one execution (the first, and each
 * run after a resume, a crash or a restart, on any pod) belongs to the same trace, under the same
 * parent, and a resumed run carries a link to it. Nothing is stored: the ids are a hash of the
 * execution id, so a pod that never saw the earlier runs (the process that ran them was SIGKILLed)
 * computes the same ones.
 *
 * Why derived rather than stored: a stored span context would need a column (a migration) and a
 * write before the first run could start, and a run after a crash would still not know the span of
 * the run that crashed (it never ended, so no exporter sent it). The derived parent is a span that
 * no process ends: a trace viewer shows the runs as the children of a missing root (Jaeger says
 * "invalid parent span id"), which is the execution itself.
 */
import { Tracer } from "effect"

/** FNV-1a 32 of `bytes`, with a different offset basis per `lane` (independent 32-bit words). */
const fnv = (bytes: Uint8Array, lane: number): number => {
  let hash = (0x811c9dc5 ^ Math.imul(lane + 1, 0x9e3779b9)) >>> 0
  for (let i = 0; i < bytes.length; i++) {
    hash ^= bytes[i] as number
    hash = Math.imul(hash, 0x01000193)
  }
  // A final mix, so that ids differing only in their last byte differ in every hex digit.
  hash ^= hash >>> 16
  hash = Math.imul(hash, 0x85ebca6b)
  hash ^= hash >>> 13
  return hash >>> 0
}

const hex = (bytes: Uint8Array, lanes: ReadonlyArray<number>): string =>
  lanes.map((lane) => fnv(bytes, lane).toString(16).padStart(8, "0")).join("")

const encoder = new TextEncoder()

/** The trace id (32 hex digits) of every run of `executionId`. */
export const traceIdOf = (executionId: string): string =>
  hex(encoder.encode(`effect-cluster/execution/${executionId}`), [0, 1, 2, 3])

/** The span id (16 hex digits) of the execution as a whole: the parent of each of its runs. */
export const spanIdOf = (executionId: string): string =>
  hex(encoder.encode(`effect-cluster/execution/${executionId}`), [4, 5])

/**
 * The execution as a span context: the parent of each run's `effect-cluster.execution` span and
 * the target of a resumed run's link. Use it to find an execution's trace in a collector.
 *
 * @example
 * ```ts
 * import { ExecutionTrace } from "effect-cluster"
 *
 * // Search the collector (Jaeger: "Lookup by Trace ID") for:
 * ExecutionTrace.traceIdOf("payment/order-1")
 * ```
 */
export const spanOf = (executionId: string): Tracer.ExternalSpan =>
  Tracer.externalSpan({ traceId: traceIdOf(executionId), spanId: spanIdOf(executionId), sampled: true })
