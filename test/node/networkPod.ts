/**
 * A pod as a child process for the network tests: it hosts two entity types (`Echo`, volatile;
 * `Tally`, persisted), each answering with the id of the pod that handled the message, and appends
 * every message it handles to a ledger file (`{"t": type, "m": messageId, "p": podId}`). It counts
 * what its sends write to the entity store (a volatile ask over the network writes nothing).
 *
 * `Blob` (volatile) answers `Chunk`s of `bytes` characters of data with the pod's id padded to
 * `replyBytes` characters (`asked` shows it trimmed).
 *
 * It also runs a workflow engine on the same pod (`Job`: one activity, each attempt appended to the
 * ledger as `{"t": "Job", "m": executionId, "a": attempt, "p": podId}`).
 *
 * Lines on stdin: `{"ask": {"type", "ids", "prefix", "concurrency", "bytes"?, "replyBytes"?}}` sends one request per id
 * and prints `{"asked": {"replies": {id: podId}, "errors": {id: tag}, "slowestMillis", "storeWrites"}}`.
 * `{"load": {"prefix", "entities", "concurrency"}}` sends a steady mix (a volatile ask, a persisted
 * ask, a workflow `send`) from `concurrency` fibers until `{"stop": true}`, then prints
 * `{"loaded": {"asks", "workflows", "errors": {what: count}, "slowestMillis", "jobs": [ids]}}`.
 * It prints `{"ready": podId, "address": ...}` once its sharding runs, and `{"stopped": podId}`
 * once SIGTERM closed it gracefully.
 *
 * Usage: node --conditions=@effect-cluster/source test/node/networkPod.ts '<json options>'
 */
import { appendFileSync } from "node:fs"
import { createInterface } from "node:readline"
import { Clock, Deferred, Duration, Effect, Fiber, Layer, Logger, Option, Schema } from "effect"
import {
  Activity,
  ActivityContext,
  EntityStore,
  Membership,
  MessageState,
  RecipientBehaviour,
  Sharding,
  SqliteJournal,
  Workflow,
  WorkflowEngine
} from "effect-cluster"
import { PostgresJournal } from "effect-cluster/postgres"
import { Blob, Chunk, Echo, Ping, Tally } from "./fixtures.ts"

const Options = Schema.Struct({
  store: Schema.String,
  podId: Schema.String,
  ledger: Schema.String,
  shardCount: Schema.optional(Schema.Number),
  leaseTtlMillis: Schema.optional(Schema.Number),
  handleMillis: Schema.optional(Schema.Number),
  sendTimeoutMillis: Schema.optional(Schema.Number),
  port: Schema.optional(Schema.Number),
  advertise: Schema.optional(Schema.String),
  secret: Schema.optional(Schema.String),
  requestTimeoutMillis: Schema.optional(Schema.Number),
  maxFrameBytes: Schema.optional(Schema.Number),
  maxConnections: Schema.optional(Schema.Number)
})

const options = Schema.decodeUnknownSync(Schema.fromJsonString(Options))(process.argv[2])
const say = (line: unknown) => console.log(JSON.stringify(line))

const Ask = Schema.Struct({
  type: Schema.Literals(["Echo", "Tally", "Blob"]),
  ids: Schema.Array(Schema.String),
  prefix: Schema.String,
  concurrency: Schema.Number,
  /** The size of each `Chunk`'s data and of its reply (`Blob`). */
  bytes: Schema.optional(Schema.Number),
  replyBytes: Schema.optional(Schema.Number)
})
const Load = Schema.Struct({ prefix: Schema.String, entities: Schema.Number, concurrency: Schema.Number })
const Command = Schema.fromJsonString(
  Schema.Union([
    Schema.Struct({ ask: Ask }),
    Schema.Struct({ load: Load }),
    Schema.Struct({ stop: Schema.Boolean })
  ])
)

class Job extends Workflow.TaggedRequest<Job>()("Job", {
  payload: { id: Schema.String },
  success: Schema.String,
  failure: Schema.Never
}) {}

const job = Workflow.make(
  Job,
  (request) => request.id,
  () =>
    Effect.gen(function* () {
      const context = yield* ActivityContext.ActivityContext
      appendFileSync(
        options.ledger,
        `${JSON.stringify({ t: "Job", m: context.persistenceId.split("/")[0], a: context.attempt, p: options.podId })}\n`
      )
      return options.podId
    }).pipe(Activity.make("work", Schema.String, Schema.Never))
)

let storeWrites = 0
const count = (rows: number) =>
  Effect.sync(() => {
    storeWrites += rows
  })
/** The entity store, counting the rows this process writes. */
const counting = Layer.effect(
  EntityStore.EntityStore,
  Effect.map(EntityStore.EntityStore, (store) =>
    EntityStore.EntityStore.of({
      ...store,
      enqueue: (messages) => Effect.andThen(count(messages.length), store.enqueue(messages)),
      complete: (writes) => Effect.andThen(count(writes.length), store.complete(writes)),
      deadLetter: (writes) => Effect.andThen(count(writes.length), store.deadLetter(writes))
    })
  )
)

const storeLayer = options.store.startsWith("postgres")
  ? PostgresJournal.layer({ url: options.store })
  : SqliteJournal.layer({ filename: options.store })

