/**
 * What ownership costs the engine (`npm run bench -- --only ownership`): the 3-activity workload
 * (`bench/workload.ts`) on one pod with ownership and fencing (the journal comes with a
 * `ShardStore`, as `SqliteJournal.layer` / `PostgresJournal.layer` provide it: every write of a
 * run carries its shard's epoch, checked in the write's transaction) against the same engine with
 * the checks switched off (the same journal without a `ShardStore`: every shard runs unfenced, as
 * before ownership), at concurrency 1 and 256, on SQLite and on PostgreSQL.
 *
 * The variants alternate in chunks (ABBA order), because on this shared machine runs a minute
 * apart differ more than the two variants; each variant's rate is its executions over its summed
 * time, and the median of the per-pair ratios is printed beside it. Each variant has its own store
 * (SQLite: a file; PostgreSQL: a table prefix and a pool of 10) and one engine for the whole
 * comparison, whose first chunk (a warm-up) goes out the moment `makeScoped` returns: on SQLite the
 * group commit only batches if its writer meets a burst before it first idles, and keeps batching
 * while every batch has several writes (bench/README.md, "Group commit on SQLite after an idle
 * moment"). Items per transaction are printed, so the batching regime of each variant is visible.
 * The pod's background loops (lease renewal and manager round every second, inbox polling every
 * 100 ms) run during both variants' chunks.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Context, Effect, Layer, type Scope } from "effect"
import type { SqlClient } from "effect/sql/SqlClient"
import { DurableExecutionJournal, ShardStore, SqliteJournal, WorkflowEngine } from "effect-cluster"
import { PostgresJournal } from "effect-cluster/postgres"
import type { GroupCommitStats } from "../src/storage/sql/GroupCommit.ts"
import * as SqliteClient from "../src/storage/sqlite/SqliteClient.ts"
import { client, serverUrl } from "./postgres.ts"
import { Bench, median, workflow } from "./workload.ts"

type Variant = "fenced" | "unfenced"

/** A fresh journal (and, fenced, its shard store) on a client of its own, closed with the scope. */
type Store = (variant: Variant) => Effect.Effect<
  {
    readonly context: Context.Context<DurableExecutionJournal.DurableExecutionJournal | ShardStore.ShardStore>
    readonly stats: GroupCommitStats
  },
  unknown,
  Scope.Scope
>

/** The journal, and with `fenced` the shard store, as the backend's `layer` builds them. */
const services = <E, R>(
  variant: Variant,
  journal: Effect.Effect<
    DurableExecutionJournal.DurableExecutionJournal["Service"] & { readonly stats: GroupCommitStats },
    E,
    R
  >,
  shardStore: Effect.Effect<ShardStore.ShardStore["Service"], E, R>
) =>
  Effect.gen(function* () {
    const built = yield* journal
    let context = Context.make(DurableExecutionJournal.DurableExecutionJournal, built) as Context.Context<
      DurableExecutionJournal.DurableExecutionJournal | ShardStore.ShardStore
    >
    if (variant === "fenced") context = Context.add(context, ShardStore.ShardStore, yield* shardStore)
    return { context, stats: built.stats }
  })

/** `client` as a scoped effect on the layer `clientLayer`. */
const withClient = <A, E, R>(clientLayer: Layer.Layer<SqlClient, unknown>, effect: Effect.Effect<A, E, R>) =>
  Effect.flatMap(Layer.build(clientLayer), (context) => Effect.provideContext(effect, context))

interface Totals {
  seconds: number
  cpuMicros: number
  executions: number
  items: number
  transactions: number
}

/** A chunk: `chunk` executions sent `concurrency` at a time; its time, CPU and batching. */
const runChunk = (
  engine: WorkflowEngine.WorkflowEngine<typeof workflow>,
  stats: GroupCommitStats,
  first: number,
  chunk: number,
  concurrency: number
) =>
  Effect.gen(function* () {
    const before = { ...stats }
    const cpu = process.cpuUsage()
    const started = performance.now()
    yield* Effect.forEach(
      Array.from({ length: chunk }, (_, i) => first + i),
      (id) => engine.send(new Bench({ id })),
      { concurrency, discard: true }
    )
    const seconds = (performance.now() - started) / 1000
    const used = process.cpuUsage(cpu)
    return {
      seconds,
      cpuMicros: used.user + used.system,
      items: stats.items - before.items,
      transactions: stats.transactions - before.transactions
    }
  })

/**
 * Both variants at `concurrency`, each on an engine of its own for the whole comparison: the
 * engine's first chunk (a warm-up) goes out as soon as it is built, then `pairs` ABBA-ordered pairs.
 */
