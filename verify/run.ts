/**
 * `npm run verify` (issue #20): a cluster of pods as child processes (`pod.ts`: workflows with
 * activities, durable sleeps, signals and child workflows; persisted counters and volatile
 * entities; 4 senders per pod) on one SQLite file or one PostgreSQL database, while a nemesis
 * injects the faults of a seeded schedule (`schedule.ts`: SIGKILL and a new process, SIGSTOP past
 * the lease and SIGCONT, SIGTERM and a new process; on PostgreSQL also `pg_terminate_backend` of
 * the pods' sessions and a restart of the server). Then the faults and the workload stop, every
 * pod runs, and once every acknowledged execution ended (or a bound passed) the counters are read
 * and the checkers (`checkers.ts`, over `history.ts`) read the history: nothing lost, no attempt
 * twice, no two pods running one shard at once, exactly once and in order per counter,
 * linearizable counters, intact replies, liveness after the heal.
 *
 * Options: `--seed S` (default: random, printed), `--seconds N` or `--minutes M` of faults
 * (default 30 s), `--backend sqlite|postgres` (default sqlite; PostgreSQL is started from the
 * machine's binaries or the npm ones, as the tests do), `--pods N` (default 3). Prints a summary
 * (and a `verify-summary {json}` line); exits 1 with the seed and the schedule when a checker finds
 * an anomaly.
 */
import { cpSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { parseArgs } from "node:util"
import { Effect, Layer, ManagedRuntime, Schema } from "effect"
import { DurableExecutionJournal, SqliteJournal } from "effect-cluster"
import { PostgresJournal } from "effect-cluster/postgres"
import { startPostgres } from "../test/support/PostgresServer.ts"
import * as SmallDisk from "../test/support/SmallDisk.ts"
import { type Anomaly, checkAll, type HistoryEvent } from "./checkers.ts"
import * as Cluster from "./cluster.ts"
import { checkReplies, type Ended, historyOf, readLedger } from "./history.ts"
import { inject } from "./nemesis.ts"
import {
  describeFault,
  type Fault,
  isStoreWide,
  POSTGRES_FAULTS,
  SQLITE_FAULTS,
  schedule
} from "./schedule.ts"

const Options = Schema.Struct({
  seed: Schema.optional(Schema.NumberFromString.check(Schema.isInt())),
  seconds: Schema.optional(Schema.NumberFromString.check(Schema.isGreaterThan(0))),
  minutes: Schema.optional(Schema.NumberFromString.check(Schema.isGreaterThan(0))),
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
      minutes: { type: "string" },
      backend: { type: "string" },
      pods: { type: "string" }
    }
  }).values
)

const seed = options.seed ?? Math.floor(Math.random() * 2 ** 31)
const durationMillis =
  options.minutes !== undefined ? options.minutes * 60_000 : (options.seconds ?? 30) * 1000
const podCount = options.pods ?? 3
const backend = options.backend ?? "sqlite"
const LEASE = 3_000
/** Operations each pod submits per second (see `pod.ts`: 40% of them start an execution). */
const RATE = 40
/** The counters the pods increment and read. */
const COUNTERS = 12
/** The size of the SQLite profile's disk: its store, and room to fill. */
const DISK_BYTES = 1024 * 1024 * 1024
/** Runs this long or longer include the hostile sender (its attacks take 20–40 s each). */
const HOSTILE_MIN_MILLIS = 60_000
/** How long after the last fault healed every execution must have ended. */
const LIVENESS_MILLIS = 30_000

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

