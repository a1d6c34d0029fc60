/**
 * The runner's history (`verify/history.ts`): a ledger as the pods write it and the counters'
 * applied increments become the checkers' events, so an anomaly in what the cluster did reaches a
 * checker: a counter that applied an increment twice or out of its sender's order, an
 * acknowledged increment it never applied, a signal value that is not the one sent, a volatile ask
 * answered with another text.
 */
import { appendFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { checkAll } from "../../verify/checkers.ts"
import { checkReplies, type Ended, historyOf, readLedger } from "../../verify/history.ts"
import { testTempDir } from "../support/tempDir.ts"

const lines = [
  { k: "wf", e: "p0i0s0-0", t: 100 },
  { k: "start", e: "p0i0s0-0", s: "reserve", a: 1, p: "pod-0", sh: 3, ep: 1, t: 101 },
  { k: "start", e: "p0i0s0-0", s: "charge", a: 1, p: "pod-0", sh: 3, ep: 1, t: 130 },
  { k: "inc", en: "counter-1", m: "p0i0s1-0", t: 102 },
  { k: "inc-ok", en: "counter-1", m: "p0i0s1-0", t: 104 },
  { k: "inc", en: "counter-1", m: "p0i0s1-1", t: 105 },
  { k: "inc-ok", en: "counter-1", m: "p0i0s1-1", t: 107 },
  { k: "read", en: "counter-1", inv: 108, v: 2, t: 110 },
  // A second process of pod 0: its sender 1 goes on after the first process's messages.
  { k: "inc", en: "counter-1", m: "p0i1s1-0", t: 200 },
  { k: "inc-ok", en: "counter-1", m: "p0i1s1-0", t: 202 },
  { k: "echo", ok: true, t: 203 }
]

const ended: ReadonlyArray<Ended> = [
  {
    executionId: "p0i0s0-0",
    status: "succeeded",
    output: '{"value":"x|signal=go-p0i0s0-0|child=-"}',
    at: 300
  }
]

const check = (file: string, applied: ReadonlyArray<string>, rows: ReadonlyArray<Ended> = ended) => {
  const ledger = readLedger(file)
  return [
    ...checkAll(historyOf(ledger, rows, { "counter-1": applied }), { healedAt: 250, boundMillis: 1_000 }),
    ...checkReplies(ledger, rows)
  ].map((found) => `${found.checker}: ${found.message}`)
}

describe("the runner's history", () => {
  const ledgerFile = () => {
    const file = join(testTempDir("verify-history-"), "ledger.jsonl")
    // The last line cut short, as a SIGKILL in the middle of an append leaves it.
    writeFileSync(file, `${lines.map((line) => JSON.stringify(line)).join("\n")}\n{"k":"inc","en":"coun`)
    return file
  }

  it("a run as it should be: no anomaly", () => {
    expect(check(ledgerFile(), ["p0i0s1-0", "p0i0s1-1", "p0i1s1-0"])).toEqual([])
  })

  it("an increment applied twice", () => {
    expect(check(ledgerFile(), ["p0i0s1-0", "p0i0s1-0", "p0i0s1-1", "p0i1s1-0"])).toEqual([
      expect.stringMatching(/^exactly once: message p0i0s1-0 to counter-1 was processed twice/)
    ])
  })

  it("a sender's increments applied out of order, across its processes too", () => {
    expect(check(ledgerFile(), ["p0i0s1-1", "p0i0s1-0", "p0i1s1-0"])).toEqual([
      expect.stringMatching(/^order: counter-1 processed message 0 of pod-0\/s1 after its message 1/)
    ])
    expect(check(ledgerFile(), ["p0i0s1-0", "p0i1s1-0", "p0i0s1-1"])).toEqual([
      expect.stringMatching(/^order: counter-1 processed message 1 of pod-0\/s1 after its message 1000000/)
    ])
  })

  it("an acknowledged increment never applied, which the read also contradicts", () => {
    expect(check(ledgerFile(), ["p0i0s1-0", "p0i1s1-0"])).toEqual([
      expect.stringMatching(/^lost: message p0i0s1-1 to counter-1, acknowledged at 107, was never processed/)
    ])
  })

  it("a read that missed an acknowledged increment", () => {
    const file = ledgerFile()
    appendFileSync(file, `\n${JSON.stringify({ k: "read", en: "counter-1", inv: 203, v: 2, t: 205 })}\n`)
    expect(check(file, ["p0i0s1-0", "p0i0s1-1", "p0i1s1-0"])).toEqual([
      expect.stringMatching(
        /^linearizability: counter-1 read 2 \(invoked 203, answered 205\); it had to lie in \[3, 3\]/
      )
    ])
  })

  it("another signal value, a wrong echo, an execution that never ended", () => {
    const file = ledgerFile()
    appendFileSync(file, `\n${JSON.stringify({ k: "echo", ok: false, t: 204 })}\n`)
    const rows: ReadonlyArray<Ended> = [
      { ...ended[0]!, output: '{"value":"x|signal=go-other|child=-"}' },
      { executionId: "p0i0s0-9", status: "running", output: undefined, at: Number.POSITIVE_INFINITY }
    ]
    appendFileSync(file, `${JSON.stringify({ k: "wf", e: "p0i0s0-9", t: 210 })}\n`)
    expect(check(file, ["p0i0s1-0", "p0i0s1-1", "p0i1s1-0"], rows)).toEqual([
      expect.stringMatching(/^lost: execution p0i0s0-9, acknowledged at 210, never ended \(running\)/),
      expect.stringMatching(/^replies: a volatile ask was answered with another text/),
      expect.stringMatching(/^replies: execution p0i0s0-0 received the signal value go-other/)
    ])
  })
})
