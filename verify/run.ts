/**
 * `npm run verify` (issue #20, first profile): a cluster of pods as child processes
 * (`test/cluster/pod.ts`: `Order` workflows of two activities that append every attempt to a ledger
 * outside the store) on one SQLite file or one PostgreSQL database, every pod submitting
 * executions, while a nemesis injects the faults of a seeded schedule (`schedule.ts`: SIGKILL and a
 * new process, SIGSTOP past the lease and SIGCONT, SIGTERM and a new process; on PostgreSQL also
 * `pg_terminate_backend` of the pods' sessions and a restart of the server). Then the faults
 * stop, every pod runs, and once every acknowledged execution ended (or a bound passed) the
 * checkers (`checkers.ts`) read the history: nothing lost, no attempt twice, no two pods running
 * one shard at once, liveness after the heal.
 *
 * Options: `--seed S` (default: random, printed), `--seconds N` of faults (default 30),
 * `--backend sqlite|postgres` (default sqlite; PostgreSQL is started from the machine's binaries
 * or the npm ones, as the tests do), `--pods N` (default 3). Exits 1 with the seed and the
 * schedule when a checker finds an anomaly.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { parseArgs } from "node:util"
import { Effect, Layer, ManagedRuntime, Schema } from "effect"
import { SqlClient } from "effect/sql/SqlClient"
import { DurableExecutionJournal, SqliteJournal } from "effect-cluster"
import { PostgresJournal } from "effect-cluster/postgres"
import * as ChildPod from "../test/support/ChildPod.ts"
import { startPostgres } from "../test/support/PostgresServer.ts"
import { type Anomaly, checkAll, type HistoryEvent } from "./checkers.ts"
import { describeFault, type Fault, POD_FAULTS, POSTGRES_FAULTS, schedule } from "./schedule.ts"

const Options = Schema.Struct({
  seed: Schema.optional(Schema.NumberFromString.check(Schema.isInt())),
  seconds: Schema.optional(Schema.NumberFromString.check(Schema.isGreaterThan(0))),
  backend: Schema.optional(Schema.Literals(["sqlite", "postgres"])),
  pods: Schema.optional(
    Schema.NumberFromString.check(Schema.isInt(), Schema.isBetween({ minimum: 1, maximum: 8 }))
  )
})
const options = Schema.decodeUnknownSync(Options)(
  parseArgs({
    args: process.argv.slice(2),
    options: {
      seed: { type: "string" },
      seconds: { type: "string" },
      backend: { type: "string" },
      pods: { type: "string" }
    }
  }).values
)

const seed = options.seed ?? Math.floor(Math.random() * 2 ** 31)
const durationMillis = (options.seconds ?? 30) * 1000
const podCount = options.pods ?? 3
const backend = options.backend ?? "sqlite"
const LEASE = 3_000
/** Executions each pod submits per second. */
const RATE = 20
/** How long after the last fault healed every execution must have ended. */
const LIVENESS_MILLIS = 30_000

