/**
 * One pod of the counter demo: it hosts the Counter entities of the shards it owns and, if asked,
 * sends its share of the messages. It prints JSON lines: `{"ready": podId}`, `{"sent": n}` as it
 * sends, `{"counts": {...}}` in answer to a `{"get": counters}` line on stdin, and its logs. With
 * `send.holdAt`, it stops before its `holdAt`-th message (`{"held": n}`) until a `{"go": true}` line.
 *
 * With a ledger file, each message the handler runs for is appended to it as a JSON line
 * `{"m": messageId, "e": entityId, "p": podId}`: a message in it twice ran twice (only a crash
 * before its outcome was stored may do that, and then only one of the runs counted).
 *
 * Usage: node --conditions=@effect-cluster/source examples/counter/pod.ts '<json options>'
 */
import { appendFileSync } from "node:fs"
import { createInterface } from "node:readline"
import { Deferred, Duration, Effect, Exit, Fiber, Layer, Logger, Schema } from "effect"
import { Membership, Sharding, SqliteJournal } from "effect-cluster"
import { PostgresJournal } from "effect-cluster/postgres"
import { CounterEntity, counterBehaviour, GetCurrent, planned } from "./counter.ts"

const Options = Schema.Struct({
  /** A SQLite file path, or a postgres:// URL. */
  store: Schema.String,
  tablePrefix: Schema.optional(Schema.String),
  podId: Schema.String,
  leaseTtlMillis: Schema.optional(Schema.Number),
  shardCount: Schema.optional(Schema.Number),
  ledger: Schema.optional(Schema.String),
  /** How long the handler takes per message. */
  handleMillis: Schema.optional(Schema.Number),
  /** Send messages `from .. from+count-1` of the plan (see `planned`), `perSecond` of them. */
  send: Schema.optional(
    Schema.Struct({
      from: Schema.Number,
      count: Schema.Number,
      counters: Schema.Number,
      perSecond: Schema.Number,
      /** Wait for `{"go": true}` on stdin before sending this many + 1st message. */
      holdAt: Schema.optional(Schema.Number)
    })
  )
})

const options = Schema.decodeUnknownSync(Schema.fromJsonString(Options))(process.argv[2])
const say = (line: unknown) => console.log(JSON.stringify(line))

const Command = Schema.fromJsonString(
  Schema.Union([Schema.Struct({ get: Schema.Number }), Schema.Struct({ go: Schema.Literal(true) })])
)

const store = options.store.startsWith("postgres")
  ? PostgresJournal.layer({ url: options.store, tablePrefix: options.tablePrefix })
  : SqliteJournal.layer({ filename: options.store, tablePrefix: options.tablePrefix })

const cluster = Sharding.layer().pipe(
  Layer.provideMerge(
    Membership.layer({
      podId: options.podId,
      shardCount: options.shardCount,
      leaseTtl: options.leaseTtlMillis === undefined ? undefined : Duration.millis(options.leaseTtlMillis)
    })
  ),
  Layer.provideMerge(Layer.fresh(store))
)

const record = (entityId: string, message: { readonly messageId: string; readonly _tag: string }) => {
  if (options.ledger !== undefined && message._tag !== "GetCurrent") {
    appendFileSync(
      options.ledger,
      `${JSON.stringify({ m: message.messageId, e: entityId, p: options.podId })}\n`
    )
  }
}

let asked = 0
/**
 * Asks every counter for its count (from this pod: some are here, the others elsewhere), timing
 * each ask: `latency` has the milliseconds of the asks answered by another pod (over the network)
 * and of those answered here.
 */
const counts = (counters: number) =>
  Effect.gen(function* () {
    const counter = yield* Sharding.messenger(CounterEntity)
    const membership = yield* Membership.Membership
    asked++
    const latency = { remote: [] as Array<number>, local: [] as Array<number> }
    const entries = yield* Effect.forEach(
      Array.from({ length: counters }, (_, c) => `counter-${c}`),
      (entityId) =>
        Effect.gen(function* () {
          const here = membership.pod?.epochOf(membership.shardOf(entityId)) !== undefined
          const started = performance.now()
          const count = yield* counter.send(entityId)(
            new GetCurrent({ messageId: `get-${options.podId}-${asked}-${entityId}` })
          )
          latency[here ? "local" : "remote"].push(performance.now() - started)
          return [entityId, count] as const
        }),
      { concurrency: 10 }
    )
    return { counts: Object.fromEntries(entries), latency }
  })

const main = Effect.gen(function* () {
  const delay =
    options.handleMillis === undefined ? Effect.void : Effect.sleep(Duration.millis(options.handleMillis))
  yield* Sharding.registerEntity(CounterEntity)(counterBehaviour(record, delay))
  say({ ready: options.podId })
  const lines = createInterface({ input: process.stdin })
  const services = yield* Effect.context<Sharding.Sharding | Membership.Membership>()
  const go = Deferred.makeUnsafe<void>()
  lines.on("line", (line) => {
    const command = Schema.decodeUnknownSync(Command)(line)
    if ("go" in command) {
      Deferred.doneUnsafe(go, Exit.void)
      return
    }
    Effect.runFork(
      counts(command.get).pipe(
        Effect.provideContext(services),
        Effect.match({
          onSuccess: (result) => say(result),
          onFailure: (error) => say({ error: String(error) })
        })
      )
    )
  })
  const send = options.send
  if (send !== undefined) {
    const counter = yield* Sharding.messenger(CounterEntity)
    const gap = Duration.millis(1000 / send.perSecond)
    for (let i = send.from; i < send.from + send.count; i++) {
      if (i - send.from === send.holdAt) {
        say({ held: send.holdAt })
        yield* Deferred.await(go)
      }
      const { entityId, message } = planned(i, send.counters)
      // Accepted once stored; a failure (the store briefly unreachable) is retried with the same
      // message id, which the entity processes once however often it arrives.
      yield* counter
        .sendDiscard(entityId)(message)
        .pipe(Effect.retry({ times: 20 }))
      const sent = i - send.from + 1
      if (sent % 50 === 0 || sent === send.count) say({ sent })
      yield* Effect.sleep(gap)
    }
  }
  return yield* Effect.never
}).pipe(Effect.provide(Layer.mergeAll(cluster, Logger.layer([Logger.consoleJson]))))

const fiber = Effect.runFork(main)
process.once("SIGTERM", () => Effect.runFork(Fiber.interrupt(fiber)))
fiber.addObserver((exit) => {
  if (exit._tag === "Failure" && !exit.cause.reasons.every((reason) => reason._tag === "Interrupt")) {
    console.error(String(exit.cause))
    process.exit(1)
  }
  say({ stopped: options.podId })
  process.exit(0)
})
