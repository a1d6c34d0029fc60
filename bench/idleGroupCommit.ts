/**
 * Group commit on SQLite after an idle moment (`npm run bench -- --only idle`): the workload
 * (`bench/workload.ts`) at concurrency 256 on a fresh engine and journal, started three ways:
 * - at once: the first sends go out in the tick `makeScoped` returns (as every other bench does);
 * - after 100 ms idle: the journal's writer has started and waits for work before the burst;
 * - after one execution alone (concurrency 1), then the burst.
 * Items per transaction show whether the writes of concurrent executions share commits. Rounds
 * alternate the three; medians.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Context, Effect, Layer } from "effect"
import { SqlClient } from "effect/sql/SqlClient"
import { DurableExecutionJournal, SqliteJournal, WorkflowEngine } from "effect-cluster"
import * as SqliteClient from "../src/storage/sqlite/SqliteClient.ts"
import { Bench, median, workflow } from "./workload.ts"

const STARTS = ["at once", "after 100 ms idle", "after one execution alone"] as const
type Start = (typeof STARTS)[number]

const EXECUTIONS = 2_560

/** One burst on a fresh journal and engine in `file`: executions/s and items per transaction. */
const burst = (file: string, start: Start) =>
  Effect.gen(function* () {
    const sql = Context.get(yield* Layer.build(SqliteClient.layer({ filename: file })), SqlClient)
    const journal = yield* Effect.provideService(SqliteJournal.make(), SqlClient, sql)
    const engine = yield* WorkflowEngine.makeScoped(workflow).pipe(
      Effect.provideService(DurableExecutionJournal.DurableExecutionJournal, journal)
    )
    if (start === "after 100 ms idle") yield* Effect.sleep("100 millis")
    if (start === "after one execution alone") yield* engine.send(new Bench({ id: -1 }))
    const before = { ...journal.stats }
    const started = performance.now()
    yield* Effect.forEach(
      Array.from({ length: EXECUTIONS }, (_, id) => new Bench({ id })),
      (request) => engine.send(request),
      { concurrency: 256, discard: true }
    )
    const seconds = (performance.now() - started) / 1000
    return {
      perSecond: EXECUTIONS / seconds,
      itemsPerTransaction:
        (journal.stats.items - before.items) / (journal.stats.transactions - before.transactions)
    }
  }).pipe(Effect.scoped)

export const idleGroupCommitBench = (rounds: number) =>
  Effect.gen(function* () {
    const dir = mkdtempSync(join(tmpdir(), "effect-cluster-idle-"))
    yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
    const results = new Map<Start, Array<{ perSecond: number; itemsPerTransaction: number }>>()
    let file = 0
    for (let round = 0; round < rounds; round++) {
      for (const start of round % 2 === 0 ? STARTS : [...STARTS].reverse()) {
        const measured = yield* burst(join(dir, `${++file}.db`), start)
        results.set(start, [...(results.get(start) ?? []), measured])
      }
    }
    console.log(
      `\nSQLite, ${EXECUTIONS} executions at concurrency 256 on a fresh engine, median of ${rounds}\n`
    )
    console.log("| burst starts | executions/s | ÷ at once | items per transaction |")
    console.log("|---|---|---|---|")
    const atOnce = median((results.get("at once") ?? []).map((run) => run.perSecond))
    for (const start of STARTS) {
      const runs = results.get(start) ?? []
      const perSecond = median(runs.map((run) => run.perSecond))
      console.log(
        `| ${start} | ${perSecond.toFixed(0)} | ${(perSecond / atOnce).toFixed(2)} | ${median(runs.map((run) => run.itemsPerTransaction)).toFixed(1)} |`
      )
    }
  }).pipe(Effect.scoped)
