/**
 * The verification runner's history (issue #20): what the pods appended to the ledger
 * (`pod.ts`), the executions as the store has them once the cluster healed, and the counters'
 * applied increments as the counters report them at the end, turned into the checkers' events.
 */
import { readFileSync } from "node:fs"
import { Schema } from "effect"
import type { Anomaly, HistoryEvent } from "./checkers.ts"

/** One line of the ledger (see `pod.ts`). */
const LedgerLine = Schema.Union([
  Schema.Struct({
    k: Schema.Literals(["start", "end", "stop"]),
    e: Schema.String,
    s: Schema.String,
    a: Schema.Number,
    p: Schema.String,
    sh: Schema.NullOr(Schema.Number),
    ep: Schema.NullOr(Schema.Number),
    t: Schema.Number
  }),
  Schema.Struct({ k: Schema.Literals(["wf", "sig"]), e: Schema.String, t: Schema.Number }),
  Schema.Struct({
    k: Schema.Literals(["inc", "inc-ok"]),
    en: Schema.String,
    m: Schema.String,
    t: Schema.Number
  }),
  Schema.Struct({
    k: Schema.Literal("read"),
    en: Schema.String,
    inv: Schema.Number,
    v: Schema.Number,
    t: Schema.Number
  }),
  Schema.Struct({ k: Schema.Literal("echo"), ok: Schema.Boolean, t: Schema.Number })
])
type LedgerLine = typeof LedgerLine.Type

const decodeLine = Schema.decodeUnknownSync(Schema.fromJsonString(LedgerLine))

/** The ledger's lines; a line cut short by a SIGKILL mid-write is left out (only the last can be). */
export const readLedger = (file: string): ReadonlyArray<LedgerLine> => {
  const lines = readFileSync(file, "utf8").split("\n")
  const parsed: Array<LedgerLine> = []
  lines.forEach((line, index) => {
    if (line.length === 0) return
    try {
      parsed.push(decodeLine(line))
    } catch (error) {
      // A process killed in the middle of its append leaves a partial line; anything else is a bug.
      if (!line.startsWith("{") || line.endsWith("}")) throw new Error(`ledger line ${index + 1}: ${error}`)
    }
  })
  return parsed
}

/** An execution as the store has it after the heal, and when the runner first saw it end. */
export interface Ended {
  readonly executionId: string
  readonly status: "succeeded" | "failed" | "interrupted" | "suspended" | "running" | "sleeping"
  readonly output: string | undefined
  readonly at: number
}

/** The sender and its order of a counter increment's message id `p${pod}i${incarnation}s${sender}-${op}`. */
const senderOf = (messageId: string): { readonly sender: string; readonly seq: number } => {
  const match = /^p(\d+)i(\d+)s(\d+)-(\d+)$/.exec(messageId)
  if (match === null) throw new Error(`not an increment id: ${messageId}`)
  // Sender k of a pod in each of its processes: they are sequential, so (incarnation, op) orders its messages.
  return { sender: `pod-${match[1]}/s${match[3]}`, seq: Number(match[2]) * 1_000_000 + Number(match[4]) }
}

/**
 * The checkers' events. Attempts from the ledger; holdings of a shard derived from attempt
 * starts (from an epoch's first attempt start to its last in that pod: a lower bound of the
 * holding, so an overlap of two is a pod starting work on a shard another pod held). Attempt ends
 * are left out: see VERIFY.md's first finding.
 */
export const historyOf = (
  ledger: ReadonlyArray<LedgerLine>,
  ended: ReadonlyArray<Ended>,
  counters: Readonly<Record<string, ReadonlyArray<string>>>
): ReadonlyArray<HistoryEvent> => {
  const history: Array<HistoryEvent> = []
  const holdings = new Map<string, { shard: number; pod: string; epoch: number; from: number; to: number }>()
  const increments = new Map<string, { entity: string; invokedAt: number; ackedAt: number | undefined }>()
  for (const line of ledger) {
    switch (line.k) {
      case "wf":
        history.push({ type: "start-acked", executionId: line.e, at: line.t })
        break
      case "start": {
        history.push({
          type: "attempt",
          executionId: line.e,
          step: line.s,
          attempt: line.a,
          pod: line.p,
          at: line.t
        })
        if (line.sh === null || line.ep === null) break
        const key = `${line.sh}/${line.p}/${line.ep}`
        const holding = holdings.get(key) ?? {
          shard: line.sh,
          pod: line.p,
          epoch: line.ep,
          from: line.t,
          to: line.t
        }
        holding.from = Math.min(holding.from, line.t)
        holding.to = Math.max(holding.to, line.t)
        holdings.set(key, holding)
        break
      }
      case "inc":
        increments.set(line.m, { entity: line.en, invokedAt: line.t, ackedAt: undefined })
        break
      case "inc-ok": {
        const increment = increments.get(line.m)
        if (increment !== undefined) increment.ackedAt = line.t
        const { sender, seq } = senderOf(line.m)
        history.push({
          type: "message-acked",
          entity: line.en,
          messageId: line.m,
          sender,
          senderSeq: seq,
          at: line.t
        })
        break
      }
      case "read":
        history.push({
          type: "read",
          entity: line.en,
          invokedAt: line.inv,
          completedAt: line.t,
          value: line.v
        })
        break
    }
  }
  for (const increment of increments.values()) history.push({ type: "increment", ...increment })
  for (const holding of holdings.values()) {
    history.push({
      type: "acquire",
      shard: holding.shard,
      pod: holding.pod,
      epoch: holding.epoch,
      at: holding.from
    })
    history.push({
      type: "release",
      shard: holding.shard,
      pod: holding.pod,
      epoch: holding.epoch,
      at: holding.to
    })
  }
  for (const row of ended) {
    history.push({ type: "ended", executionId: row.executionId, status: row.status, at: row.at })
  }
  // The order each counter applied its increments in (its state), as processing events.
  for (const [entity, applied] of Object.entries(counters)) {
    applied.forEach((messageId, index) => {
      const { sender, seq } = senderOf(messageId)
      history.push({ type: "processed", entity, messageId, sender, senderSeq: seq, pod: "-", at: index })
    })
  }
  return history
}

/**
 * What the checkers of `checkers.ts` do not cover: a volatile ask answered with another text, and
 * an execution whose result carries a signal value other than the one sent (or none though the
 * signal was accepted before it could time out is allowed: the wait has a deadline).
 */
export const checkReplies = (
  ledger: ReadonlyArray<LedgerLine>,
  ended: ReadonlyArray<Ended>
): ReadonlyArray<Anomaly> => {
  const found: Array<Anomaly> = []
  for (const line of ledger) {
    if (line.k === "echo" && !line.ok) {
      found.push({
        checker: "replies",
        message: `a volatile ask was answered with another text at ${line.t}`
      })
    }
  }
  for (const row of ended) {
    const signalled = row.output === undefined ? undefined : /\|signal=([^|]*)\|/.exec(row.output)?.[1]
    if (
      signalled !== undefined &&
      signalled !== "-" &&
      signalled !== "none" &&
      signalled !== `go-${row.executionId}`
    ) {
      found.push({
        checker: "replies",
        message: `execution ${row.executionId} received the signal value ${signalled}, not go-${row.executionId}`
      })
    }
  }
  return found
}
