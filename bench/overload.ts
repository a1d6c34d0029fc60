/**
 * A pod under a flood (`npm run bench -- --only overload`): `COUNT` unfinished executions of the
 * 3-activity workflow are stored (as in `resumption.ts`), then one pod starts on the store and
 * `COUNT` callers `send` to them at once (clients retrying after an outage), while the pod also
 * resumes them in the background. Measured: the time until every send returned, the event loop's
 * delay from the moment the engine is up (`perf_hooks.monitorEventLoopDelay`: p99 and max; the
 * start itself loads modules, a one-time stall of ~0.3 s), the longest GC pause, the process's
 * peak RSS, and the lease
 * trouble the pod logged (a lease that could not be renewed in time, a write refused because the
 * lease ran out by the pod's clock, a shard lost). The bar: no lease trouble, max delay under
 * 100 ms, peak RSS under 1 GiB, and time linear in the work.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { monitorEventLoopDelay, PerformanceObserver } from "node:perf_hooks"
import { Effect, Layer, Logger } from "effect"
import { DurableExecutionJournal, SqliteJournal, WorkflowEngine } from "effect-cluster"
import { PostgresJournal } from "effect-cluster/postgres"
import { dropDatabase, freshDatabase, serverUrl } from "./postgres.ts"
import { Bench, storeUnfinished, workflow } from "./workload.ts"

type Journal = Layer.Layer<DurableExecutionJournal.DurableExecutionJournal, unknown>

/** Log lines that mean the pod's lease or ownership suffered. */
const TROUBLE = [/could not be renewed/, /lease ran out/, /lost shard/i, /stale epoch/i, /no longer owns/i]

export interface OverloadRow {
  readonly backend: string
  readonly count: number
  readonly seconds: number
  readonly delayP99: number
  readonly delayMax: number
  readonly peakRssMiB: number
  /** The longest garbage collection pause (ms): a stall no scheduler can cut. */
  readonly gcMax: number
  readonly trouble: number
  readonly firstTrouble: string | undefined
}

const fill = (journal: Journal, count: number) =>
  Effect.flatMap(DurableExecutionJournal.DurableExecutionJournal, (store) =>
    storeUnfinished(store, count)
  ).pipe(Effect.scoped, Effect.provide(Layer.fresh(journal)))

const flood = (backend: string, journal: Journal, count: number) =>
  Effect.gen(function* () {
    yield* fill(journal, count)
    const lines: Array<string> = []
    const logger = Logger.make(({ message }) => {
      const text = Array.isArray(message) ? message.map(String).join(" ") : String(message)
      if (TROUBLE.some((pattern) => pattern.test(text))) lines.push(text)
    })
    const delay = monitorEventLoopDelay({ resolution: 10 })
    let gcMax = 0
    const gc = new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) gcMax = Math.max(gcMax, entry.duration)
    })
    gc.observe({ entryTypes: ["gc"] })
    const started = performance.now()
    yield* Effect.gen(function* () {
      const engine = yield* WorkflowEngine.makeScoped(workflow)
      // From here: the pod is up (its modules loaded, its listener open) and the flood begins.
      delay.enable()
      yield* Effect.forEach(
        Array.from({ length: count }, (_, id) => id),
        (id) => engine.send(new Bench({ id })),
        { concurrency: "unbounded", discard: true }
      )
    }).pipe(
      Effect.scoped,
      Effect.provide(Layer.fresh(journal)),
      Effect.provide(Logger.layer([logger, Logger.consolePretty()]))
    )
    delay.disable()
    gc.disconnect()
    const row: OverloadRow = {
      backend,
      count,
      seconds: (performance.now() - started) / 1000,
      delayP99: delay.percentile(99) / 1e6,
      delayMax: delay.max / 1e6,
      peakRssMiB: process.resourceUsage().maxRSS / 1024,
      gcMax,
      trouble: lines.length,
      firstTrouble: lines[0]
    }
    console.log(JSON.stringify(row))
    return row
  })

/** The flood on SQLite and PostgreSQL, at each of `counts`. */
export const overloadBench = (
  counts: ReadonlyArray<number>,
  givenUrl: string | undefined,
  backends: ReadonlyArray<"sqlite" | "postgres"> = ["sqlite", "postgres"]
) =>
  Effect.gen(function* () {
    const rows: Array<OverloadRow> = []
    for (const count of counts) {
      if (backends.includes("sqlite")) {
        const dir = mkdtempSync(join(tmpdir(), "effect-cluster-overload-"))
        rows.push(yield* flood("sqlite", SqliteJournal.layer({ filename: join(dir, "journal.db") }), count))
        rmSync(dir, { recursive: true, force: true })
      }
      if (backends.includes("postgres")) {
        const server = yield* serverUrl(givenUrl)
        const url = yield* freshDatabase(server, "overload")
        rows.push(yield* flood("postgres", PostgresJournal.layer({ url }), count))
        yield* Effect.ignore(dropDatabase(server, url))
      }
    }
    console.log(
      "\n| backend | executions (and sends) | all sends returned | event-loop delay p99 | max | longest GC pause | peak RSS | lease trouble logged |"
    )
    console.log("|---|---|---|---|---|---|---|---|")
    for (const row of rows) {
      console.log(
        `| ${row.backend} | ${row.count.toLocaleString("en-US")} | ${row.seconds.toFixed(1)} s | ${row.delayP99.toFixed(0)} ms | ${row.delayMax.toFixed(0)} ms | ${row.gcMax.toFixed(0)} ms | ${row.peakRssMiB.toFixed(0)} MiB | ${row.trouble} |`
      )
    }
    return rows
  }).pipe(Effect.scoped)
