/**
 * `npm run counter`: the talk's Counter entity on three pods (child processes) sharing the embedded
 * store (`.data/counter.db`), or PostgreSQL with `-- --postgres URL`.
 *
 * Two pods, north and south, send 1,000 Increment/Decrement messages to 20 counters (each message
 * once, by id). Mid-stream the supervisor SIGKILLs east, which owns a third of the counters; their
 * shards move to the survivors, then east comes back and gets its share again. At the end north
 * asks every counter for its count (`GetCurrent`) and the supervisor compares them with what the
 * messages add up to: exact, because each message's effect on the count is stored with its
 * processed mark in one transaction.
 */

import * as ChildProcess from "node:child_process"
import { mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { join, resolve } from "node:path"
import { parseArgs } from "node:util"
import { Schema } from "effect"
import * as Lines from "../shared/lines.ts"
import { dropTables, resetSqlite } from "../shared/reset.ts"
import { expectedCounts } from "./counter.ts"

const COUNTERS = 20
const TOTAL = 1_000
const TABLE_PREFIX = "counter_demo_"

const say = (line: string) => console.log(line)
const fail = (message: string): never => {
  console.error(`✘ ${message}`)
  process.exit(2)
}

const Args = Schema.Struct({
  postgres: Schema.optional(Schema.String.check(Schema.isPattern(/^postgres(ql)?:\/\/\S+$/))),
  data: Schema.optional(Schema.NonEmptyString)
})
const args = (() => {
  try {
    const { values } = parseArgs({
      args: process.argv.slice(2),
      options: { postgres: { type: "string" }, data: { type: "string" } },
      strict: true
    })
    return Schema.decodeUnknownSync(Args)(values)
  } catch (error) {
    return fail(
      `bad arguments: ${error instanceof Error ? error.message : String(error)}\nusage: npm run counter [-- --postgres URL]`
    )
  }
})()
const data = resolve(args.data ?? ".data")
mkdirSync(data, { recursive: true })
const location = args.postgres ?? join(data, "counter.db")
const ledger = join(data, "counter-ledger.jsonl")
writeFileSync(ledger, "")
if (args.postgres === undefined) resetSqlite(location)
else await dropTables(args.postgres, TABLE_PREFIX).catch((error) => fail(`cannot reach PostgreSQL: ${error}`))

interface Line {
  readonly ready?: string
  readonly sent?: number
  readonly counts?: Record<string, number>
  readonly latency?: { readonly remote: ReadonlyArray<number>; readonly local: ReadonlyArray<number> }
  readonly error?: string
}

/** A pod as a child process, with ways to wait for its JSON lines. */
const startPod = (podId: string, send?: { readonly from: number; readonly count: number }) => {
  const child = ChildProcess.spawn(
    process.execPath,
    [
      ...process.execArgv,
      join(import.meta.dirname, "pod.ts"),
      JSON.stringify({
        store: location,
        tablePrefix: args.postgres === undefined ? undefined : TABLE_PREFIX,
        podId,
        leaseTtlMillis: 3_000,
        shardCount: 30,
        ledger,
        handleMillis: 2,
        send: send === undefined ? undefined : { ...send, counters: COUNTERS, perSecond: 200 }
      })
    ],
    { stdio: ["pipe", "pipe", "inherit"] }
  )
  const lines = Lines.make<Line>()
  let buffer = ""
  child.stdout.on("data", (chunk: Buffer) => {
    buffer += chunk.toString()
    let newline = buffer.indexOf("\n")
    while (newline >= 0) {
      const text = buffer.slice(0, newline)
      buffer = buffer.slice(newline + 1)
      newline = buffer.indexOf("\n")
      let line: Line
      try {
        line = JSON.parse(text)
      } catch {
        continue
      }
      if ("level" in line && (line as { level: string }).level !== "INFO") console.log(`  [${podId}] ${text}`)
      lines.push(line)
    }
  })
  const exited = new Promise<void>((done) =>
    child.on("exit", () => {
      lines.close(new Error(`pod ${podId} exited`))
      done()
    })
  )
  // `reached`: a line printed while the supervisor was busy elsewhere (restarting east) counts.
  return { child, reached: lines.reached, next: lines.next, exited }
}

const pods: Array<ReturnType<typeof startPod>> = []
process.on("exit", () => {
  for (const pod of pods) pod.child.kill("SIGKILL")
})
const start = async (podId: string, send?: { readonly from: number; readonly count: number }) => {
  const pod = startPod(podId, send)
  pods.push(pod)
  await pod.reached((line) => line.ready !== undefined)
  say(
    `▶ ${podId} is up${send === undefined ? "" : `, sending messages ${send.from}..${send.from + send.count - 1}`}`
  )
  return pod
}

say(
  `The Counter entity on ${args.postgres === undefined ? location : `PostgreSQL (tables ${TABLE_PREFIX}*)`}\n`
)
const east = await start("east")
const north = await start("north", { from: 0, count: TOTAL / 2 })
const south = await start("south", { from: TOTAL / 2, count: TOTAL / 2 })
await north.reached((line) => (line.sent ?? 0) >= 150)
say("💥 SIGKILL east mid-stream: its counters move to north and south")
east.child.kill("SIGKILL")
await east.exited
await north.reached((line) => (line.sent ?? 0) >= 300)
await start("east")
say("  east is back: the shard manager hands some counters back to it")
await north.reached((line) => line.sent === TOTAL / 2)
await south.reached((line) => line.sent === TOTAL / 2)
say(`✔ ${TOTAL} messages accepted (each one durably stored before its send returned)`)

// Asked until every message has been processed (the last ones may still be on their way).
const expected = expectedCounts(TOTAL, COUNTERS)
let counts: Record<string, number> | undefined
let latency: Line["latency"]
for (let attempt = 0; attempt < 50; attempt++) {
  north.child.stdin.write(`${JSON.stringify({ get: COUNTERS })}\n`)
  const answer = await north.next((line) => line.counts !== undefined || line.error !== undefined)
  if (answer.error !== undefined) fail(`GetCurrent failed: ${answer.error}`)
  counts = answer.counts!
  latency = answer.latency
  if (Object.keys(expected).every((id) => counts![id] === expected[id])) break
  await new Promise((done) => setTimeout(done, 200))
}
say("\ncounter     expected  GetCurrent")
for (const id of Object.keys(expected)) {
  say(`${id.padEnd(12)}${String(expected[id]).padStart(8)}  ${String(counts?.[id]).padStart(10)}`)
}
const runs = new Map<string, Array<string>>()
for (const text of readFileSync(ledger, "utf8")
  .split("\n")
  .filter((l) => l.length > 0)) {
  const { m, p } = JSON.parse(text) as { readonly m: string; readonly p: string }
  runs.set(m, [...(runs.get(m) ?? []), p])
}
const again = [...runs.values()].filter((ps) => ps.length > 1).length
say(
  `\n${runs.size} messages handled; ${again} handled again after the kill (they were in east's hands; only one of their runs counted)`
)
/** "n asks, p50 … ms, slowest … ms" of a list of latencies. */
const describeLatency = (millis: ReadonlyArray<number> = []) => {
  const sorted = [...millis].sort((a, b) => a - b)
  if (sorted.length === 0) return "none"
  const p50 = sorted[Math.floor(sorted.length / 2)]!
  return `${sorted.length} asks, p50 ${p50.toFixed(2)} ms, slowest ${sorted[sorted.length - 1]!.toFixed(2)} ms`
}
// One more round, the counters idle now: what an ask costs, to another pod and to this one.
north.child.stdin.write(`${JSON.stringify({ get: COUNTERS })}\n`)
latency = (await north.next((line) => line.counts !== undefined || line.error !== undefined)).latency
say(
  `\nnorth's GetCurrent asks, to counters on other pods (over the network): ${describeLatency(latency?.remote)}`
)
say(`                    to counters on north itself:                 ${describeLatency(latency?.local)}`)
const exact = Object.keys(expected).every((id) => counts?.[id] === expected[id])
for (const pod of pods) pod.child.kill("SIGTERM")
await Promise.all(pods.map((pod) => pod.exited))
if (!exact) fail("the counts differ from what the messages add up to")
say("✔ every count is exact")