const cluster = Sharding.layer({
  sendTimeout: Duration.millis(options.sendTimeoutMillis ?? 30_000),
  deliveryPollInterval: "100 millis"
}).pipe(
  Layer.provideMerge(counting),
  Layer.provideMerge(
    Membership.layer({
      podId: options.podId,
      shardCount: options.shardCount ?? 12,
      leaseTtl: Duration.millis(options.leaseTtlMillis ?? 3_000),
      network: {
        port: options.port,
        advertise: options.advertise,
        secret: options.secret,
        requestTimeout: Duration.millis(options.requestTimeoutMillis ?? 1_000),
        maxFrameBytes: options.maxFrameBytes,
        maxConnections: options.maxConnections
      }
    })
  ),
  Layer.provideMerge(storeLayer)
)

const handle = (type: string) => (messageId: string) =>
  Effect.gen(function* () {
    appendFileSync(options.ledger, `${JSON.stringify({ t: type, m: messageId, p: options.podId })}\n`)
    if (options.handleMillis !== undefined) yield* Effect.sleep(Duration.millis(options.handleMillis))
    return MessageState.Processed(Option.some(options.podId))
  })

const ask = (command: typeof Ask.Type) =>
  Effect.gen(function* () {
    const blob = yield* Sharding.messenger(Blob)
    const ping = yield* Sharding.messenger(command.type === "Echo" ? Echo : Tally)
    const data = "x".repeat(command.bytes ?? 0)
    const send = (id: string, messageId: string) =>
      command.type === "Blob"
        ? blob.send(id)(new Chunk({ messageId, data, replyBytes: command.replyBytes ?? 0 }))
        : ping.send(id)(new Ping({ messageId }))
    const replies: Record<string, string> = {}
    const errors: Record<string, string> = {}
    let slowest = 0
    const before = storeWrites
    yield* Effect.forEach(
      command.ids,
      (id) =>
        Effect.gen(function* () {
          const started = yield* Clock.currentTimeMillis
          const result = yield* Effect.result(send(id, `${command.prefix}-${id}`))
          slowest = Math.max(slowest, (yield* Clock.currentTimeMillis) - started)
          if (result._tag === "Success") replies[id] = result.success.trimEnd()
          else errors[id] = result.failure._tag
        }),
      { concurrency: command.concurrency, discard: true }
    )
    return { replies, errors, slowestMillis: slowest, storeWrites: storeWrites - before }
  })

/** The steady mix of `{"load": ...}` until `stop` completes. */
const load = (
  command: typeof Load.Type,
  stop: Deferred.Deferred<void>,
  engine: WorkflowEngine.WorkflowEngine<typeof job>
) =>
  Effect.gen(function* () {
    const echo = yield* Sharding.messenger(Echo)
    const tally = yield* Sharding.messenger(Tally)
    const errors: Record<string, number> = {}
    const jobs: Array<string> = []
    let asks = 0
    let workflows = 0
    let slowest = 0
    let n = 0
    const timed = <A, E>(what: string, effect: Effect.Effect<A, E>) =>
      Effect.gen(function* () {
        const started = yield* Clock.currentTimeMillis
        const result = yield* Effect.result(effect)
        slowest = Math.max(slowest, (yield* Clock.currentTimeMillis) - started)
        if (result._tag === "Failure") {
          const key = `${what}: ${(result.failure as { _tag?: string })._tag ?? String(result.failure)}`
          errors[key] = (errors[key] ?? 0) + 1
        }
        return result._tag === "Success"
      })
    const worker = Effect.gen(function* () {
      while (!(yield* Deferred.isDone(stop))) {
        const i = n++
        const entity = `entity-${i % command.entities}`
        yield* timed("volatile", echo.send(entity)(new Ping({ messageId: `${command.prefix}-v-${i}` })))
        yield* timed("persisted", tally.send(entity)(new Ping({ messageId: `${command.prefix}-p-${i}` })))
        asks += 2
        const id = `${command.prefix}-job-${i}`
        if (yield* timed("workflow", engine.send(new Job({ id })))) jobs.push(id)
        workflows++
      }
    })
    yield* Effect.forEach(Array.from({ length: command.concurrency }), () => worker, {
      concurrency: "unbounded",
      discard: true
    })
    return { asks, workflows, errors, slowestMillis: slowest, jobs }
  })

const main = Effect.gen(function* () {
  yield* Sharding.registerEntity(Echo)(
    RecipientBehaviour.fromFunctionEffect((_, message) => handle("Echo")(message.messageId))
  )
  yield* Sharding.registerEntity(Blob)(
    RecipientBehaviour.fromFunctionEffect((_, message) =>
      Effect.map(handle("Blob")(message.messageId), () =>
        MessageState.Processed(Option.some(options.podId.padEnd(message.replyBytes)))
      )
    )
  )
  yield* Sharding.registerEntity(Tally)(
    RecipientBehaviour.fromFunctionEffectStateful(
      () => Effect.succeed(0),
      (_, message) => handle("Tally")(message.messageId)
    )
  )
  const engine = yield* WorkflowEngine.makeScoped(job)
  const membership = yield* Membership.Membership
  say({ ready: options.podId, address: membership.network?.network.address ?? null })
  const services = yield* Effect.context<Sharding.Sharding>()
  let stop = Deferred.makeUnsafe<void>()
  createInterface({ input: process.stdin }).on("line", (line) => {
    const command = Schema.decodeUnknownSync(Command)(line)
    if ("stop" in command) {
      Deferred.doneUnsafe(stop, Effect.void)
      return
    }
    const run: Effect.Effect<unknown, never, Sharding.Sharding> =
      "ask" in command
        ? Effect.map(ask(command.ask), (asked) => ({ asked }))
        : Effect.map(
            Effect.suspend(() => {
              stop = Deferred.makeUnsafe<void>()
              return load(command.load, stop, engine)
            }),
            (loaded) => ({ loaded })
          )
    Effect.runFork(
      run.pipe(
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
