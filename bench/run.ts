/**
 * `npm run bench`: throughput of a 3-activity workflow on memory and on the embedded store, at
 * concurrency 1 and 100, next to the raw single-row commit rate of the same SQLite setup measured
 * in the same run (the physical ceiling); then the same on PostgreSQL (`bench/postgres.ts`).
 * Figures are ratios to the ceilings; machines are noisy.
 *
 * Options (decoded from argv): `--quick` runs fewer executions; `--postgres URL` uses that server
 * instead of starting a throwaway one; `--only postgres|sqlite|sleep|skip|peers` runs one part.
 * The sleep part (`bench/sleep.ts`) drains 10,000 executions that each sleep 1 s, on every
 * backend; the skip part (`bench/timeSkip.ts`) measures the real time of `WorkflowTest` tests that
 * skip days. The entities part (`bench/entities.ts`) measures the talk's counter entity through
 * the messenger (volatile beside effect's own `Entity`; persisted on SQLite and PostgreSQL beside
 * the entity store's writes alone, `bench/entityStore.ts`). `--peers` adds the peer baseline
 * (`bench/baseline.ts`): effect's own workflow engine and DBOS Transact beside ours on the same
 * PostgreSQL server; `--only peers` runs it alone.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { DatabaseSync } from "node:sqlite"
import { parseArgs } from "node:util"
import { Effect, Layer, Schema } from "effect"
import { DurableExecutionJournal, MemoryJournal, ShardId } from "effect-cluster"
import * as SqliteClient from "../src/storage/sqlite/SqliteClient.ts"
import * as SqliteJournal from "../src/storage/sqlite/SqliteJournal.ts"
import { baselineBench } from "./baseline.ts"
import { entitiesBench } from "./entities.ts"
import { entitiesBaselineBench } from "./entitiesBaseline.ts"
import { failoverBench } from "./failover.ts"
import { idleGroupCommitBench } from "./idleGroupCommit.ts"
import { memoryBench } from "./memory.ts"
import { networkBench } from "./network.ts"
import { overloadBench } from "./overload.ts"
import { ownershipBench } from "./ownership.ts"
import { podsBench } from "./pods.ts"
import { postgresBench, postgresSleepBench } from "./postgres.ts"
import { replayBench } from "./replay.ts"
import { resumptionBench } from "./resumption.ts"
import { printSleep, sleepBench } from "./sleep.ts"
import { telemetryBench } from "./telemetry.ts"
import { timeSkipBench } from "./timeSkip.ts"
import { median, type Row, runWorkload, sqliteRawCommitRate } from "./workload.ts"

const Options = Schema.Struct({
  quick: Schema.optional(Schema.Boolean),
  postgres: Schema.optional(Schema.String.check(Schema.isPattern(/^postgres(ql)?:\/\//))),
  only: Schema.optional(
    Schema.Literals([
      "postgres",
      "sqlite",
      "sleep",
      "skip",
      "peers",
      "ownership",
      "idle",
      "telemetry",
      "failover",
      "resumption",
      "pods",
      "entities",
      "network",
      "replay",
      "overload",
      "memory"
    ])
  ),
  peers: Schema.optional(Schema.Boolean),
  // A checkout of an earlier commit, for `--only telemetry|replay|entities` (its src/index.ts is imported);
  // for `--only failover`, one or more source trees as `label=DIR,label=DIR` whose pods run beside
  // this tree's, run by run (each needs node_modules: a symlink to this tree's will do).
  baseline: Schema.optional(Schema.String),
  // `--only overload`: how many executions (and sends), and on which backend (default: both);
  // `--only failover`: on which backend.
  count: Schema.optional(Schema.NumberFromString.check(Schema.isInt(), Schema.isGreaterThan(0))),
  backend: Schema.optional(Schema.Literals(["sqlite", "postgres"]))
})
const options = Schema.decodeUnknownSync(Options)(
  parseArgs({
    args: process.argv.slice(2),
    options: {
      quick: { type: "boolean" },
      postgres: { type: "string" },
      only: { type: "string" },
      peers: { type: "boolean" },
      baseline: { type: "string" },
      count: { type: "string" },
      backend: { type: "string" }
    }
  }).values
)
const quick = options.quick === true

const dir = mkdtempSync(join(tmpdir(), "effect-cluster-bench-"))
const sqliteLayer = (name: string) => SqliteClient.layer({ filename: join(dir, `${name}.db`) })

/** Raw single-row autocommit inserts through the store's client and settings: the ceiling. */
const rawCommitRate = (count: number, name: string) =>
  sqliteRawCommitRate(count).pipe(Effect.provide(sqliteLayer(name)))