const compare = (store: Store, concurrency: number, pairs: number, chunk: number) =>
  Effect.gen(function* () {
    let next = 0
    const start = (variant: Variant) =>
      Effect.gen(function* () {
        const { context, stats } = yield* store(variant)
        const engine = yield* WorkflowEngine.makeScoped(workflow).pipe(Effect.provideContext(context))
        const run = Effect.suspend(() => {
          const first = next
          next += chunk
          return runChunk(engine, stats, first, chunk, concurrency)
        })
        yield* run
        return run
      })
    const runs = { fenced: yield* start("fenced"), unfenced: yield* start("unfenced") }
    // The pod's first round and the look at its shards' unfinished executions end before timing.
    yield* Effect.sleep("500 millis")
    const zero = (): Totals => ({ seconds: 0, cpuMicros: 0, executions: 0, items: 0, transactions: 0 })
    const totals: Record<Variant, Totals> = { fenced: zero(), unfenced: zero() }
    const ratios: Array<number> = []
    for (let pair = 0; pair < pairs; pair++) {
      const order: ReadonlyArray<Variant> =
        pair % 4 === 0 || pair % 4 === 3 ? ["fenced", "unfenced"] : ["unfenced", "fenced"]
      const seconds = { fenced: 0, unfenced: 0 }
      for (const variant of order) {
        const measured = yield* runs[variant]
        seconds[variant] = measured.seconds
        const total = totals[variant]
        total.seconds += measured.seconds
        total.cpuMicros += measured.cpuMicros
        total.executions += chunk
        total.items += measured.items
        total.transactions += measured.transactions
      }
      ratios.push(seconds.unfenced / seconds.fenced)
    }
    return { ...totals, pairRatio: median(ratios) }
  }).pipe(Effect.scoped)

interface OwnershipRow {
  readonly backend: string
  readonly concurrency: number
  readonly fenced: Totals
  readonly unfenced: Totals
  readonly pairRatio: number
}

const print = (rows: ReadonlyArray<OwnershipRow>) => {
  console.log(
    "\n| backend | concurrency | executions per variant | unfenced exec/s | fenced exec/s | fenced ÷ unfenced (summed time) | median of per-pair ratios | CPU µs per execution, unfenced → fenced | items per transaction, unfenced → fenced |"
  )
  console.log("|---|---|---|---|---|---|---|---|---|")
  for (const row of rows) {
    const rate = (totals: Totals) => totals.executions / totals.seconds
    const cpu = (totals: Totals) => (totals.cpuMicros / totals.executions).toFixed(0)
    const batch = (totals: Totals) => (totals.items / totals.transactions).toFixed(1)
    console.log(
      `| ${row.backend} | ${row.concurrency} | ${row.fenced.executions} | ${rate(row.unfenced).toFixed(0)} | ${rate(row.fenced).toFixed(0)} | ${(rate(row.fenced) / rate(row.unfenced)).toFixed(2)} | ${row.pairRatio.toFixed(2)} | ${cpu(row.unfenced)} → ${cpu(row.fenced)} | ${batch(row.unfenced)} → ${batch(row.fenced)} |`
    )
  }
}

/** Both backends, both concurrencies; `scale` shortens the runs (`--quick`). */
export const ownershipBench = (scale: number, givenUrl: string | undefined) =>
  Effect.gen(function* () {
    const pairs = Math.max(4, Math.round(12 * scale))
    const dir = mkdtempSync(join(tmpdir(), "effect-cluster-ownership-"))
    yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
    const rows: Array<OwnershipRow> = []
    for (const [concurrency, chunk] of [
      [1, 200],
      [256, 2_560]
    ] as const) {
      const sqlite: Store = (variant) =>
        withClient(
          SqliteClient.layer({ filename: join(dir, `${variant}-${concurrency}.db`) }),
          services(variant, SqliteJournal.make(), SqliteJournal.makeShardStore())
        )
      rows.push({ backend: "sqlite", concurrency, ...(yield* compare(sqlite, concurrency, pairs, chunk)) })
    }
    const url = yield* serverUrl(givenUrl)
    const stats = yield* client(url, 1)
    for (const table of yield* stats<{ tablename: string }>`
      SELECT tablename FROM pg_tables WHERE tablename LIKE 'bench\\_own\\_%'`) {
      yield* stats.unsafe(`DROP TABLE ${table.tablename}`)
    }
    for (const [concurrency, chunk] of [
      [1, 100],
      [256, 2_560]
    ] as const) {
      const postgres: Store = (variant) => {
        const tablePrefix = `bench_own_${variant}_${concurrency}_`
        return withClient(
          PostgresJournal.clientLayer({ url }),
          services(
            variant,
            PostgresJournal.make({ tablePrefix }),
            PostgresJournal.makeShardStore({ tablePrefix })
          )
        )
      }
      rows.push({
        backend: "postgres",
        concurrency,
        ...(yield* compare(postgres, concurrency, pairs, chunk))
      })
    }
    print(rows)
    return rows
  }).pipe(Effect.scoped)
