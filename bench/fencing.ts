/**
 * The cost of fencing on the journal's write path (PostgreSQL, then SQLite): the journal alone (no engine), making the writes
 * the engine makes for an execution of three activities (start, three attempt markers carrying the
 * previous outcome, the last outcome with the result), `concurrency` executions at a time, with
 * and without a fence on every write. Fenced writes name the execution's shard at the epoch this
 * pod owns it at (all 300 shards assigned to the pod), so the store checks and share-locks the
 * shard row in each batch's statement.
 *
 * On SQLite a fenced write is a transaction of its own (BEGIN IMMEDIATE, the epochs of its shards,
 * the write, COMMIT) where an unfenced write of one statement commits on its own.
 *
 * Usage: node --conditions=@effect-cluster/source bench/fencing.ts [--postgres URL] [--scale 1]
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Context, Effect, Layer, type Scope } from "effect"
import { SqlClient } from "effect/sql/SqlClient"
import { type DurableExecutionJournal, ShardId, SqliteJournal } from "effect-cluster"
import { PostgresJournal } from "effect-cluster/postgres"
import type { GroupCommitStats } from "../src/storage/sql/GroupCommit.ts"
import * as SqliteClient from "../src/storage/sqlite/SqliteClient.ts"
import { client, serverUrl } from "./postgres.ts"

const SHARDS = ShardId.DEFAULT_SHARD_COUNT

type Journal = DurableExecutionJournal.DurableExecutionJournal["Service"]
type ShardStore = Effect.Success<ReturnType<typeof PostgresJournal.makeShardStore>>

/** A journal and its shard store on fresh tables named after `tag`, closed with the scope. */
type Open = (
  tag: string
) => Effect.Effect<
  { journal: Journal & { readonly stats: GroupCommitStats }; shards: ShardStore },
  unknown,
  Scope.Scope
>

const onPostgres =
  (url: string): Open =>
  (tablePrefix) =>
    Effect.gen(function* () {
      const sql = yield* client(url, 10)
      return yield* Effect.all({
        journal: PostgresJournal.make({ tablePrefix }),
        shards: PostgresJournal.makeShardStore({ tablePrefix })
      }).pipe(Effect.provideService(SqlClient, sql))
    })

const onSqlite =
  (dir: string): Open =>
  (tag) =>
    Effect.gen(function* () {
      const context = yield* Layer.build(SqliteClient.layer({ filename: join(dir, `${tag}.db`) }))
      return yield* Effect.all({
        journal: SqliteJournal.make(),
        shards: SqliteJournal.makeShardStore()
      }).pipe(Effect.provideService(SqlClient, Context.get(context, SqlClient)))
    })

/** One execution's writes; `epoch` undefined: unfenced. Ids are unique per table prefix. */
const execution = (journal: Journal, id: number, tag: string, epoch: number | undefined) =>
  Effect.gen(function* () {
    const executionId = `${tag}-${id}`
    const shard = ShardId.shardOf(executionId, SHARDS)
    const fence = epoch === undefined ? {} : { fence: { shard, epoch } }
    yield* journal.start({ executionId, workflow: "Bench", request: `{"id":${id}}`, shard, now: id })
    let previous: Array<DurableExecutionJournal.StepOutcome> = []
    for (const [seq, stepKey] of ["a", "b", "c"].entries()) {
      const attempt = {
        executionId,
        stepKey,
        activityId: stepKey,
        seq: seq + 1,
        previous: previous[0]?.stepKey ?? null,
        attempt: 1
      }
      yield* journal.write({ executionId, outcomes: previous, attempt, now: id, ...fence })
      previous = [{ ...attempt, outcome: `{"_tag":"Success","value":${id + seq}}` }]
    }
    yield* journal.write({
      executionId,
      outcomes: previous,
      status: { _tag: "Complete", status: "succeeded", result: `{"_tag":"Success","value":${id}}` },
      now: id,
      ...fence
    })
  })

/**
 * Executions per second, fenced and unfenced, at `concurrency`. On a shared, noisy machine, runs
 * far apart in time differ more than the two modes: so both modes run on the same tables, in
 * alternating chunks (ABBA order), and each mode's rate is its executions over its summed time.
 */
const measure = (open: Open, concurrency: number, chunks: number, chunkSize: number) =>
  Effect.gen(function* () {
    const tablePrefix = `bench_fence_${concurrency}_`
    const { journal, shards } = yield* open(tablePrefix)
    yield* shards.init(SHARDS)
    yield* shards.assign(
      Array.from({ length: SHARDS }, (_, i) => ({ shard: i + 1, from: null, to: "bench" }))
    )
    const seconds = { fenced: 0, unfenced: 0 }
    let next = 0
    let items = 0
    let transactions = 0
    const chunk = (fenced: boolean) =>
      Effect.gen(function* () {
        const first = next
        next += chunkSize
        const before = { ...journal.stats }
        const started = performance.now()
        yield* Effect.forEach(
          Array.from({ length: chunkSize }, (_, i) => first + i),
          (id) => execution(journal, id, tablePrefix, fenced ? 1 : undefined),
          { concurrency, discard: true }
        )
        seconds[fenced ? "fenced" : "unfenced"] += (performance.now() - started) / 1000
        items += journal.stats.items - before.items
        transactions += journal.stats.transactions - before.transactions
      })
    yield* chunk(true)
    yield* chunk(false)
    seconds.fenced = 0
    seconds.unfenced = 0
    for (let i = 0; i < chunks; i++) {
      const fencedFirst = i % 4 === 0 || i % 4 === 3
      yield* chunk(fencedFirst)
      yield* chunk(!fencedFirst)
    }
    const executions = chunks * chunkSize
    return {
      executions,
      fenced: executions / seconds.fenced,
      unfenced: executions / seconds.unfenced,
      itemsPerTransaction: items / transactions
    }
  }).pipe(Effect.scoped)

const argument = (name: string) => {
  const index = process.argv.indexOf(name)
  return index === -1 ? undefined : process.argv[index + 1]
}

const program = Effect.gen(function* () {
  const url = yield* serverUrl(argument("--postgres"))
  const scale = Number(argument("--scale") ?? "1")
  const stats = yield* client(url, 1)
  for (const table of yield* stats<{ tablename: string }>`
    SELECT tablename FROM pg_tables WHERE tablename LIKE 'bench\\_fence\\_%'`) {
    yield* stats.unsafe(`DROP TABLE ${table.tablename}`)
  }
  const dir = mkdtempSync(join(tmpdir(), "effect-cluster-fencing-"))
  yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
  console.log(
    "| backend | concurrency | executions per mode | unfenced exec/s | fenced exec/s | fenced ÷ unfenced | writes per transaction |"
  )
  console.log("|---|---|---|---|---|---|---|")
  for (const [backend, open] of [
    ["postgres", onPostgres(url)],
    ["sqlite", onSqlite(dir)]
  ] as const) {
    for (const [concurrency, chunkSize] of [
      [1, 20],
      [16, 160],
      [256, 1_024]
    ] as const) {
      const row = yield* measure(open, concurrency, Math.max(4, Math.round(24 * scale)), chunkSize)
      console.log(
        `| ${backend} | ${concurrency} | ${row.executions} | ${row.unfenced.toFixed(0)} | ${row.fenced.toFixed(0)} | ${(row.fenced / row.unfenced).toFixed(2)} | ${row.itemsPerTransaction.toFixed(1)} |`
      )
    }
  }
}).pipe(Effect.scoped)

Effect.runPromise(program).catch((error) => {
  console.error(error)
  process.exit(1)
})
