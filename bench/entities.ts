/**
 * `npm run bench -- --only entities`: the talk's counter entity (`test/sharding/fixtures/counter.ts`)
 * in one process, driven through `Sharding.messenger`:
 *
 * - **ask**: `send(entityId)(new Increment(...))`, each caller waiting for the reply before its next
 *   message; messages/s and the p50/p99 latency of one round trip;
 * - **tell**: `sendDiscard` of every message, then one `send(GetCurrent)` per entity, whose reply
 *   (the entity handles its messages in order) says every message before it was handled: messages/s
 *   from the first `sendDiscard` to the last reply.
 *
 * Concurrency 1 is one caller and one entity; concurrency 100 is 100 callers, each with an entity of
 * its own. Every measurement uses fresh entity ids (the first message of each starts its entity),
 * and checks at the end that each entity counted exactly the messages sent to it.
 *
 * Ours runs volatile (`CounterEntity`: no store involved in local sends) and persisted
 * (`PersistedCounter`: a dedupe read before the handler, reply and state written in one fenced
 * transaction before the sender gets the reply) on the memory store. The peer is effect 4.1's own
 * `Entity` (`bench/peers/effectEntity.ts`) with the same behaviour; ours and the peer are measured in
 * alternating rounds and the median is shown.
 *
 * Then the persisted counter on SQLite (a file in a temporary directory, `SqliteJournal.layer`) and
 * on PostgreSQL (the `--postgres` server or a throwaway one, `PostgresJournal.layer`), each a pod
 * owning every shard (`Membership.layer()` on the store's `ShardStore`, so every owner write is
 * fenced), beside its ceilings measured in the same run: the backend's raw single-row commit rate,
 * and the entity store's writes alone (`bench/entityStore.ts`: enqueue then complete per message,
 * no runtime).
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Context, Effect, Layer } from "effect"
import { PostgresJournal } from "effect-cluster/postgres"
import { EntityStore } from "../src/sharding/EntityStore.ts"
import * as Batcher from "../src/sharding/internal/Batcher.ts"
import * as Membership from "../src/sharding/Membership.ts"
import type { AnyEntityType } from "../src/sharding/RecipientType.ts"
import * as Sharding from "../src/sharding/Sharding.ts"
import * as MemoryEntityStore from "../src/storage/memory/MemoryEntityStore.ts"
import type { EntityStoreStats } from "../src/storage/sql/SqlEntityStore.ts"
import * as SqliteJournal from "../src/storage/sqlite/SqliteJournal.ts"
import {
  CounterEntity,
  counterBehaviour,
  GetCurrent,
  Increment,
  PersistedCounter
} from "../test/sharding/fixtures/counter.ts"
import { entityStoreBench, type Measured as StoreMeasured } from "./entityStore.ts"
import * as EffectEntity from "./peers/effectEntity.ts"
import { serverUrl } from "./postgres.ts"

type CounterClient = EffectEntity.CounterClient

/** Our counter of `type` on the sharding in context: the bench's client. */
const ourCounter = (type: typeof CounterEntity | typeof PersistedCounter) =>
  Effect.gen(function* () {
    yield* Sharding.registerEntity(type as AnyEntityType)(counterBehaviour())
    const counter = yield* Sharding.messenger(type)
    return {
      send: (entityId, messageId) => Effect.orDie(counter.send(entityId)(new Increment({ messageId }))),
      sendDiscard: (entityId, messageId) =>
        Effect.orDie(counter.sendDiscard(entityId)(new Increment({ messageId }))),
      get: (entityId, messageId) => Effect.orDie(counter.send(entityId)(new GetCurrent({ messageId })))
    } satisfies CounterClient
  })

/** One process running every shard, on a fresh memory entity store, until the scope closes. */
const memorySharding = Layer.build(
  Sharding.layer().pipe(
    Layer.provideMerge(Membership.layer()),
    Layer.provideMerge(Layer.sync(EntityStore, () => MemoryEntityStore.make()))
  )
)

/** A measurement: messages, wall time, and the round trips' latencies (ask only), in ms. */
export interface Measured {
  readonly messages: number
  readonly seconds: number
  readonly latencies: Float64Array | undefined
}

let run = 0

/** `messages` asks, `concurrency` callers each with an entity of its own. */
const asks = (client: CounterClient, messages: number, concurrency: number) =>
  Effect.gen(function* () {
    const prefix = `r${++run}`
    const perCaller = Math.ceil(messages / concurrency)
    const latencies = new Float64Array(perCaller * concurrency)
    const started = performance.now()
    yield* Effect.forEach(
      Array.from({ length: concurrency }, (_, caller) => caller),
      (caller) =>
        Effect.gen(function* () {
          const entityId = `${prefix}-e${caller}`
          for (let i = 0; i < perCaller; i++) {
            const sent = performance.now()
            yield* client.send(entityId, `${entityId}-m${i}`)
            latencies[caller * perCaller + i] = performance.now() - sent
          }
        }),
      { concurrency: "unbounded", discard: true }
    )
    const seconds = (performance.now() - started) / 1000
    yield* check(client, prefix, concurrency, perCaller)
    return { messages: perCaller * concurrency, seconds, latencies } satisfies Measured
  })

