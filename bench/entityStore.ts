/**
 * The entity store's write path (`npm run bench -- --only entities`): each message is stored
 * (`enqueue`, as a sender does) and then completed by its owner (`complete` with a reply and the
 * entity's new state, fenced by the shard's epoch), `concurrency` messages at a time, on SQLite and
 * on PostgreSQL. No engine, no entity runtime: the store and its group commits alone.
 *
 * Baseline in the same run: the backend's raw single-row commit rate (autocommit inserts through
 * the same client; the ceiling for work that commits once per write). At concurrency 1 each message
 * costs two commits, so half that rate is the most it can do; at concurrency 100 the group commits
 * share transactions, and the transactions per message are printed beside the rate.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Context, Effect, Layer, type Scope } from "effect"
import { SqlClient } from "effect/sql/SqlClient"
import { ShardId, SqliteJournal } from "effect-cluster"
import { PostgresJournal } from "effect-cluster/postgres"
import type { EntityStore } from "../src/sharding/EntityStore.ts"
import type { ShardStore } from "../src/sharding/ShardStore.ts"
import type { EntityStoreStats } from "../src/storage/sql/SqlEntityStore.ts"
import * as SqliteClient from "../src/storage/sqlite/SqliteClient.ts"
import { client, rawCommitRate, serverUrl } from "./postgres.ts"
import { median, sqliteRawCommitRate } from "./workload.ts"

const SHARDS = ShardId.DEFAULT_SHARD_COUNT
const POD = "bench-pod"

interface Opened {
  readonly entities: EntityStore["Service"] & { readonly stats: EntityStoreStats }
  readonly shards: ShardStore["Service"]
}

/** Fresh tables named after `tag`, closed with the scope. */
type Open = (tag: string) => Effect.Effect<Opened, unknown, Scope.Scope>

const onSqlite =
  (dir: string): Open =>
  (tag) =>
    Effect.gen(function* () {
      const context = yield* Layer.build(SqliteClient.layer({ filename: join(dir, `${tag}.db`) }))
      return yield* Effect.gen(function* () {
        yield* SqliteJournal.make()
        return {
          shards: yield* SqliteJournal.makeShardStore(),
          entities: yield* SqliteJournal.makeEntityStore()
        }
      }).pipe(Effect.provideService(SqlClient, Context.get(context, SqlClient)))
    })

const onPostgres =
  (url: string): Open =>
  (tablePrefix) =>
    Effect.gen(function* () {
      const sql = yield* client(url, 10)
      return yield* Effect.gen(function* () {
        yield* PostgresJournal.make({ tablePrefix })
        return {
          shards: yield* PostgresJournal.makeShardStore({ tablePrefix }),
          entities: yield* PostgresJournal.makeEntityStore({ tablePrefix })
        }
      }).pipe(Effect.provideService(SqlClient, sql))
    })

interface Measured {
  readonly concurrency: number
  readonly messages: number
  readonly perSecond: number
  /** Transactions of both group commits per message. */
  readonly transactions: number
  /** This process's CPU time per message (µs): the client's share of the work. */
  readonly cpuMicros: number
}

/** `messages` messages enqueued then completed, `concurrency` at a time, on fresh tables. */
const measure = (open: Open, tag: string, messages: number, concurrency: number) =>
  Effect.gen(function* () {
    const { entities, shards } = yield* open(tag)
    yield* shards.init(SHARDS)
    yield* shards.register(POD, 600_000)
    const epochs = yield* shards.assign(
      Array.from({ length: SHARDS }, (_, i) => ({ shard: i + 1, from: null, to: POD }))
    )
    const epoch = epochs[0] ?? 1
    const before = entities.stats.enqueue.transactions + entities.stats.owner.transactions
    const started = performance.now()
    const cpu = process.cpuUsage()
    yield* Effect.forEach(
      Array.from({ length: messages }, (_, i) => i),
      (i) =>
        Effect.gen(function* () {
          const entityId = `cart-${i % 1000}`
          const shard = ShardId.shardOf(entityId, SHARDS)
          const key = { entityType: "Cart", entityId, messageId: `m-${i}` }
          const payload = `{"add":{"sku":"sku-${i}","quantity":1}}`
          yield* entities.enqueue([{ ...key, shard, payload, now: i }])
          yield* entities.complete([
            {
              ...key,
              fence: { shard, epoch },
              shard,
              payload,
              reply: `{"ok":${i}}`,
              state: `{"items":${i}}`,
              now: i
            }
          ])
        }),
      { concurrency, discard: true }
    )
    const seconds = (performance.now() - started) / 1000
    const used = process.cpuUsage(cpu)
    const transactions = entities.stats.enqueue.transactions + entities.stats.owner.transactions - before
    return {
      concurrency,
      messages,
      perSecond: messages / seconds,
      transactions: transactions / messages,
      cpuMicros: (used.user + used.system) / messages
    } satisfies Measured
  }).pipe(Effect.scoped)

const print = (backend: string, raws: ReadonlyArray<number>, rows: ReadonlyArray<Measured>) => {
  const raw = median(raws)
  console.log(
    `\nentity store on ${backend}: raw single-row commit rate ${raw.toFixed(0)} commits/s (median of ${raws.map((r) => r.toFixed(0)).join(", ")})\n`
  )
  console.log(
    "| concurrency | messages | messages/s (enqueue + complete) | transactions / message | client CPU µs / message | messages/s ÷ raw commit rate |"
  )
  console.log("|---|---|---|---|---|---|")
  for (const row of rows) {
    console.log(
      `| ${row.concurrency} | ${row.messages} | ${row.perSecond.toFixed(0)} | ${row.transactions.toFixed(3)} | ${row.cpuMicros.toFixed(0)} | ${(row.perSecond / raw).toFixed(2)} |`
    )
  }
}

/** Runs both backends and prints a table each. */
export const entityStoreBench = (scale: number, givenUrl: string | undefined) =>
  Effect.gen(function* () {
    const count = (n: number) => Math.max(50, Math.ceil(n * scale))
    const dir = mkdtempSync(join(tmpdir(), "effect-cluster-entities-"))
    yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
    const sqlite = onSqlite(dir)
    let file = 0
    const sqliteRaw = () =>
      sqliteRawCommitRate(count(1500)).pipe(
        Effect.provide(SqliteClient.layer({ filename: join(dir, `raw-${++file}.db`) }))
      )
    const sqliteRaws = [yield* sqliteRaw()]
    const sqliteRows = [yield* measure(sqlite, "c1", count(1500), 1)]
    sqliteRaws.push(yield* sqliteRaw())
    sqliteRows.push(yield* measure(sqlite, "c100", count(40_000), 100))
    sqliteRaws.push(yield* sqliteRaw())
    print("SQLite (WAL, synchronous=FULL)", sqliteRaws, sqliteRows)

    const url = yield* serverUrl(givenUrl)
    const postgres = onPostgres(url)
    const run = Date.now()
    const pgRaws = [yield* rawCommitRate(url, count(1500), `raw_entities_${run}_1`)]
    const pgRows = [yield* measure(postgres, `bench_entities_${run}_c1_`, count(1500), 1)]
    pgRaws.push(yield* rawCommitRate(url, count(1500), `raw_entities_${run}_2`))
    pgRows.push(yield* measure(postgres, `bench_entities_${run}_c100_`, count(40_000), 100))
    pgRaws.push(yield* rawCommitRate(url, count(1500), `raw_entities_${run}_3`))
    print(givenUrl === undefined ? "PostgreSQL (throwaway server, fsync on)" : "PostgreSQL", pgRaws, pgRows)
  }).pipe(Effect.scoped)
