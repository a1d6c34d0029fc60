/**
 * Resumption (`npm run bench -- --only resumption`): `COUNT` unfinished executions of the
 * 3-activity workflow (`bench/workload.ts`) are stored through the journal port (`start`, 256 at a
 * time: each is `running` with no step recorded yet, as after a crash right after `sendDiscard`),
 * the journal is closed, and a new engine starts on the store: a pod that takes all 300 shards and
 * resumes their executions in the background. Measured from the call to `makeScoped`: when it
 * returned; when a new `send` made right after returned its result; when the first and the last
 * resumed execution completed (the count of `running` rows, polled every 100 ms). The resume rate
 * is `COUNT` over the time to the last.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { monitorEventLoopDelay } from "node:perf_hooks"
import { Context, Effect, Fiber, Layer, type Scope } from "effect"
import { SqlClient } from "effect/sql/SqlClient"
import { DurableExecutionJournal, ShardStore, SqliteJournal, WorkflowEngine } from "effect-cluster"
import { PostgresJournal } from "effect-cluster/postgres"
import * as SqliteClient from "../src/storage/sqlite/SqliteClient.ts"
import { dropDatabase, freshDatabase, serverUrl } from "./postgres.ts"
import { Bench, storeUnfinished, workflow } from "./workload.ts"

type Services = DurableExecutionJournal.DurableExecutionJournal | ShardStore.ShardStore

/** A store: its journal and shard store on a `SqlClient` of its own, closed with the scope. */
type Open = () => Effect.Effect<
  { readonly context: Context.Context<Services>; readonly sql: SqlClient },
  unknown,
  Scope.Scope
>

/** The journal and shard store as the backend's `layer` builds them, on `clientLayer`. */
const opener =
  <E>(
    clientLayer: Layer.Layer<SqlClient, E>,
    journal: Effect.Effect<
      DurableExecutionJournal.DurableExecutionJournal["Service"],
      unknown,
      SqlClient | Scope.Scope
    >,
    shards: Effect.Effect<ShardStore.ShardStore["Service"], unknown, SqlClient>
  ): Open =>
  () =>
    Effect.gen(function* () {
      const sql = Context.get(yield* Layer.build(clientLayer), SqlClient)
      const built = yield* Effect.provideService(journal, SqlClient, sql)
      const context = Context.make(DurableExecutionJournal.DurableExecutionJournal, built).pipe(
        Context.add(ShardStore.ShardStore, yield* Effect.provideService(shards, SqlClient, sql))
      )
      return { context, sql }
    })

/** Stores `count` unfinished executions, 256 starts at a time (the journal's group commit batches them). */
const fill = (open: Open, count: number) =>
  Effect.gen(function* () {
    const { context } = yield* open()
    const journal = Context.get(context, DurableExecutionJournal.DurableExecutionJournal)
    const started = performance.now()
    yield* storeUnfinished(journal, count)
    return (performance.now() - started) / 1000
  }).pipe(Effect.scoped)

export interface ResumptionRow {
  readonly backend: string
  readonly count: number
  readonly fillSeconds: number
  /** Seconds from the call to `makeScoped`. */
  readonly returned: number
  readonly newSend: number
  readonly firstResumed: number
  readonly allResumed: number
  /** The process's CPU time from `makeScoped` to the last completion, per resumed execution. */
  readonly cpuMicrosPerExecution: number
  /** The event loop's delay (ms) from `makeScoped` returning to the last completion. */
  readonly delayP99: number
  readonly delayMax: number
}

/** Starts an engine on the filled store and times it (see the module comment). */
const resume = (open: Open, count: number) =>
  Effect.gen(function* () {
    const { context, sql } = yield* open()
    const executions = sql(`effect_cluster_executions`)
    const running = Effect.map(
      sql<{ readonly n: unknown }>`SELECT count(*) AS n FROM ${executions} WHERE status = 'running'`,
      (rows) => Number(rows[0]?.n)
    )
    const cpu = process.cpuUsage()
    const started = performance.now()
    const since = () => (performance.now() - started) / 1000
    const engine = yield* WorkflowEngine.makeScoped(workflow).pipe(Effect.provideContext(context))
    const returned = since()
    // From here (the start loads modules once, a stall that is not the resumption's).
    const delay = monitorEventLoopDelay({ resolution: 10 })
    delay.enable()
    const newSend = yield* Effect.forkChild(
      Effect.map(engine.send(new Bench({ id: count + 1 })), () => since())
    )
    let firstResumed: number | undefined
    while (true) {
      const left = yield* running
      if (firstResumed === undefined && left < count) firstResumed = since()
      if (left === 0) break
      yield* Effect.sleep("100 millis")
    }
    const allResumed = since()
    delay.disable()
    const used = process.cpuUsage(cpu)
    return {
      cpuMicrosPerExecution: (used.user + used.system) / count,
      returned,
      newSend: yield* Fiber.join(newSend),
      firstResumed: firstResumed ?? allResumed,
      allResumed,
      delayP99: delay.percentile(99) / 1e6,
      delayMax: delay.max / 1e6
    }
  }).pipe(Effect.scoped)

/** The benchmark on SQLite and on PostgreSQL, `count` executions each. */
export const resumptionBench = (
  count: number,
  givenUrl: string | undefined,
  backends: ReadonlyArray<"sqlite" | "postgres"> = ["sqlite", "postgres"]
) =>
  Effect.gen(function* () {
    const dir = mkdtempSync(join(tmpdir(), "effect-cluster-resumption-"))
    yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
    const rows: Array<ResumptionRow> = []
    const sqlite = opener(
      SqliteClient.layer({ filename: join(dir, "journal.db") }),
      SqliteJournal.make(),
      SqliteJournal.makeShardStore()
    )
    const server = yield* serverUrl(givenUrl)
    const url = yield* freshDatabase(server, "resumption")
    yield* Effect.addFinalizer(() => Effect.ignore(dropDatabase(server, url)))
    const postgres = opener(
      PostgresJournal.clientLayer({ url }),
      PostgresJournal.make(),
      PostgresJournal.makeShardStore()
    )
    for (const [backend, open] of [
      ["sqlite", sqlite],
      ["postgres", postgres]
    ] as const) {
      if (!backends.includes(backend)) continue
      const fillSeconds = yield* fill(open, count)
      const timed = yield* resume(open, count)
      rows.push({ backend, count, fillSeconds, ...timed })
      console.log(JSON.stringify(rows.at(-1)))
    }
    console.log(
      "\n| backend | unfinished executions | makeScoped returned | a new send completed | first resumed execution completed | all resumed | resumed executions/s | CPU µs per resumed execution | event-loop delay p99 / max |"
    )
    console.log("|---|---|---|---|---|---|---|---|---|")
    for (const row of rows) {
      console.log(
        `| ${row.backend} | ${row.count} | ${row.returned.toFixed(2)} s | ${row.newSend.toFixed(2)} s | ${row.firstResumed.toFixed(2)} s | ${row.allResumed.toFixed(1)} s | ${(row.count / row.allResumed).toFixed(0)} | ${row.cpuMicrosPerExecution.toFixed(0)} | ${row.delayP99.toFixed(0)} / ${row.delayMax.toFixed(0)} ms |`
      )
    }
    return rows
  }).pipe(Effect.scoped)
