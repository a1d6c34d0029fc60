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
 * `Entity` (`bench/peers/effectEntity.ts`) with the same behaviour. Ours and the peer run in
 * alternating rounds; each figure is the median over the rounds, with this process's CPU time per
 * message beside it (less sensitive than the wall clock to other work on a shared machine).
 *
 * Then the persisted counter on SQLite (a file in a temporary directory, `SqliteJournal.layer`) and
 * on PostgreSQL (the `--postgres` server or a throwaway one, `PostgresJournal.layer`), each a pod
 * owning every shard (`Membership.layer()` on the store's `ShardStore`, so every owner write is
 * fenced), beside its ceilings measured in the same run: the backend's raw single-row commit rate;
 * the entity store's writes alone (`bench/entityStore.ts`: enqueue then complete per message, no
 * runtime); and the store calls a persisted ask makes (the batched dedupe read, then the fenced
 * complete), made without the runtime, in rounds alternating with the asks.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Context, Effect, Layer } from "effect"
import { PostgresJournal } from "effect-cluster/postgres"
import * as Batcher from "../src/internal/Batcher.ts"
import { EntityStore, type MessageKey } from "../src/sharding/EntityStore.ts"
import * as EntityRuntime from "../src/sharding/internal/EntityRuntime.ts"
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
import { describeDelay, withLoopDelay } from "./loopDelay.ts"
import * as EffectEntity from "./peers/effectEntity.ts"
import { serverUrl } from "./postgres.ts"

type CounterClient = EffectEntity.CounterClient

/** Our counter of `type` on the sharding in context: the bench's client. */
export const ourCounter = (type: typeof CounterEntity | typeof PersistedCounter) =>
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

/** A measurement: messages, wall time, CPU, and the round trips' latencies (ask only), in ms. */
export interface Measured {
  readonly messages: number
  readonly seconds: number
  /** This process's CPU time per message, µs. */
  readonly cpuMicros: number
  readonly latencies: Float64Array | undefined
}

let run = 0

/**
 * Runs `perCaller` messages on each of `concurrency` callers, each with an entity of its own
 * (`${prefix}-e${caller}`), timing them.
 */
const timed = (
  concurrency: number,
  perCaller: number,
  latencies: Float64Array | undefined,
  caller: (entityId: string, caller: number) => Effect.Effect<void>
) =>
  Effect.gen(function* () {
    const prefix = `r${++run}`
    const started = performance.now()
    const cpu = process.cpuUsage()
    yield* Effect.forEach(
      Array.from({ length: concurrency }, (_, index) => index),
      (index) => caller(`${prefix}-e${index}`, index),
      { concurrency: "unbounded", discard: true }
    )
    const seconds = (performance.now() - started) / 1000
    const used = process.cpuUsage(cpu)
    const messages = perCaller * concurrency
    return {
      prefix,
      measured: { messages, seconds, cpuMicros: (used.user + used.system) / messages, latencies }
    }
  })

/** `messages` asks, `concurrency` callers each with an entity of its own. */
export const asks = (client: CounterClient, messages: number, concurrency: number) =>
  Effect.gen(function* () {
    const perCaller = Math.ceil(messages / concurrency)
    const latencies = new Float64Array(perCaller * concurrency)
    const { prefix, measured } = yield* timed(concurrency, perCaller, latencies, (entityId, caller) =>
      Effect.gen(function* () {
        for (let i = 0; i < perCaller; i++) {
          const sent = performance.now()
          yield* client.send(entityId, `${entityId}-m${i}`)
          latencies[caller * perCaller + i] = performance.now() - sent
        }
      })
    )
    yield* check(client, prefix, concurrency, perCaller)
    return measured
  })

