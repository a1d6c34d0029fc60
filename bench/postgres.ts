/**
 * The PostgreSQL part of `npm run bench`: the workload at concurrency 1, 16 and 256 with group
 * commit on and off, next to the raw single-row commit rate of the same server measured in the
 * same run, and the commits per execution counted by the server (`pg_stat_database.xact_commit`).
 *
 * The server is the one given with `--postgres URL`, or a throwaway one started like the tests do
 * (fsync on, `synchronous_commit = on`): from the machine's binaries, else from the npm package's
 * (`test/support/PostgresBinaries.ts`). The log says which.
 */
import { randomUUID } from "node:crypto"
import { Context, Effect, Layer } from "effect"
import { SqlClient } from "effect/sql/SqlClient"
import { DurableExecutionJournal } from "effect-cluster"
import { PostgresJournal } from "effect-cluster/postgres"
import { type PostgresServer, startPostgres } from "../test/support/PostgresServer.ts"
import { sleepBench } from "./sleep.ts"
import { median, type Row, runWorkload } from "./workload.ts"

/** A pool of its own on `url`, closed with the scope. */
export const client = (url: string, maxConnections: number) =>
  Effect.map(Layer.build(PostgresJournal.clientLayer({ url, maxConnections })), (context) =>
    Context.get(context, SqlClient)
  )

/** Autocommit single-row inserts on one connection: one commit (and WAL flush) each. */
export const rawCommitRate = (url: string, count: number, table: string) =>
  Effect.gen(function* () {
    const sql = yield* client(url, 1)
    yield* sql.unsafe(`CREATE TABLE ${table} (id INTEGER PRIMARY KEY, payload TEXT NOT NULL)`)
    const started = performance.now()
    for (let i = 0; i < count; i++) yield* sql`INSERT INTO ${sql(table)} (id, payload) VALUES (${i}, ${"x"})`
    return count / ((performance.now() - started) / 1000)
  }).pipe(Effect.scoped)

/**
 * Transactions committed so far in `database` (by default the one `sql` is connected to), read-only
 * ones included. Backends report their counters when they exit, so this is read after the measured
 * pool has closed.
 */
export const committed = (sql: SqlClient, database?: string) =>
  Effect.gen(function* () {
    yield* Effect.sleep("300 millis")
    yield* sql`SELECT pg_stat_clear_snapshot()`
    const rows = yield* sql<{ xact_commit: unknown }>`
      SELECT xact_commit FROM pg_stat_database WHERE datname = ${database ?? sql`current_database()`}`
    return Number(rows[0]?.xact_commit)
  })

export interface PostgresRow extends Row {
  readonly groupCommit: boolean
  /** Commits the server counted per execution (includes the migrations of the fresh tables). */
  readonly serverCommits: number
}

const onPostgres = (
  url: string,
  stats: SqlClient,
  executions: number,
  concurrency: number,
  groupCommit: boolean,
  round = 0
) =>
  Effect.gen(function* () {
    const before = yield* committed(stats)
    const measured = yield* Effect.gen(function* () {
      const sql = yield* client(url, 10)
      const journal = yield* PostgresJournal.make({
        tablePrefix: `bench_${concurrency}_${groupCommit ? "gc" : "nogc"}_${round}_${executions}_`,
        groupCommit
      }).pipe(Effect.provideService(SqlClient, sql))
      const seconds = yield* runWorkload(executions, concurrency, 0).pipe(
        Effect.provideService(DurableExecutionJournal.DurableExecutionJournal, journal)
      )
      return { seconds, durable: journal.stats.durableTransactions, transactions: journal.stats.transactions }
    }).pipe(Effect.scoped)
    const after = yield* committed(stats)
    return {
      backend: "postgres",
      concurrency,
      executions,
      seconds: measured.seconds,
      durableCommits: measured.durable,
      transactions: measured.transactions,
      groupCommit,
      // The two `committed` reads of the stats connection are counted too.
      serverCommits: (after - before - 2) / executions
    } satisfies PostgresRow
  })

/** A throwaway PostgreSQL server, stopped and removed with the scope; the log says which one. */
const throwawayServer = Effect.acquireRelease(
  Effect.tryPromise(() => startPostgres()),
  (started) => Effect.promise(() => started.dispose())
).pipe(Effect.tap((server) => Effect.sync(() => console.log(`PostgreSQL: ${server.description}`))))

/** A PostgreSQL server for a benchmark: the given URL, or a throwaway one closed with the scope. */
export const serverUrl = (givenUrl: string | undefined) =>
  givenUrl === undefined ? Effect.map(throwawayServer, (server) => server.url) : Effect.succeed(givenUrl)