/** `messages` tells, then one ask per entity that answers once all of its messages are handled. */
const tells = (client: CounterClient, messages: number, concurrency: number) =>
  Effect.gen(function* () {
    const prefix = `r${++run}`
    const perCaller = Math.ceil(messages / concurrency)
    const counts: Array<number> = []
    const started = performance.now()
    yield* Effect.forEach(
      Array.from({ length: concurrency }, (_, caller) => caller),
      (caller) =>
        Effect.gen(function* () {
          const entityId = `${prefix}-e${caller}`
          for (let i = 0; i < perCaller; i++) yield* client.sendDiscard(entityId, `${entityId}-m${i}`)
          counts.push(yield* client.get(entityId, `${entityId}-get`))
        }),
      { concurrency: "unbounded", discard: true }
    )
    const seconds = (performance.now() - started) / 1000
    if (counts.some((count) => count !== perCaller)) {
      return yield* Effect.die(new Error(`tells: counts ${counts.join(",")}, expected ${perCaller} each`))
    }
    return { messages: perCaller * concurrency, seconds, latencies: undefined } satisfies Measured
  })

/** Each entity of a measurement counted exactly the messages sent to it. */
const check = (client: CounterClient, prefix: string, entities: number, expected: number) =>
  Effect.forEach(
    Array.from({ length: entities }, (_, caller) => `${prefix}-e${caller}`),
    (entityId) =>
      Effect.flatMap(client.get(entityId, `${entityId}-check`), (count) =>
        count === expected
          ? Effect.void
          : Effect.die(new Error(`entity ${entityId} counted ${count}, expected ${expected}`))
      ),
    { concurrency: "unbounded", discard: true }
  )

const percentile = (sorted: Float64Array, p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? 0

/** What a row shows of a measurement. */
interface Summary {
  readonly perSecond: number
  readonly p50: number | undefined
  readonly p99: number | undefined
}

const summarize = (measured: Measured): Summary => {
  const sorted = measured.latencies === undefined ? undefined : Float64Array.from(measured.latencies).sort()
  return {
    perSecond: measured.messages / measured.seconds,
    p50: sorted === undefined ? undefined : percentile(sorted, 50),
    p99: sorted === undefined ? undefined : percentile(sorted, 99)
  }
}

/** The middle run of some (by rate); its latencies with it. */
const middle = (runs: ReadonlyArray<Measured>): Summary =>
  summarize(
    [...runs].sort((a, b) => a.messages / a.seconds - b.messages / b.seconds)[Math.floor(runs.length / 2)]!
  )

export interface Row {
  readonly system: string
  readonly mode: "ask" | "tell"
  readonly concurrency: number
  readonly messages: number
  readonly summary: Summary
  readonly runs: ReadonlyArray<number>
}

/** A kind of measurement: ask or tell, at a concurrency, with a number of messages at scale 1. */
interface Kind {
  readonly mode: "ask" | "tell"
  readonly concurrency: number
  readonly messages: number
}

const kinds: ReadonlyArray<Kind> = [
  { mode: "ask", concurrency: 1, messages: 10_000 },
  { mode: "tell", concurrency: 1, messages: 10_000 },
  { mode: "ask", concurrency: 100, messages: 10_000 },
  { mode: "tell", concurrency: 100, messages: 20_000 }
]

/** Runs each kind on each system in turn, `rounds` times; the middle run of each. */
const compare = (
  systems: ReadonlyArray<{ readonly name: string; readonly client: CounterClient }>,
  which: ReadonlyArray<Kind>,
  scale: number,
  rounds: number
) =>
  Effect.gen(function* () {
    const rows: Array<Row> = []
    for (const kind of which) {
      const messages = Math.max(kind.concurrency, Math.ceil(kind.messages * scale))
      const runs = new Map<string, Array<Measured>>(systems.map((system) => [system.name, []]))
      for (let round = 0; round < rounds; round++) {
        for (const system of systems) {
          const measured =
            kind.mode === "ask"
              ? yield* asks(system.client, messages, kind.concurrency)
              : yield* tells(system.client, messages, kind.concurrency)
          runs.get(system.name)!.push(measured)
        }
      }
      for (const system of systems) {
        const measured = runs.get(system.name)!
        rows.push({
          system: system.name,
          mode: kind.mode,
          concurrency: kind.concurrency,
          messages: measured[0]!.messages,
          summary: middle(measured),
          runs: measured.map((m) => m.messages / m.seconds)
        })
      }
    }
    return rows
  })

const fmt = (n: number | undefined, digits = 0) =>
  n === undefined
    ? "–"
    : n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits })

const printRows = (rows: ReadonlyArray<Row>, reference: string) => {
  console.log(
    `| system | mode | concurrency | messages | messages/s (runs) | p50 ms | p99 ms | ${reference} ÷ this |`
  )
  console.log("|---|---|---|---|---|---|---|---|")
  for (const row of rows) {
    const ours = rows.find(
      (other) =>
        other.system === reference && other.mode === row.mode && other.concurrency === row.concurrency
    )
    const ratio = ours === undefined ? undefined : ours.summary.perSecond / row.summary.perSecond
    console.log(
      `| ${row.system} | ${row.mode} | ${row.concurrency} | ${fmt(row.messages)} | ${fmt(row.summary.perSecond)} (${row.runs.map((r) => fmt(r)).join(", ")}) | ${fmt(row.summary.p50, 3)} | ${fmt(row.summary.p99, 3)} | ${fmt(ratio, 2)} |`
    )
  }
}

/**
 * What the runtime asks of the store for each persisted `send`, without the runtime: the dedupe
 * read (batched like the runtime's, `internal/Batcher.ts`), then the fenced `complete` with the
 * reply and the state; `concurrency` callers, each with an entity of its own.
 */
const storeCallsAlone = (
  context: Context.Context<EntityStore | Membership.Membership>,
  messages: number,
  concurrency: number
) =>
  Effect.gen(function* () {
    const store = Context.get(context, EntityStore)
    const membership = Context.get(context, Membership.Membership)
    const outcome = Batcher.make(store.outcomes)
    const prefix = `r${++run}`
    const perCaller = Math.ceil(messages / concurrency)
    const started = performance.now()
    yield* Effect.forEach(
      Array.from({ length: concurrency }, (_, caller) => caller),
      (caller) =>
        Effect.gen(function* () {
          const entityId = `${prefix}-e${caller}`
          const shard = membership.shardOf(entityId)
          const epoch = membership.pod?.epochOf(shard)
          const fence = epoch === undefined ? undefined : { shard, epoch }
          for (let i = 0; i < perCaller; i++) {
            const key = { entityType: PersistedCounter.name, entityId, messageId: `${entityId}-m${i}` }
            if ((yield* outcome(key)) !== undefined)
              return yield* Effect.die(new Error("a fresh id was known"))
            const [result] = yield* store.complete([
              {
                ...key,
                fence,
                shard,
                payload: JSON.stringify({ _tag: "Increment", messageId: key.messageId }),
                reply: null,
                state: String(i + 1),
                now: Date.now()
              }
            ])
            if (result?._tag !== "Written") return yield* Effect.die(new Error(`complete: ${result?._tag}`))
          }
        }),
      { concurrency: "unbounded", discard: true }
    )
    const seconds = (performance.now() - started) / 1000
    return { messages: perCaller * concurrency, seconds, latencies: undefined } satisfies Measured
  })

/** The persisted counter on a SQL store: the rows, and transactions per message from the store's counters. */
interface SqlRow {
  readonly mode: "ask" | "tell" | "store calls alone"
  readonly concurrency: number
  readonly measured: Measured
  readonly transactions: number | undefined
}

/**
 * The persisted counter on the store `journal` provides, a pod owning every shard: ask at
 * concurrency 100 and 1, tell at 100.
 */
const persistedOn = (journal: Layer.Layer<EntityStore, unknown>, scale: number) =>
  Effect.gen(function* () {
    const context = yield* Layer.build(
      Sharding.layer().pipe(Layer.provideMerge(Membership.layer()), Layer.provideMerge(journal))
    )
    const stats = (Context.get(context, EntityStore) as Partial<{ readonly stats: EntityStoreStats }>).stats
    const transactions = () =>
      stats === undefined ? 0 : stats.enqueue.transactions + stats.owner.transactions
    const client = yield* Effect.provideContext(ourCounter(PersistedCounter), context)
    // Warm-up: the statements, the JIT.
    yield* asks(client, 200, 100)
    yield* tells(client, 200, 100)
    const rows: Array<SqlRow> = []
    const count = (n: number, concurrency: number) => Math.max(concurrency * 2, Math.ceil(n * scale))
    for (const kind of [
      { mode: "ask", concurrency: 100, messages: 10_000 },
      { mode: "store calls alone", concurrency: 100, messages: 10_000 },
      { mode: "tell", concurrency: 100, messages: 10_000 },
      { mode: "ask", concurrency: 1, messages: 300 }
    ] as const) {
      const before = transactions()
      const messages = count(kind.messages, kind.concurrency)
      const measured =
        kind.mode === "ask"
          ? yield* asks(client, messages, kind.concurrency)
          : kind.mode === "tell"
            ? yield* tells(client, messages, kind.concurrency)
            : yield* storeCallsAlone(context, messages, kind.concurrency)
      rows.push({
        ...kind,
        measured,
        transactions: stats === undefined ? undefined : (transactions() - before) / measured.messages
      })
    }
    return rows
  }).pipe(Effect.scoped)