/** The same without effect: node:sqlite prepared statement, WAL, synchronous=FULL. */
const driverCommitRate = (count: number) => {
  const db = new DatabaseSync(join(dir, "driver.db"))
  db.exec("PRAGMA journal_mode = WAL")
  db.exec("PRAGMA synchronous = FULL")
  db.exec("CREATE TABLE raw (id INTEGER PRIMARY KEY, payload TEXT NOT NULL)")
  const insert = db.prepare("INSERT INTO raw (id, payload) VALUES (?, ?)")
  const started = performance.now()
  for (let i = 0; i < count; i++) insert.run(i, "x")
  const rate = count / ((performance.now() - started) / 1000)
  db.close()
  return rate
}

const onMemory = (executions: number, concurrency: number) =>
  Effect.map(
    runWorkload(executions, concurrency, 0).pipe(Effect.provide(MemoryJournal.layer)),
    (seconds): Row => ({
      backend: "memory",
      concurrency,
      executions,
      seconds,
      durableCommits: undefined,
      transactions: undefined
    })
  )

const onSqlite = (executions: number, concurrency: number) =>
  Effect.gen(function* () {
    const journal = yield* SqliteJournal.make()
    const before = { ...journal.stats }
    const seconds = yield* runWorkload(executions, concurrency, 0).pipe(
      Effect.provide(Layer.succeed(DurableExecutionJournal.DurableExecutionJournal, journal))
    )
    return {
      backend: "sqlite",
      concurrency,
      executions,
      seconds,
      durableCommits: journal.stats.durableTransactions - before.durableTransactions,
      transactions: journal.stats.transactions - before.transactions
    } satisfies Row
  }).pipe(Effect.scoped, Effect.provide(sqliteLayer(`engine-${concurrency}`)))

/**
 * The journal alone, at concurrency 1: the same writes the engine makes for one execution (start,
 * then each attempt marker with the previous outcome, then the last outcome with the result),
 * without the engine. Separates the cost of the journal's commits from the engine's overhead.
 */
const journalOnly = (executions: number) =>
  Effect.gen(function* () {
    const journal = yield* SqliteJournal.make()
    const started = performance.now()
    for (let id = 0; id < executions; id++) {
      const executionId = `bench-${id}`
      yield* journal.start({
        executionId,
        workflow: "Bench",
        request: `{"_tag":"Bench","id":${id}}`,
        shard: ShardId.shardOf(executionId, ShardId.DEFAULT_SHARD_COUNT),
        now: id
      })
      let previous: Array<DurableExecutionJournal.StepOutcome> = []
      for (const [seq, stepKey] of ["a", "b", "c"].entries()) {
        const before = previous[0]?.stepKey ?? null
        const attempt = {
          executionId,
          stepKey,
          activityId: stepKey,
          seq: seq + 1,
          previous: before,
          attempt: 1
        }
        yield* journal.write({ executionId, outcomes: previous, attempt, now: id })
        previous = [{ ...attempt, outcome: `{"_tag":"Success","value":${id + seq}}` }]
      }
      const result = `{"_tag":"Success","value":${id + 2}}`
      yield* journal.write({
        executionId,
        outcomes: previous,
        status: { _tag: "Complete", status: "succeeded", result },
        now: id
      })
    }
    return executions / ((performance.now() - started) / 1000)
  }).pipe(Effect.scoped, Effect.provide(sqliteLayer("journal-only")))

