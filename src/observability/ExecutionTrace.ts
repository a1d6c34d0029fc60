/**
 * The trace of an execution, derived from its id: every run of one execution (the first, and each
 * run after a resume, a crash or a restart, on any pod) belongs to the same trace, under the same
 * parent, and a resumed run carries a link to it. Nothing is stored: the ids are a hash of the
 * execution id, so a pod that never saw the earlier runs (the process that ran them was SIGKILLed)
 * computes the same ones.
 *
 * Why derived rather than stored: a stored span context would need a column (a migration) and a
 * write before the first run could start, and a run after a crash would still not know the span of
 * the run that crashed (it never ended, so no exporter sent it). The derived parent is the execution
 * itself: the pod that completes the execution exports it, as the span
 * `effect-cluster.execution.root` with these ids, from the execution's creation to its completion,
 * so every run nests under a real root. Until then a trace viewer shows the runs under a root that
 * is not there yet (Jaeger: "invalid parent span id").
 *
 * The derivation (six FNV-1a lanes of the id's UTF-8 bytes) is what lets a trace be found again
 * after a deploy: it is pinned by test vectors (`test/observability/ExecutionTrace.test.ts`).
 */
import { Tracer } from "effect"

/** Six independent 32-bit FNV-1a hashes of `bytes` (a different offset basis each), in one pass. */
const lanes = (bytes: Uint8Array): Array<number> => {
  const hashes = [0, 1, 2, 3, 4, 5].map((lane) => (0x811c9dc5 ^ Math.imul(lane + 1, 0x9e3779b9)) >>> 0)
  for (let i = 0; i < bytes.length; i++) {
    const byte = bytes[i] as number
    for (let lane = 0; lane < 6; lane++) hashes[lane] = Math.imul((hashes[lane] as number) ^ byte, 0x01000193)
  }
  // A final mix, so that ids differing only in their last byte differ in every hex digit.
  return hashes.map((hash) => {
    let mixed = hash ^ (hash >>> 16)
    mixed = Math.imul(mixed, 0x85ebca6b)
    return (mixed ^ (mixed >>> 13)) >>> 0
  })
}

const encoder = new TextEncoder()

/** Both ids of `executionId`: 32 hex digits of trace id, then 16 of span id. */
const idsOf = (executionId: string): string =>
  lanes(encoder.encode(`effect-cluster/execution/${executionId}`))
    .map((hash) => hash.toString(16).padStart(8, "0"))
    .join("")

/** The trace id (32 hex digits) of every run of `executionId`. */
export const traceIdOf = (executionId: string): string => idsOf(executionId).slice(0, 32)

/** The span id (16 hex digits) of the execution's root span: the parent of each of its runs. */
export const spanIdOf = (executionId: string): string => idsOf(executionId).slice(32)

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
export const spanOf = (executionId: string): Tracer.ExternalSpan => {
  const ids = idsOf(executionId)
  return Tracer.externalSpan({ traceId: ids.slice(0, 32), spanId: ids.slice(32), sampled: true })
}
