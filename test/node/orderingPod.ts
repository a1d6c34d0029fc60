/**
 * A pod as a child process for the ordering test (`Ordering.test.ts`): it hosts `AppliedCounter`
 * entities (persisted; the state is the ids of the increments applied, in order) with the pods'
 * network on, and runs senders that interleave `sendDiscard(Add)` and `send(Applied)` to counters
 * of every pod. Each sender's operations are sequential, so its increments of one counter have an
 * order the counter must keep.
 *
 * The ledger (one JSON line per event, O_APPEND, times from the host clock):
 * - `{"k": "ack", "en": counter, "m": messageId, "s": sender, "n": its n-th op, "t": ms}` once an
 *   increment was acknowledged (`sendDiscard` returned: stored);
 * - `{"k": "read", "en": counter, "inv": ms, "v": [ids]}`: a read invoked at `inv` answered `v`.
 *
 * Lines on stdin: `{"run": {"prefix", "senders", "counters", "ops"}}` runs `senders` senders of
 * `ops` operations each on counters `counter-0..counters-1`, then prints `{"ran": {"acks",
 * "reads", "errors": {tag: count}}}`. `{"dump": counters}` reads every counter and prints
 * `{"dumped": {counter: [ids]}}`. It prints `{"ready": podId, "address": ...}` once its sharding runs.
 *
 * Usage: node --conditions=@effect-cluster/source test/node/orderingPod.ts '<json options>'
 */
import { appendFileSync } from "node:fs"
import { createInterface } from "node:readline"
import { Duration, Effect, Fiber, Layer, Logger, Schema } from "effect"
import { Membership, Sharding, SqliteJournal } from "effect-cluster"
import { PostgresJournal } from "effect-cluster/postgres"
import { Add, Applied, AppliedCounter, appliedBehaviour } from "../sharding/fixtures/appliedCounter.ts"

const Options = Schema.Struct({
  store: Schema.String,
  podId: Schema.String,
  ledger: Schema.String,
  shardCount: Schema.Number,
  port: Schema.optional(Schema.Number),
  advertise: Schema.optional(Schema.String),
  requestTimeoutMillis: Schema.Number
})
const options = Schema.decodeUnknownSync(Schema.fromJsonString(Options))(process.argv[2])
const say = (line: unknown) => console.log(JSON.stringify(line))
const log = (line: Record<string, unknown>) => appendFileSync(options.ledger, `${JSON.stringify(line)}\n`)

const Run = Schema.Struct({
  prefix: Schema.String,
  senders: Schema.Number,
  counters: Schema.Number,
  ops: Schema.Number
})
const Command = Schema.fromJsonString(
  Schema.Union([Schema.Struct({ run: Run }), Schema.Struct({ dump: Schema.Number })])
)

const storeLayer = options.store.startsWith("postgres")
  ? PostgresJournal.layer({ url: options.store })
  : SqliteJournal.layer({ filename: options.store })

const cluster = Sharding.layer({ sendTimeout: "30 seconds" }).pipe(
  Layer.provideMerge(
    Membership.layer({
      podId: options.podId,
      shardCount: options.shardCount,
      leaseTtl: "5 seconds",
      network: {
        port: options.port,
        advertise: options.advertise,
        requestTimeout: Duration.millis(options.requestTimeoutMillis)
      }
    })
  ),
  Layer.provideMerge(storeLayer)
)

/** `senders` sequential senders, each a mix of increments (acknowledged once stored) and reads. */
const run = (command: typeof Run.Type) =>
  Effect.gen(function* () {
    const counter = yield* Sharding.messenger(AppliedCounter)
    const errors: Record<string, number> = {}
    let acks = 0
    let reads = 0
    const sender = (s: number) =>
      Effect.gen(function* () {
        const id = `${options.podId}-${command.prefix}-s${s}`
        for (let n = 0; n < command.ops; n++) {
          const en = `counter-${Math.floor(Math.random() * command.counters)}`
          const messageId = `${id}-${n}`
          if (Math.random() < 0.6) {
            const sent = yield* Effect.result(counter.sendDiscard(en)(new Add({ messageId })))
            if (sent._tag === "Failure") {
              errors[sent.failure._tag] = (errors[sent.failure._tag] ?? 0) + 1
              continue
            }
            log({ k: "ack", en, m: messageId, s: id, n, t: Date.now() })
            acks++
          } else {
            const inv = Date.now()
            const read = yield* Effect.result(counter.send(en)(new Applied({ messageId })))
            if (read._tag === "Failure") {
              errors[read.failure._tag] = (errors[read.failure._tag] ?? 0) + 1
              continue
            }
            log({ k: "read", en, inv, v: read.success })
            reads++
          }
        }
      })
    yield* Effect.forEach(
      Array.from({ length: command.senders }, (_, s) => s),
      sender,
      {
        concurrency: "unbounded",
        discard: true
      }
    )
    return { acks, reads, errors }
  })

const dump = (counters: number) =>
  Effect.gen(function* () {
    const counter = yield* Sharding.messenger(AppliedCounter)
    const entries = yield* Effect.forEach(
      Array.from({ length: counters }, (_, c) => `counter-${c}`),
      (en) =>
        Effect.map(
          counter.send(en)(new Applied({ messageId: `${options.podId}-dump-${Date.now()}-${en}` })),
          (applied) => [en, applied] as const
        ),
      { concurrency: "unbounded" }
    )
    return Object.fromEntries(entries)
  })

const main = Effect.gen(function* () {
  yield* Sharding.registerEntity(AppliedCounter)(appliedBehaviour())
  const membership = yield* Membership.Membership
  say({ ready: options.podId, address: membership.network?.network.address ?? null })
  const services = yield* Effect.context<Sharding.Sharding>()
  createInterface({ input: process.stdin }).on("line", (line) => {
    const command = Schema.decodeUnknownSync(Command)(line)
    const task: Effect.Effect<unknown, unknown, Sharding.Sharding> =
      "run" in command
        ? Effect.map(run(command.run), (ran) => ({ ran }))
        : Effect.map(dump(command.dump), (dumped) => ({ dumped }))
    Effect.runFork(
      task.pipe(
        Effect.provideContext(services),
        Effect.match({ onSuccess: say, onFailure: (error) => say({ error: String(error) }) })
      )
    )
  })
  return yield* Effect.never
})

const logger = Logger.make(({ logLevel, message }) => say({ level: logLevel, message }))

const fiber = Effect.runFork(
  main.pipe(
    Effect.scoped,
    Effect.provide(cluster),
    Effect.provide(Logger.layer([logger])),
    Effect.catchCause((cause) => Effect.sync(() => say({ error: String(cause) })))
  )
)
process.once("SIGTERM", () => Effect.runFork(Fiber.interrupt(fiber)))
fiber.addObserver(() => {
  say({ stopped: options.podId })
  process.exit(0)
})