const sqliteBench = (scale: number) =>
  Effect.gen(function* () {
    // The ceiling is measured three times around the workloads; machines here are noisy.
    const raws: Array<number> = []
    const rows: Array<Row> = []
    raws.push(yield* rawCommitRate(Math.ceil(2000 * scale), "raw-1"))
    rows.push(yield* onMemory(Math.ceil(2000 * scale), 1))
    rows.push(yield* onMemory(Math.ceil(20000 * scale), 100))
    raws.push(yield* rawCommitRate(Math.ceil(2000 * scale), "raw-2"))
    const journalRate = yield* journalOnly(Math.ceil(1500 * scale))
    rows.push(yield* onSqlite(Math.ceil(1500 * scale), 1))
    rows.push(yield* onSqlite(Math.ceil(10000 * scale), 100))
    raws.push(yield* rawCommitRate(Math.ceil(2000 * scale), "raw-3"))
    const driver = driverCommitRate(Math.ceil(2000 * scale))
    const raw = median(raws)
    console.log(
      `raw single-row commit rate through the store's SqlClient (WAL, synchronous=FULL): ${raw.toFixed(0)} commits/s (median of ${raws.map((r) => r.toFixed(0)).join(", ")})`
    )
    console.log(`same through node:sqlite directly: ${driver.toFixed(0)} commits/s`)
    console.log(
      `the journal's own writes for one execution, without the engine (concurrency 1): ${journalRate.toFixed(0)} executions/s\n`
    )
    console.log(
      "| backend | concurrency | executions | executions/s | activities/s | durable commits/execution | transactions/execution | exec/s × commits/exec ÷ raw commit rate |"
    )
    console.log("|---|---|---|---|---|---|---|---|")
    const engineC1 = rows.find((row) => row.backend === "sqlite" && row.concurrency === 1)
    for (const row of rows) {
      const perSecond = row.executions / row.seconds
      const commits = row.durableCommits === undefined ? undefined : row.durableCommits / row.executions
      const transactions = row.transactions === undefined ? undefined : row.transactions / row.executions
      console.log(
        `| ${row.backend} | ${row.concurrency} | ${row.executions} | ${perSecond.toFixed(0)} | ${(perSecond * 3).toFixed(0)} | ${commits?.toFixed(2) ?? "-"} | ${transactions?.toFixed(2) ?? "-"} | ${commits === undefined ? "-" : ((perSecond * commits) / raw).toFixed(2)} |`
      )
    }
    if (engineC1 !== undefined) {
      const ratio = engineC1.executions / engineC1.seconds / journalRate
      console.log(`\nengine on SQLite at concurrency 1 ÷ the journal's writes alone: ${ratio.toFixed(2)}`)
    }
  })

const program = Effect.gen(function* () {
  const scale = quick ? 0.05 : 1
  if (options.only === undefined || options.only === "sqlite") yield* sqliteBench(scale)
  if (options.only === undefined || options.only === "postgres") yield* postgresBench(scale, options.postgres)
  if (options.only === undefined || options.only === "sleep") {
    const executions = Math.ceil(10_000 * scale)
    let file = 0
    const rows = [
      yield* sleepBench("memory", () => MemoryJournal.layer, executions),
      yield* sleepBench(
        "sqlite",
        () => SqliteJournal.layer({ filename: join(dir, `sleep-${++file}.db`) }),
        executions
      ),
      yield* postgresSleepBench(executions, options.postgres)
    ]
    printSleep(rows)
  }
  if (options.only === undefined || options.only === "skip") yield* timeSkipBench(quick ? 3 : 20)
  if (options.only === undefined || options.only === "idle") yield* idleGroupCommitBench(quick ? 1 : 5)
  if (options.only === undefined || options.only === "ownership")
    yield* ownershipBench(scale, options.postgres)
  if (options.only === undefined || options.only === "resumption")
    yield* resumptionBench(quick ? 5_000 : 50_000, options.postgres)
  if (options.only === undefined || options.only === "failover")
    yield* failoverBench(
      quick ? 1 : 5,
      options.postgres,
      options.backend === undefined ? undefined : [options.backend],
      undefined,
      options.only === "failover" && options.baseline !== undefined
        ? [
            ...options.baseline.split(",").map((entry, i) => {
              const [label, dir] = entry.includes("=") ? entry.split("=", 2) : [`baseline${i + 1}`, entry]
              return { label: label!, dir: resolve(dir!) }
            }),
            { label: "this", dir: resolve(import.meta.dirname, "..") }
          ]
        : undefined
    )
  if (options.only === undefined || options.only === "pods")
    yield* podsBench(quick ? 1 : 3, quick ? 3_000 : 12_000, options.postgres)
  if (options.only === "entities" && options.baseline !== undefined) {
    yield* entitiesBaselineBench(scale, options.postgres, options.baseline)
  } else if (options.only === undefined || options.only === "entities") {
    yield* entitiesBench(scale, options.postgres)
  }
  if (options.only === undefined || options.only === "network") yield* networkBench(scale, options.postgres)
  if (options.only === "telemetry") yield* telemetryBench(scale, dir, options.baseline)
  if (options.only === "overload") {
    yield* overloadBench(
      [options.count ?? (quick ? 5_000 : 50_000)],
      options.postgres,
      options.backend === undefined ? ["sqlite", "postgres"] : [options.backend]
    )
  }
  if (options.only === undefined || options.only === "replay") yield* replayBench(scale, options.baseline)
  if (options.only === undefined || options.only === "memory")
    yield* memoryBench(dir, options.count ?? (quick ? 5_000 : 100_000))
  if (options.peers === true || options.only === "peers") yield* baselineBench(scale, options.postgres)
})

Effect.runPromise(program).then(
  () => rmSync(dir, { recursive: true, force: true }),
  (error) => {
    console.error(error)
    rmSync(dir, { recursive: true, force: true })
    process.exit(1)
  }
)