/** `messages` tells, then one ask per entity that answers once all of its messages are handled. */
export const tells = (client: CounterClient, messages: number, concurrency: number) =>
  Effect.gen(function* () {
    const perCaller = Math.ceil(messages / concurrency)
    const counts: Array<number> = []
    const { measured } = yield* timed(concurrency, perCaller, undefined, (entityId) =>
      Effect.gen(function* () {
        for (let i = 0; i < perCaller; i++) yield* client.sendDiscard(entityId, `${entityId}-m${i}`)
        counts.push(yield* client.get(entityId, `${entityId}-get`))
      })
    )
    if (counts.some((count) => count !== perCaller)) {
      return yield* Effect.die(new Error(`tells: counts ${counts.join(",")}, expected ${perCaller} each`))
    }
    return measured
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

/**
 * What the runtime asks of the store for each persisted `send`, without the runtime: the dedupe
 * read with the messages ahead (batched like the runtime's, `internal/Batcher.ts`), then the fenced `complete` with the
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
    const outcome = yield* Batcher.make((keys: ReadonlyArray<MessageKey>) =>
      store.outcomesAhead(keys, EntityRuntime.AHEAD)
    )
    const perCaller = Math.ceil(messages / concurrency)
    const { measured } = yield* timed(concurrency, perCaller, undefined, (entityId) =>
      Effect.gen(function* () {
        const shard = membership.shardOf(entityId)
        const epoch = membership.pod?.epochOf(shard)
        const fence = epoch === undefined ? undefined : { shard, epoch }
        for (let i = 0; i < perCaller; i++) {
          const key = { entityType: PersistedCounter.name, entityId, messageId: `${entityId}-m${i}` }
          const read = yield* Effect.orDie(outcome(key))
          if (read.outcome !== undefined || read.ahead.length > 0) {
            return yield* Effect.die(new Error("a fresh id was known"))
          }
          const [result] = yield* Effect.orDie(
            store.complete([
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
          )
          if (result?._tag !== "Written") return yield* Effect.die(new Error(`complete: ${result?._tag}`))
        }
      })
    )
    return measured
  }).pipe(Effect.scoped)

const median = (values: ReadonlyArray<number>) =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? Number.NaN

const percentile = (sorted: Float64Array, p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? 0

/** What a row shows of some runs: medians, and the latencies of the run with the median rate. */
export interface Summary {
  readonly messages: number
  readonly perSecond: number
  readonly runs: ReadonlyArray<number>
  readonly cpuMicros: number
  readonly p50: number | undefined
  readonly p99: number | undefined
}

export const summarize = (runs: ReadonlyArray<Measured>): Summary => {
  const rates = runs.map((m) => m.messages / m.seconds)
  const middle = [...runs].sort((a, b) => a.messages / a.seconds - b.messages / b.seconds)[
    Math.floor(runs.length / 2)
  ]!
  const sorted = middle.latencies === undefined ? undefined : Float64Array.from(middle.latencies).sort()
  return {
    messages: runs[0]!.messages,
    perSecond: median(rates),
    runs: rates,
    cpuMicros: median(runs.map((m) => m.cpuMicros)),
    p50: sorted === undefined ? undefined : percentile(sorted, 50),
    p99: sorted === undefined ? undefined : percentile(sorted, 99)
  }
}

/** A kind of measurement: ask or tell, at a concurrency, with a number of messages at scale 1. */
interface Kind {
  readonly mode: "ask" | "tell"
  readonly concurrency: number
  readonly messages: number
}

interface Row extends Kind {
  readonly system: string
  readonly summary: Summary
}

const kinds: ReadonlyArray<Kind> = [
  { mode: "ask", concurrency: 1, messages: 6_000 },
  { mode: "tell", concurrency: 1, messages: 6_000 },
  { mode: "ask", concurrency: 100, messages: 6_000 },
  { mode: "tell", concurrency: 100, messages: 12_000 }
]

/** Runs each kind on each system in turn, `rounds` times. */
const compare = (
  systems: ReadonlyArray<{ readonly name: string; readonly client: CounterClient }>,
  scale: number,
  rounds: number
) =>
  Effect.gen(function* () {
    const rows: Array<Row> = []
    for (const kind of kinds) {
      const messages = Math.max(kind.concurrency, Math.ceil(kind.messages * scale))
      const runs = new Map<string, Array<Measured>>(systems.map((system) => [system.name, []]))
      for (let round = 0; round < rounds; round++) {
        // Each round starts with another system: none always gets the coldest slot.
        for (let k = 0; k < systems.length; k++) {
          const system = systems[(round + k) % systems.length]!
          const measured =
            kind.mode === "ask"
              ? yield* asks(system.client, messages, kind.concurrency)
              : yield* tells(system.client, messages, kind.concurrency)
          runs.get(system.name)!.push(measured)
        }
      }
      for (const system of systems) {
        rows.push({ ...kind, system: system.name, summary: summarize(runs.get(system.name)!) })
      }
    }
    return rows
  })

export const fmt = (n: number | undefined, digits = 0) =>
  n === undefined || Number.isNaN(n)
    ? "–"
    : n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits })

const printRows = (rows: ReadonlyArray<Row>, reference: string) => {
  console.log(
    `| system | mode | concurrency | messages | messages/s, median (runs) | p50 ms | p99 ms | CPU µs / message | ${reference} ÷ this, messages/s | this ÷ ${reference}, CPU / message |`
  )
  console.log("|---|---|---|---|---|---|---|---|---|---|")
  for (const row of rows) {
    const ours = rows.find(
      (other) =>
        other.system === reference && other.mode === row.mode && other.concurrency === row.concurrency
    )?.summary
    const { summary } = row
    console.log(
      `| ${row.system} | ${row.mode} | ${row.concurrency} | ${fmt(summary.messages)} | ${fmt(summary.perSecond)} (${summary.runs.map((r) => fmt(r)).join(", ")}) | ${fmt(summary.p50, 3)} | ${fmt(summary.p99, 3)} | ${fmt(summary.cpuMicros, 1)} | ${fmt(ours && ours.perSecond / summary.perSecond, 2)} | ${fmt(ours && summary.cpuMicros / ours.cpuMicros, 2)} |`
    )
  }
}

/** The persisted counter on a SQL store: a row, with the store's transactions per message. */
interface SqlRow {
  readonly mode: "ask" | "tell" | "its store calls alone"
  readonly concurrency: number
  readonly summary: Summary
  readonly transactions: number | undefined
}

/**
 * The persisted counter on the store `journal` provides, a pod owning every shard: ask at
 * concurrency 100 alternating with its store calls alone, tell at 100, ask at 1.
 */
const persistedOn = (journal: Layer.Layer<EntityStore, unknown>, scale: number, rounds: number) =>
  Effect.gen(function* () {
    const context = yield* Layer.build(
      Sharding.layer().pipe(Layer.provideMerge(Membership.layer()), Layer.provideMerge(journal))
    )
    const stats = (Context.get(context, EntityStore) as Partial<{ readonly stats: EntityStoreStats }>).stats
    const transactions = () =>
      stats === undefined ? 0 : stats.enqueue.transactions + stats.owner.transactions
    const client = yield* Effect.provideContext(ourCounter(PersistedCounter), context)
    // Warm-up: the statements, the JIT. On SQLite the first ~20,000 asks of a process run up to 2x
    // slower than the ones after; the runtime's own paths are warm from the memory rows already.
    const warmUp = Math.max(200, Math.ceil(10_000 * scale))
    yield* asks(client, warmUp, 100)
    yield* storeCallsAlone(context, warmUp, 100)
    yield* tells(client, warmUp / 2, 100)
    const count = (n: number, concurrency: number) => Math.max(concurrency * 2, Math.ceil(n * scale))
    const runs = { ask: [] as Array<Measured>, alone: [] as Array<Measured>, one: [] as Array<Measured> }
    const commits = { ask: 0, alone: 0, one: 0 }
    const counted = <A>(key: keyof typeof commits, effect: Effect.Effect<A>) =>
      Effect.gen(function* () {
        const before = transactions()
        const result = yield* effect
        commits[key] += transactions() - before
        return result
      })
    for (let round = 0; round < rounds; round++) {
      runs.ask.push(yield* counted("ask", asks(client, count(10_000, 100), 100)))
      runs.alone.push(yield* counted("alone", storeCallsAlone(context, count(10_000, 100), 100)))
      runs.one.push(yield* counted("one", asks(client, count(300, 1), 1)))
    }
    const beforeTell = transactions()
    const tell = yield* tells(client, count(10_000, 100), 100)
    const perMessage = (key: keyof typeof commits, measured: ReadonlyArray<Measured>) =>
      stats === undefined ? undefined : commits[key] / measured.reduce((n, m) => n + m.messages, 0)
    return [
      {
        mode: "ask",
        concurrency: 100,
        summary: summarize(runs.ask),
        transactions: perMessage("ask", runs.ask)
      },
      {
        mode: "its store calls alone",
        concurrency: 100,
        summary: summarize(runs.alone),
        transactions: perMessage("alone", runs.alone)
      },
      {
        mode: "tell",
        concurrency: 100,
        summary: summarize([tell]),
        transactions: stats === undefined ? undefined : (transactions() - beforeTell) / tell.messages
      },
      { mode: "ask", concurrency: 1, summary: summarize(runs.one), transactions: perMessage("one", runs.one) }
    ] satisfies ReadonlyArray<SqlRow>
  }).pipe(Effect.scoped)

