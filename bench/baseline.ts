/**
 * `npm run bench -- --peers`: the peer baseline. Our engine on PostgreSQL beside effect 4.1's own
 * workflow engine (`bench/peers/effectWorkflow.ts`) and DBOS Transact (`bench/peers/dbos.ts`), on
 * the same server, with the same workload (`bench/workload.ts`: three activities, the same number
 * of executions at concurrency 1, 16 and 256, a pool of 10 connections each), in the same process.
 *
 * Each measurement gets a fresh database of its own, so the server's counters
 * (`pg_stat_database.xact_commit`, `pg_stat_wal.wal_sync`) are the engine's alone. At each
 * concurrency the engines run in turn (ours, effect's, DBOS, ours again), after a warm-up of each,
 * so the ratios compare runs minutes apart at most on this noisy machine.
 *
 * The peers' dependencies live in `bench/peers/package.json` and are installed on demand
 * (`npm install --prefix bench/peers`), so the library does not depend on them. The effect peer
 * uses the repository's own effect and `@effect/sql-pg`; only DBOS needs that install.
 */
import { spawnSync } from "node:child_process"
import { existsSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { Effect } from "effect"
import type { SqlClient } from "effect/sql/SqlClient"
import { PostgresJournal } from "effect-cluster/postgres"
import * as EffectWorkflow from "./peers/effectWorkflow.ts"
import { client, committed, serverUrl } from "./postgres.ts"
import { runWorkload } from "./workload.ts"

/** One engine as the baseline runs it: starts on a database, runs the workload, stops. */
interface Engine {
  readonly name: string
  /** Wall time of the executions alone, in seconds (start and stop excluded). */
  readonly run: (url: string, executions: number, concurrency: number) => Effect.Effect<number, unknown>
}

const ours: Engine = {
  name: "effect-cluster",
  run: (url, executions, concurrency) =>
    runWorkload(executions, concurrency, 0).pipe(Effect.provide(PostgresJournal.layer({ url })))
}

const effectWorkflow: Engine = {
  name: "effect/workflow (ClusterWorkflowEngine)",
  run: EffectWorkflow.runWorkload
}

const peersDir = join(dirname(fileURLToPath(import.meta.url)), "peers")

/**
 * DBOS, installed into `bench/peers/node_modules` if missing. Loaded through a computed path so
 * that the repository's type check does not follow it into a package a fresh clone lacks.
 */
const loadDbos = Effect.gen(function* () {
  if (!existsSync(join(peersDir, "node_modules", "@dbos-inc", "dbos-sdk", "package.json"))) {
    console.log("installing the peers' dependencies: npm install --prefix bench/peers")
    const installed = spawnSync("npm", ["install", "--prefix", peersDir, "--no-audit", "--no-fund"], {
      stdio: "inherit"
    })
    if (installed.status !== 0) {
      console.log("DBOS Transact left out: `npm install --prefix bench/peers` failed")
      return undefined
    }
  }
  const path = join(peersDir, "dbos.ts")
  const module: {
    readonly runWorkload: (url: string, executions: number, concurrency: number) => Promise<number>
  } = yield* Effect.promise(() => import(path))
  return {
    name: "DBOS Transact",
    run: (url, executions, concurrency) =>
      Effect.tryPromise(() => module.runWorkload(url, executions, concurrency))
  } satisfies Engine
})

/** What one run of one engine cost, counted by the server in the engine's own database. */
interface Measurement {
  readonly engine: string
  readonly concurrency: number
  readonly executions: number
  readonly seconds: number
  /** Transactions the server committed in the engine's database (read-only ones included). */
  readonly commits: number
  /** WAL flushes (fsyncs) the server made while the engine ran: durable commits, grouped. */
  readonly walSyncs: number
  /** CPU time of this Node process during the executions, in seconds. */
  readonly cpuSeconds: number
}

/** WAL flushes so far, server-wide: only the engine under measurement writes meanwhile. */
const walSyncs = (sql: SqlClient) =>
  Effect.map(sql<{ wal_sync: unknown }>`SELECT wal_sync FROM pg_stat_wal`, (rows) =>
    Number(rows[0]?.wal_sync)
  )

const databaseUrl = (url: string, database: string) => {
  const parsed = new URL(url)
  parsed.pathname = `/${database}`
  return parsed.toString()
}

/** Runs the peer baseline and prints its table. `givenUrl`: a server of the user's, else a throwaway one. */
export const baselineBench = (scale: number, givenUrl: string | undefined) =>
  Effect.gen(function* () {
    const url = yield* serverUrl(givenUrl)
    const stats = yield* client(url, 1)
    for (const { datname } of yield* stats<{ datname: string }>`
      SELECT datname FROM pg_database WHERE datname LIKE 'baseline\\_%'`) {
      yield* stats.unsafe(`DROP DATABASE "${datname}" WITH (FORCE)`)
    }
    const dbos = yield* loadDbos
    const engines: ReadonlyArray<Engine> =
      dbos === undefined ? [ours, effectWorkflow] : [ours, effectWorkflow, dbos]
    let databases = 0

    /** One run of `engine` on a fresh database, with the server's counters around it. */
    const measure = (engine: Engine, executions: number, concurrency: number) =>
      Effect.gen(function* () {
        const database = `baseline_${++databases}`
        yield* stats.unsafe(`CREATE DATABASE ${database}`)
        const commitsBefore = yield* committed(stats, database)
        const walBefore = yield* walSyncs(stats)
        const cpuBefore = process.cpuUsage()
        const seconds = yield* engine.run(databaseUrl(url, database), executions, concurrency)
        const cpu = process.cpuUsage(cpuBefore)
        const commits = (yield* committed(stats, database)) - commitsBefore
        // The two reads of `committed` between the WAL reads commit nothing that writes WAL.
        const wal = (yield* walSyncs(stats)) - walBefore
        yield* stats.unsafe(`DROP DATABASE ${database} WITH (FORCE)`)
        return {
          engine: engine.name,
          concurrency,
          executions,
          seconds,
          commits,
          walSyncs: wal,
          cpuSeconds: (cpu.user + cpu.system) / 1e6
        } satisfies Measurement
      })

    // What starting and stopping each engine costs (migrations, shard locks, recovery), measured
    // with no executions and subtracted from the counts below.
    const fixed = new Map<string, Measurement>()
    for (const engine of engines) fixed.set(engine.name, yield* measure(engine, 0, 1))
    // Warm up each engine, its connections and the JIT: the first runs of a process are slower.
    for (const engine of engines) yield* measure(engine, Math.max(20, Math.ceil(200 * scale)), 16)

    const count = (n: number) => Math.max(20, Math.ceil(n * scale))
    // Ours runs twice per concurrency: its row adds the two runs up (`runs: 2`).
    const rows: Array<Measurement & { readonly runs: number }> = []
    for (const [executions, concurrency] of [
      [count(500), 1],
      [count(3000), 16],
      [count(12000), 256]
    ] as const) {
      const first = yield* measure(ours, executions, concurrency)
      const peers: Array<Measurement> = []
      for (const engine of engines.slice(1)) peers.push(yield* measure(engine, executions, concurrency))
      const second = yield* measure(ours, executions, concurrency)
      console.log(
        `concurrency ${concurrency}: ${[first, ...peers, second].map((m) => `${m.engine} ${(m.executions / m.seconds).toFixed(0)}`).join(", ")} executions/s`
      )
      // Ours ran before and after the peers: its row is the two runs together.
      rows.push(
        {
          ...first,
          runs: 2,
          seconds: first.seconds + second.seconds,
          executions: first.executions + second.executions,
          commits: first.commits + second.commits,
          walSyncs: first.walSyncs + second.walSyncs,
          cpuSeconds: first.cpuSeconds + second.cpuSeconds
        },
        ...peers.map((peer) => ({ ...peer, runs: 1 }))
      )
    }

    console.log(
      `\nPeer baseline on PostgreSQL ${givenUrl === undefined ? "(throwaway server, fsync on)" : "at the given URL"}; start and stop (no executions) cost ${engines.map((e) => `${e.name} ${fixed.get(e.name)?.commits ?? 0} commits`).join(", ")}, subtracted below\n`
    )
    console.log(
      "| concurrency | engine | executions | executions/s | activities/s | ours ÷ this | commits/execution (server) | WAL flushes/execution | Node CPU, % of one core |"
    )
    console.log("|---|---|---|---|---|---|---|---|---|")
    for (const row of rows) {
      const perSecond = row.executions / row.seconds
      const oursRow = rows.find((r) => r.engine === ours.name && r.concurrency === row.concurrency)!
      const start = fixed.get(row.engine)!
      const commits = (row.commits - row.runs * start.commits) / row.executions
      const wal = (row.walSyncs - row.runs * start.walSyncs) / row.executions
      console.log(
        `| ${row.concurrency} | ${row.engine} | ${row.executions / row.runs} | ${perSecond.toFixed(0)} | ${(perSecond * 3).toFixed(0)} | ${(oursRow.executions / oursRow.seconds / perSecond).toFixed(2)} | ${commits.toFixed(2)} | ${wal.toFixed(2)} | ${((row.cpuSeconds / row.seconds) * 100).toFixed(0)} |`
      )
    }
    return rows
  }).pipe(Effect.scoped)