interface PodMessage {
  readonly ready?: string
  readonly submitted?: number
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

const main = async () => {
  const faults = schedule(seed, {
    durationMillis,
    pods: podCount,
    leaseMillis: LEASE,
    kinds: backend === "postgres" ? POSTGRES_FAULTS : POD_FAULTS
  })
  console.log(`verify: seed ${seed}, ${backend}, ${podCount} pods, ${durationMillis / 1000} s of faults`)
  const dir = mkdtempSync(join(tmpdir(), "effect-cluster-verify-"))
  const ledger = join(dir, "ledger.jsonl")
  writeFileSync(ledger, "")
  const server = backend === "postgres" ? await startPostgres() : undefined
  const store = server?.url ?? join(dir, "journal.db")
  const started = Date.now()
  /** Per pod: its process and how many of its executions were acknowledged so far. */
  const pods = Array.from({ length: podCount }, () => ({
    child: undefined as ChildPod.ChildPod<PodMessage> | undefined,
    acked: 0,
    ackedBefore: 0
  }))
  const spawn = async (index: number) => {
    const pod = pods[index]!
    pod.ackedBefore = pod.acked
    const left = Math.max(0, Math.ceil(((durationMillis - (Date.now() - started)) / 1000) * RATE))
    const child = ChildPod.spawn<PodMessage>("test/cluster/pod.ts", {
      args: [
        JSON.stringify({
          store,
          ledger,
          podId: `pod-${index}`,
          leaseTtlMillis: LEASE,
          activityMillis: 20,
          submit: { prefix: `p${index}`, from: pod.acked, count: left, perSecond: RATE }
        })
      ]
    })
    pod.child = child
    await child.waitFor((message) => message.ready !== undefined, 60_000)
  }
  /** The executions of pod `index` acknowledged so far (its `submitted` lines). */
  const refreshAcked = () => {
    for (const pod of pods) {
      const submitted = pod.child?.messages.filter((m) => m.submitted !== undefined).at(-1)?.submitted ?? 0
      pod.acked = Math.max(pod.acked, pod.ackedBefore + submitted)
    }
  }
  const anomalies: Array<Anomaly> = []
  try {
    await Promise.all(pods.map((_, index) => spawn(index)))
    for (const fault of faults) {
      const wait = started + fault.at - Date.now()
      if (wait > 0) await sleep(wait)
      refreshAcked()
      const child = pods[fault.pod]!.child!
      console.log(`  ${describeFault(fault)}`)
      if (fault.kind === "terminate") {
        await terminateSessions(server!.url)
      } else if (fault.kind === "db-restart") {
        await server!.stop()
        await sleep(fault.millis)
        await server!.start()
      } else if (fault.kind === "pause") {
        child.kill("SIGSTOP")
        await sleep(fault.millis)
        child.kill("SIGCONT")
      } else {
        child.kill(fault.kind === "kill" ? "SIGKILL" : "SIGTERM")
        await child.exited
        refreshAcked()
        await sleep(fault.millis)
        await spawn(fault.pod)
      }
    }
    const remaining = started + durationMillis - Date.now()
    if (remaining > 0) await sleep(remaining)
    const healedAt = Date.now()
    refreshAcked()
    const expected = pods.reduce((sum, pod) => sum + pod.acked, 0)
    const runtime = ManagedRuntime.make(
      Layer.fresh(
        backend === "postgres"
          ? PostgresJournal.layer({ url: store })
          : SqliteJournal.layer({ filename: store })
      ) as Layer.Layer<DurableExecutionJournal.DurableExecutionJournal, unknown>
    )
    const rows = async () =>
      runtime.runPromise(
        Effect.gen(function* () {
          const journal = yield* DurableExecutionJournal.DurableExecutionJournal
          const all: Array<DurableExecutionJournal.ExecutionRecord> = []
          let after: string | undefined
          while (true) {
            const page = yield* journal.list({ after, limit: 1000 })
            all.push(...page)
            if (page.length < 1000) return all
            after = page[page.length - 1]!.executionId
          }
        })
      )
    const endedAt = new Map<string, number>()
    let stored = await rows()
    while (Date.now() < healedAt + LIVENESS_MILLIS * 2) {
      for (const row of stored)
        if (row.status === "succeeded" && !endedAt.has(row.executionId))
          endedAt.set(row.executionId, Date.now())
      if (endedAt.size >= expected && stored.every((row) => row.status === "succeeded")) break
      await sleep(250)
      stored = await rows()
    }
    await runtime.dispose()
    const history = historyOf(
      pods.map((pod) => pod.acked),
      stored,
      endedAt,
      ledger
    )
    anomalies.push(...checkAll(history, { healedAt, boundMillis: LIVENESS_MILLIS }))
    const attempts = history.filter((event) => event.type === "attempt").length
    console.log(
      `verify: ${expected} executions acknowledged, ${stored.length} stored, ${attempts} activity attempts, ${faults.length} faults, ${anomalies.length} anomalies`
    )
  } finally {
    for (const pod of pods) await pod.child?.dispose()
    await server?.dispose()
    rmSync(dir, { recursive: true, force: true })
  }
  if (anomalies.length > 0) {
    for (const found of anomalies.slice(0, 20)) console.log(`  ${found.checker}: ${found.message}`)
    console.log(
      `verify FAILED: seed ${seed}; replay with npm run verify -- --seed ${seed} --seconds ${durationMillis / 1000} --backend ${backend} --pods ${podCount}`
    )
    console.log(`schedule:\n${faults.map((fault: Fault) => `  ${describeFault(fault)}`).join("\n")}`)
    process.exit(1)
  }
}

/** Ends every other session of the server (the pods'): `pg_terminate_backend`. */
const terminateSessions = async (url: string) => {
  const runtime = ManagedRuntime.make(PostgresJournal.clientLayer({ url, maxConnections: 1 }))
  try {
    await runtime.runPromise(
      Effect.flatMap(
        SqlClient,
        (sql) =>
          sql`SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'`
      )
    )
  } finally {
    await runtime.dispose()
  }
}

/** The checkers' history from what the run recorded: the acknowledgements, the store, the ledger. */
const historyOf = (
  acked: ReadonlyArray<number>,
  stored: ReadonlyArray<DurableExecutionJournal.ExecutionRecord>,
  endedAt: ReadonlyMap<string, number>,
  ledger: string
): ReadonlyArray<HistoryEvent> => {
  const history: Array<HistoryEvent> = []
  acked.forEach((count, index) => {
    for (let i = 0; i < count; i++)
      history.push({ type: "start-acked", executionId: `p${index}-${i}`, at: 0 })
  })
  for (const row of stored) {
    history.push({
      type: "ended",
      executionId: row.executionId,
      status: row.status,
      at: endedAt.get(row.executionId) ?? 0
    })
  }
  const lines = readFileSync(ledger, "utf8")
    .split("\n")
    .filter((line) => line.length > 0)
    .map(
      (line) =>
        JSON.parse(line) as {
          k: string
          e: string
          s: string
          a: number
          p: string
          sh: number
          ep: number
          t: number
        }
    )
  // Who ran a shard when, as far as the attempts show: from an epoch's first attempt start to its
  // last attempt start in that pod (a lower bound of the holding: an overlap of these is a pod
  // starting work on a shard another pod holds). Attempt ends are left out: a pod frozen past its
  // lease in the middle of an attempt finishes that attempt's body when it resumes, before its
  // watchdog stops it (its outcome is then refused: the fence); see VERIFY.md.
  const holdings = new Map<string, { shard: number; pod: string; epoch: number; from: number; to: number }>()
  for (const line of lines) {
    if (line.k !== "start") continue
    history.push({
      type: "attempt",
      executionId: line.e,
      step: line.s,
      attempt: line.a,
      pod: line.p,
      at: line.t
    })
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
  }
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
  return history
}

main().catch((error) => {
  console.error(error)
  process.exit(2)
})