const main = async () => {
  // The SQLite profile keeps its store on a small disk of its own (the disk-full fault), which
  // needs a mount namespace: the runner runs itself again in one (`SmallDisk`).
  if (backend === "sqlite") await SmallDisk.reexecInNamespace()
  const faults = schedule(seed, {
    durationMillis,
    pods: podCount,
    leaseMillis: LEASE,
    kinds: backend === "postgres" ? POSTGRES_FAULTS : SQLITE_FAULTS,
    hostile: durationMillis >= HOSTILE_MIN_MILLIS
  })
  console.log(`verify: seed ${seed}, ${backend}, ${podCount} pods, ${durationMillis / 1000} s of faults`)
  const dir = mkdtempSync(join(tmpdir(), "effect-cluster-verify-"))
  const ledgerFile = join(dir, "ledger.jsonl")
  writeFileSync(ledgerFile, "")
  const server = backend === "postgres" ? await startPostgres() : undefined
  const disk = backend === "sqlite" ? SmallDisk.mount({ sizeBytes: DISK_BYTES }) : undefined
  const store = server?.url ?? join(disk!.path, "journal.db")
  const started = Date.now()
  const until = started + durationMillis
  const anomalies: Array<Anomaly> = []
  let crashed = false
  const injected = new Map<string, number>()
  let cluster: Cluster.Cluster | undefined
  try {
    cluster = await Cluster.start({
      pods: podCount,
      store,
      ledger: ledgerFile,
      workload: { seed, perSecond: RATE, counters: COUNTERS, leaseMillis: LEASE, until }
    })
    const pods = cluster.pods
    // Each fault at its moment, healed after its duration: several may be under way at once. A
    // fault of the whole store waits until none is under way, and no other starts while it is (a
    // server restart takes longer than its scheduled pause); faults of one pod wait for each other.
    const findings: Array<string> = []
    const target = { cluster, server, disk, store, seed, findings }
    const underWay = new Set<Promise<void>>()
    /** The store-wide fault under way (or the last one), and whether it is under way. */
    let storeWide: Promise<void> = Promise.resolve()
    let storeWideRunning = false
    /** Per pod, its fault under way or queued (a restart lasts until the new process is ready). */
    const podBusy = new Map<number, Promise<void>>()
    const run = (fault: Fault) => {
      const injecting = inject(target, fault)
      underWay.add(injecting)
      return injecting.finally(() => underWay.delete(injecting))
    }
    await Promise.all(
      faults.map(async (fault) => {
        await sleep(started + fault.at - Date.now())
        while (storeWideRunning) await storeWide
        console.log(`  ${describeFault(fault)}`)
        injected.set(fault.kind, (injected.get(fault.kind) ?? 0) + 1)
        if (isStoreWide(fault.kind)) {
          const previous = storeWide
          storeWide = (async () => {
            await previous.catch(() => {})
            // Synchronously from the last check to the start: no pod fault slips in between.
            while (underWay.size > 0) await Promise.all(underWay)
            storeWideRunning = true
            try {
              await run(fault)
            } finally {
              storeWideRunning = false
            }
          })()
          return storeWide
        }
        const mine = (podBusy.get(fault.pod) ?? Promise.resolve()).then(async () => {
          // The check and the start in one synchronous step: no store-wide fault slips in between.
          while (storeWideRunning) await storeWide
          return run(fault)
        })
        podBusy.set(fault.pod, mine)
        return mine
      })
    )
    const remaining = until - Date.now()
    if (remaining > 0) await sleep(remaining)
    const healedAt = Date.now()
    // The workload ends on every pod (a pod slowed by a fault may still be submitting).
    await Promise.all(
      pods.map((pod) => pod.child!.waitFor((message) => message.done === true, LIVENESS_MILLIS))
    )
    const acked = new Set(readLedger(ledgerFile).flatMap((line) => (line.k === "wf" ? [line.e] : [])))
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
    const finished = (row: DurableExecutionJournal.ExecutionRecord) =>
      row.status !== "running" && row.status !== "sleeping"
    let stored = await rows()
    while (Date.now() < healedAt + LIVENESS_MILLIS * 2) {
      for (const row of stored)
        if (finished(row) && !endedAt.has(row.executionId)) endedAt.set(row.executionId, Date.now())
      const ids = new Set(stored.map((row) => row.executionId))
      if ([...acked].every((id) => ids.has(id)) && stored.every(finished)) break
      await sleep(250)
      stored = await rows()
    }
    await runtime.dispose()
    // The counters' applied increments, read through a pod (their entities answer `Dump`).
    const reader = pods[0]!.child!
    reader.skipReceived()
    reader.send({ dump: COUNTERS })
    const dumped = await reader.waitFor(
      (message) => message.dump !== undefined || message.dumpError !== undefined,
      2 * LIVENESS_MILLIS
    )
    if (dumped.dump === undefined) throw new Error(`the counters could not be read: ${dumped.dumpError}`)
    const ledger = readLedger(ledgerFile)
    const ended: Array<Ended> = stored.map((row) => ({
      executionId: row.executionId,
      status: row.status,
      output: row.result ?? undefined,
      at: endedAt.get(row.executionId) ?? Number.POSITIVE_INFINITY
    }))
    const history = historyOf(ledger, ended, dumped.dump)
    anomalies.push(
      ...checkAll(history, { healedAt, boundMillis: LIVENESS_MILLIS }),
      ...checkReplies(ledger, ended),
      ...cluster.unexpectedExits().map((message) => ({ checker: "pods", message })),
      ...cluster.recoveries(),
      ...findings.map((message) => ({ checker: "hostile", message }))
    )
    const count = (type: HistoryEvent["type"]) => history.filter((event) => event.type === type).length
    const summary = {
      executions: acked.size,
      stored: stored.length,
      attempts: count("attempt"),
      increments: count("increment"),
      incrementsAcked: count("message-acked"),
      reads: count("read"),
      asks: ledger.filter((line) => line.k === "echo").length,
      signals: ledger.filter((line) => line.k === "sig").length,
      faults: Object.fromEntries(injected),
      anomalies: anomalies.length
    }
    console.log(
      `verify: ${summary.executions} executions acknowledged (${summary.stored} stored with their children), ` +
        `${summary.attempts} activity attempts, ${summary.increments} increments (${summary.incrementsAcked} acknowledged), ` +
        `${summary.reads} reads, ${summary.asks} volatile asks, ${summary.signals} signals; ` +
        `faults: ${[...injected].map(([kind, n]) => `${n} ${kind}`).join(", ") || "none"}; ${anomalies.length} anomalies`
    )
    console.log(`verify-summary ${JSON.stringify(summary)}`)
  } catch (error) {
    // The run itself failed (a pod never ready, a read that never answered): keep what it saw.
    crashed = true
    throw error
  } finally {
    const keep = anomalies.length > 0 || crashed
    if (keep) cluster?.saveLogs(dir)
    await cluster?.dispose()
    await server
      ?.dispose()
      .catch((error) => console.log(`verify: the PostgreSQL server did not stop cleanly: ${error}`))
    if (disk !== undefined) {
      disk.free()
      if (keep) {
        for (const file of readdirSync(disk.path)) {
          cpSync(join(disk.path, file), join(dir, file), { recursive: true })
        }
      }
      disk.unmount()
    }
    // A failing run keeps its ledger and store for a look.
    if (!keep) rmSync(dir, { recursive: true, force: true })
    else console.log(`verify: the ledger and the store are kept in ${dir}`)
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

main().catch((error) => {
  console.error(error)
  process.exit(2)
})