const printSql = (
  backend: string,
  ceiling: { readonly raw: number; readonly rows: ReadonlyArray<StoreMeasured> },
  rows: ReadonlyArray<SqlRow>
) => {
  const alone = ceiling.rows.find((row) => row.concurrency === 100)
  const callsAlone = rows.find((row) => row.mode === "store calls alone")
  console.log(
    `\nThe persisted counter on ${backend}: raw single-row commit rate ${fmt(ceiling.raw)} commits/s; the entity store alone at concurrency 100 (enqueue + complete per message, bench/entityStore.ts): ${fmt(alone?.perSecond)} messages/s, ${fmt(alone?.transactions, 3)} transactions per message\n`
  )
  console.log(
    "| mode | concurrency | messages | messages/s | p50 ms | p99 ms | store transactions / message | ÷ raw commit rate | ÷ the same store work without the runtime |"
  )
  console.log("|---|---|---|---|---|---|---|---|---|")
  for (const row of rows) {
    const summary = summarize(row.measured)
    // ask: its own store calls alone; tell: the store's enqueue + complete alone (tell also reads).
    const reference =
      row.concurrency !== 100 || row.mode === "store calls alone"
        ? undefined
        : row.mode === "ask"
          ? callsAlone === undefined
            ? undefined
            : summarize(callsAlone.measured).perSecond
          : alone?.perSecond
    console.log(
      `| ${row.mode} | ${row.concurrency} | ${fmt(row.measured.messages)} | ${fmt(summary.perSecond)} | ${fmt(summary.p50, 3)} | ${fmt(summary.p99, 3)} | ${fmt(row.transactions, 3)} | ${fmt(summary.perSecond / ceiling.raw, 2)} | ${reference === undefined ? "–" : fmt(summary.perSecond / reference, 2)} |`
    )
  }
}

/** Runs the entities benchmark and prints its tables. */
export const entitiesBench = (scale: number, givenUrl: string | undefined) =>
  Effect.gen(function* () {
    const rounds = scale < 1 ? 1 : 3
    const volatile = yield* Effect.flatMap(memorySharding, (context) =>
      Effect.provideContext(ourCounter(CounterEntity), context)
    )
    const persisted = yield* Effect.flatMap(memorySharding, (context) =>
      Effect.provideContext(ourCounter(PersistedCounter), context)
    )
    const peers = [
      { name: "ours, volatile", client: volatile },
      { name: "effect Entity, TestRunner", client: yield* EffectEntity.viaSharding },
      { name: "effect Entity, makeTestClient", client: yield* EffectEntity.viaTestClient }
    ]
    const memory = [{ name: "ours, persisted, memory store", client: persisted }]
    // Warm-up: the JIT, every code path of each system.
    yield* compare([...peers, ...memory], kinds, 0.05, 1)
    const rows = yield* compare(peers, kinds, scale, rounds)
    rows.push(...(yield* compare(memory, kinds, scale, 1)))
    console.log(
      `\nEntities in one process: the talk's counter; ours and effect's in ${rounds} alternating round(s), the middle one shown\n`
    )
    printRows(rows, "ours, volatile")

    // The ceilings (the store alone, raw commit rates), then the persisted counter on each SQL store.
    const url = yield* serverUrl(givenUrl)
    // The store alone at half its own default size: this part's time stays near a minute.
    const ceilings = yield* entityStoreBench(scale / 2, url)
    const dir = mkdtempSync(join(tmpdir(), "effect-cluster-entities-"))
    yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
    const sqliteRows = yield* persistedOn(SqliteJournal.layer({ filename: join(dir, "counter.db") }), scale)
    printSql("SQLite (WAL, synchronous=FULL)", ceilings.sqlite, sqliteRows)
    const postgresRows = yield* persistedOn(
      PostgresJournal.layer({ url, tablePrefix: `bench_counter_${Date.now()}_` }),
      scale
    )
    printSql(
      givenUrl === undefined ? "PostgreSQL (throwaway server, fsync on)" : "PostgreSQL",
      ceilings.postgres,
      postgresRows
    )
    return rows
  }).pipe(Effect.scoped)