const printSql = (
  backend: string,
  ceiling: { readonly raw: number; readonly rows: ReadonlyArray<StoreMeasured> },
  rows: ReadonlyArray<SqlRow>
) => {
  const alone = ceiling.rows.find((row) => row.concurrency === 100)
  const callsAlone = rows.find((row) => row.mode === "its store calls alone")?.summary
  console.log(
    `\nThe persisted counter on ${backend}: raw single-row commit rate ${fmt(ceiling.raw)} commits/s; the entity store alone at concurrency 100 (enqueue + complete per message, bench/entityStore.ts): ${fmt(alone?.perSecond)} messages/s, ${fmt(alone?.transactions, 3)} transactions per message\n`
  )
  console.log(
    "| mode | concurrency | messages | messages/s, median (runs) | p50 ms | p99 ms | CPU µs / message | store transactions / message | ÷ raw commit rate | ÷ the same store work without the runtime |"
  )
  console.log("|---|---|---|---|---|---|---|---|---|---|")
  for (const row of rows) {
    const { summary } = row
    // ask: its own store calls alone; tell: the store's enqueue + complete alone (tell also reads).
    const reference =
      row.concurrency !== 100 || row.mode === "its store calls alone"
        ? undefined
        : row.mode === "ask"
          ? callsAlone?.perSecond
          : alone?.perSecond
    console.log(
      `| ${row.mode} | ${row.concurrency} | ${fmt(summary.messages)} | ${fmt(summary.perSecond)} (${summary.runs.map((r) => fmt(r)).join(", ")}) | ${fmt(summary.p50, 3)} | ${fmt(summary.p99, 3)} | ${fmt(summary.cpuMicros, 0)} | ${fmt(row.transactions, 3)} | ${fmt(summary.perSecond / ceiling.raw, 2)} | ${fmt(reference && summary.perSecond / reference, 2)} |`
    )
  }
}

/** Runs the entities benchmark and prints its tables. */
export const entitiesBench = (scale: number, givenUrl: string | undefined) =>
  Effect.gen(function* () {
    const rounds = scale < 1 ? 1 : 5
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
    // Warm-up: the JIT, every code path of each system (a shorter one left the first rounds ~1.5x slower).
    yield* compare([...peers, ...memory], 0.5, 1)
    const rows = yield* compare(peers, scale, rounds)
    rows.push(...(yield* compare(memory, scale, Math.min(rounds, 3))))
    console.log(
      `\nEntities in one process: the talk's counter; ours and effect's in ${rounds} alternating round(s)\n`
    )
    printRows(rows, "ours, volatile")

    // The ceilings (the store alone, raw commit rates), then the persisted counter on each SQL store.
    const url = yield* serverUrl(givenUrl)
    // The store alone at half its own default size: this part's time stays under a minute.
    const ceilings = yield* entityStoreBench(scale / 2, url)
    const dir = mkdtempSync(join(tmpdir(), "effect-cluster-entities-"))
    yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
    const sqlRounds = Math.min(rounds, 3)
    const [sqliteRows, sqliteDelay] = yield* withLoopDelay(
      persistedOn(SqliteJournal.layer({ filename: join(dir, "counter.db") }), scale, sqlRounds)
    )
    printSql("SQLite (WAL, synchronous=FULL)", ceilings.sqlite, sqliteRows)
    console.log(`\nPersisted on SQLite: ${describeDelay(sqliteDelay)}`)
    const [postgresRows, postgresDelay] = yield* withLoopDelay(
      persistedOn(
        PostgresJournal.layer({ url, tablePrefix: `bench_counter_${Date.now()}_` }),
        scale,
        sqlRounds
      )
    )
    printSql(
      givenUrl === undefined ? "PostgreSQL (throwaway server, fsync on)" : "PostgreSQL",
      ceilings.postgres,
      postgresRows
    )
    console.log(`\nPersisted on PostgreSQL: ${describeDelay(postgresDelay)}`)
    return { rows, sqlite: sqliteRows, postgres: postgresRows }
  }).pipe(Effect.scoped)
