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

/** The six lanes' offset bases: FNV-1a's, each mixed with its lane number. */
const BASES = [0, 1, 2, 3, 4, 5].map((lane) => (0x811c9dc5 ^ Math.imul(lane + 1, 0x9e3779b9)) >>> 0)

/** Six independent 32-bit FNV-1a hashes, from `from`, of `bytes`, in one pass (into `from`). */
const hashBytes = (from: Array<number>, bytes: Uint8Array): Array<number> => {
  for (let i = 0; i < bytes.length; i++) {
    const byte = bytes[i] as number
    for (let lane = 0; lane < 6; lane++) from[lane] = Math.imul((from[lane] as number) ^ byte, 0x01000193)
  }
  return from
}

const encoder = new TextEncoder()

/** The lanes after the prefix every execution id is hashed behind: computed once. */
const PREFIXED = hashBytes([...BASES], encoder.encode("effect-cluster/execution/"))

/** Two hex digits per byte value. */
const HEX = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, "0"))

/** A lane's final mix (so that ids differing only in their last byte differ in every hex digit), in hex. */
const mixedHex = (hash: number): string => {
  let mixed = hash ^ (hash >>> 16)
  mixed = Math.imul(mixed, 0x85ebca6b)
  mixed = (mixed ^ (mixed >>> 13)) >>> 0
  return (
    (HEX[mixed >>> 24] as string) +
    (HEX[(mixed >>> 16) & 0xff] as string) +
    (HEX[(mixed >>> 8) & 0xff] as string) +
    (HEX[mixed & 0xff] as string)
  )
}

/**
 * Both ids of `executionId`: 32 hex digits of trace id, then 16 of span id. The lanes hash the
 * UTF-8 bytes of `effect-cluster/execution/${executionId}`; an id of ASCII characters (the usual
 * case) is its own bytes, hashed without encoding it. A run asks for these at least twice, so this
 * is on every execution's path when telemetry is on.
 */
const idsOf = (executionId: string): string => {
  let h0 = PREFIXED[0] as number
  let h1 = PREFIXED[1] as number
  let h2 = PREFIXED[2] as number
  let h3 = PREFIXED[3] as number
  let h4 = PREFIXED[4] as number
  let h5 = PREFIXED[5] as number
  for (let i = 0; i < executionId.length; i++) {
    const byte = executionId.charCodeAt(i)
    if (byte >= 0x80) {
      const [l0, l1, l2, l3, l4, l5] = hashBytes([...PREFIXED], encoder.encode(executionId))
      return mixedHex(l0!) + mixedHex(l1!) + mixedHex(l2!) + mixedHex(l3!) + mixedHex(l4!) + mixedHex(l5!)
    }
    h0 = Math.imul(h0 ^ byte, 0x01000193)
    h1 = Math.imul(h1 ^ byte, 0x01000193)
    h2 = Math.imul(h2 ^ byte, 0x01000193)
    h3 = Math.imul(h3 ^ byte, 0x01000193)
    h4 = Math.imul(h4 ^ byte, 0x01000193)
    h5 = Math.imul(h5 ^ byte, 0x01000193)
  }
  return mixedHex(h0) + mixedHex(h1) + mixedHex(h2) + mixedHex(h3) + mixedHex(h4) + mixedHex(h5)
}

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

/**
 * Whether `executionId` is among the share `rate` (0 to 1) of executions traced
 * (`Telemetry.TraceSampleRate`): its trace id's first 32 bits below `rate` × 2³², the same answer
 * on every pod and after every restart.
 *
 * @example
 * ```ts
 * import { ExecutionTrace } from "effect-cluster"
 *
 * ExecutionTrace.isSampled("payment/order-1", 0.1) // the same on every pod
 * ```
 */
export const isSampled = (executionId: string, rate: number): boolean =>
  rate >= 1 || (rate > 0 && traceIdSampled(idsOf(executionId), rate))

/** Whether the trace id `traceId` (hex, 8 digits at least) is in the share `rate`: see `isSampled`. */
export const traceIdSampled = (traceId: string, rate: number): boolean =>
  rate >= 1 || (rate > 0 && Number.parseInt(traceId.slice(0, 8), 16) < rate * 2 ** 32)