/** A fresh database named after `name` on the server at `url`; its URL. */
export const freshDatabase = (url: string, name: string) =>
  Effect.gen(function* () {
    const sql = yield* client(url, 1)
    const database = `${name}_${randomUUID().slice(0, 8)}`
    yield* sql.unsafe(`CREATE DATABASE ${database}`)
    const fresh = new URL(url)
    fresh.pathname = `/${database}`
    return fresh.toString()
  }).pipe(Effect.scoped)

/** Drops the database of `fresh` (a URL `freshDatabase` returned), cutting its sessions. */
export const dropDatabase = (url: string, fresh: string) =>
  Effect.gen(function* () {
    const sql = yield* client(url, 1)
    yield* sql.unsafe(`DROP DATABASE ${new URL(fresh).pathname.slice(1)} WITH (FORCE)`)
  }).pipe(Effect.scoped)

/** The durable-sleep benchmark (`bench/sleep.ts`) on PostgreSQL, fresh tables per phase. */
export const postgresSleepBench = (executions: number, givenUrl: string | undefined) =>
  Effect.gen(function* () {
    const url = yield* serverUrl(givenUrl)
    let phase = 0
    return yield* sleepBench(
      "postgres",
      () => PostgresJournal.layer({ url, tablePrefix: `bench_sleep_${Date.now()}_${++phase}_` }),
      executions
    )
  }).pipe(Effect.scoped)

/** Runs the PostgreSQL benchmarks and prints their table. */
export const postgresBench = (scale: number, givenUrl: string | undefined) =>
  Effect.gen(function* () {
    let server: PostgresServer | undefined
    if (givenUrl === undefined) server = yield* throwawayServer
    const url = givenUrl ?? server!.url
    const stats = yield* client(url, 1)
    // Fresh tables: drop what an earlier run on the same database left.
    for (const table of yield* stats<{ tablename: string }>`
      SELECT tablename FROM pg_tables WHERE tablename LIKE 'bench\\_%' OR tablename LIKE 'raw\\_%'`) {
      yield* stats.unsafe(`DROP TABLE ${table.tablename}`)
    }
    const raws: Array<number> = []
    const rows: Array<PostgresRow> = []
    const count = (n: number) => Math.max(20, Math.ceil(n * scale))
    // Warm up the server, the connections and the JIT; the first runs of a process are ~2× slower.
    yield* rawCommitRate(url, count(500), "raw_warmup")
    yield* onPostgres(url, stats, count(1000), 16, true)
    // Concurrency 1 is compared with the raw rate: all measured three times, interleaved.
    const single: Array<PostgresRow> = []
    const singleOff: Array<PostgresRow> = []
    for (let round = 0; round < 3; round++) {
      raws.push(yield* rawCommitRate(url, count(1500), `raw_${round}`))
      single.push(yield* onPostgres(url, stats, count(500), 1, true, round))
      singleOff.push(yield* onPostgres(url, stats, count(500), 1, false, round))
    }
    const middle = (runs: ReadonlyArray<PostgresRow>) =>
      [...runs].sort((a, b) => a.seconds - b.seconds)[1] ?? runs[0]!
    rows.push(middle(single))
    rows.push(yield* onPostgres(url, stats, count(3000), 16, true))
    rows.push(yield* onPostgres(url, stats, count(12000), 256, true))
    rows.push(middle(singleOff))
    rows.push(yield* onPostgres(url, stats, count(3000), 16, false))
    rows.push(yield* onPostgres(url, stats, count(12000), 256, false))
    const raw = median(raws)
    console.log(
      `\nPostgreSQL ${server === undefined ? "at the given URL" : "(throwaway server, fsync on)"}: raw single-row commit rate ${raw.toFixed(0)} commits/s (median of ${raws.map((r) => r.toFixed(0)).join(", ")}); concurrency 1: ${single.map((r) => (r.executions / r.seconds).toFixed(0)).join(", ")} executions/s with group commit, ${singleOff.map((r) => (r.executions / r.seconds).toFixed(0)).join(", ")} without\n`
    )
    console.log(
      "| group commit | concurrency | executions | executions/s | activities/s | commits/execution (server) | durable commits/execution (journal) | exec/s × commits/exec ÷ raw commit rate |"
    )
    console.log("|---|---|---|---|---|---|---|---|")
    for (const row of rows) {
      const perSecond = row.executions / row.seconds
      console.log(
        `| ${row.groupCommit ? "on" : "off"} | ${row.concurrency} | ${row.executions} | ${perSecond.toFixed(0)} | ${(perSecond * 3).toFixed(0)} | ${row.serverCommits.toFixed(2)} | ${((row.durableCommits ?? 0) / row.executions).toFixed(2)} | ${((perSecond * row.serverCommits) / raw).toFixed(2)} |`
      )
    }
    return { raw, rows }
  }).pipe(Effect.scoped)
