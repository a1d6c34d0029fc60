/**
 * One pod of the verification runner's cluster (`run.ts`): a program that hosts the workload's
 * workflows and entities on one SQLite file or one PostgreSQL database, with the pods' network on,
 * and submits its share of the seeded workload. Everything the checkers need is appended to the
 * ledger (a file outside the store, one JSON line per event, O_APPEND, times from the host clock):
 *
 * - `{"k":"start"|"end"|"stop", e, s, a, p, sh, ep, t}`: an activity attempt of execution `e`,
 *   step `s`, attempt `a` began, ended or was interrupted in pod `p`, on shard `sh` at epoch `ep`;
 * - `{"k":"wf", e, t}`: the start of execution `e` was acknowledged (`sendDiscard` returned);
 * - `{"k":"sig", e, t}`: its signal was accepted;
 * - `{"k":"inc", en, m, t}` before an increment of counter `en` is sent (message id `m`),
 *   `{"k":"inc-ok", en, m, t}` once it was acknowledged (stored);
 * - `{"k":"read", en, inv, t, v}`: a `GetCurrent` of counter `en` invoked at `inv` answered `v`;
 * - `{"k":"echo", ok, t}`: a volatile ask answered (`ok`: with the text it carried).
 *
 * The workload (op `i` of this incarnation, drawn from the seed): start an `Order` (two activities,
 * a durable sleep, sometimes a signal it waits for and a child workflow `Ship`), increment a
 * counter (`sendDiscard` or `send`), read a counter, ask a volatile `Echo` entity, in a mix, from
 * 4 senders at once. One sender's operations are sequential, so its increments of one counter have an order the counter
 * must keep. A counter's state is the list of the increments it applied, in order: the runner reads
 * it at the end (`{"dump": n}` on stdin → `{"dump": {counter: [messageId, ...]}}` on stdout).
 *
 * stdout: `{"ready": podId}`, `{"ops": n, "done": true}` at the end of the workload, `{"stopped": podId}` after a SIGTERM,
 * and logs as JSON.
 *
 * Usage: node --conditions=@effect-cluster/source verify/pod.ts '<json options>'
 */
import { appendFileSync } from "node:fs"
import { createInterface } from "node:readline"
import { Duration, Effect, Exit, Fiber, Layer, Logger, Option, Ref, Schedule, Schema } from "effect"
import {
  Activity,
  ActivityContext,
  Membership,
  Message,
  MessageState,
  RecipientBehaviour,
  RecipientType,
  Sharding,
  Signal,
  SqliteJournal,
  Workflow,
  WorkflowEngine
} from "effect-cluster"
import { PostgresJournal } from "effect-cluster/postgres"
import * as OffsetClock from "../test/support/OffsetClock.ts"
import { random } from "./schedule.ts"

const Options = Schema.Struct({
  /** A SQLite file path, or a postgres:// URL. */
  store: Schema.String,
  ledger: Schema.String,
  /** `pod-${pod}`; with `incarnation`, the prefix of every id this process makes. */
  pod: Schema.Number,
  /** How many processes of this pod ran before this one. */
  incarnation: Schema.Number,
  leaseTtlMillis: Schema.Number,
  /** The workload: its seed, operations per second, how many counters. */
  seed: Schema.Number,
  perSecond: Schema.Number,
  counters: Schema.Number,
  /** When to stop submitting (epoch ms of the host clock): the end of the faults. */
  until: Schema.Number,
  /** Where the pod listens for its peers, and the address it gives them (its proxy's). */
  network: Schema.Struct({ port: Schema.Number, advertise: Schema.String }),
  /** How far this process's `Clock` is off the host's (the nemesis's clock skew). */
  clockOffsetMillis: Schema.optional(Schema.Number)
})
const options = Schema.decodeUnknownSync(Schema.fromJsonString(Options))(process.argv[2])
const podId = `pod-${options.pod}`
const prefix = `p${options.pod}i${options.incarnation}`
const say = (line: unknown) => console.log(JSON.stringify(line))
const log = (line: Record<string, unknown>) =>
  appendFileSync(options.ledger, `${JSON.stringify({ ...line, t: Date.now() })}\n`)

// ---------------------------------------------------------------------------------------------
// Workflows

class Order extends Workflow.TaggedRequest<Order>()("Order", {
  payload: {
    id: Schema.String,
    sleepMillis: Schema.Number,
    signal: Schema.Boolean,
    child: Schema.Boolean
  },
  success: Schema.String,
  failure: Schema.Never
}) {}

class Ship extends Workflow.TaggedRequest<Ship>()("Ship", {
  payload: { id: Schema.String },
  success: Schema.String,
  failure: Schema.Never
}) {}

/** The signal an `Order` may wait for: its value is `go-${id}`. */
export const go = Signal.make("go", Schema.String)

const attempt = (kind: "start" | "end" | "stop", context: ActivityContext.ActivityContext["Service"]) =>
  log({
    k: kind,
    e: context.persistenceId.split("/")[0],
    s: context.activityId,
    a: context.attempt,
    p: podId,
    sh: context.fence?.shard ?? null,
    ep: context.fence?.epoch ?? null
  })

/** An activity whose side effect is its ledger lines; it takes 20 ms. */
const step = (id: string) =>
  Effect.gen(function* () {
    const context = yield* ActivityContext.ActivityContext
    attempt("start", context)
    yield* Effect.sleep("20 millis").pipe(
      Effect.onInterrupt(() => Effect.sync(() => attempt("stop", context)))
    )
    attempt("end", context)
    return id
  }).pipe(Activity.make(id, Schema.String, Schema.Never))

const ship = Workflow.make(
  Ship,
  (request) => request.id,
  (request) => Effect.map(step("ship"), (shipped) => `${request.id}:${shipped}`)
)

const order = Workflow.make(
  Order,
  (request) => request.id,
  (request) =>
    Effect.gen(function* () {
      const reserved = yield* step("reserve")
      yield* Workflow.sleep(Duration.millis(request.sleepMillis))
      const signalled = request.signal
        ? Option.getOrElse(yield* Signal.receive(go, { timeout: "3 seconds" }), () => "none")
        : "-"
      const shipped = request.child
        ? yield* Effect.orDie(Workflow.executeChild(ship, new Ship({ id: `${request.id}-ship` })))
        : "-"
      const charged = yield* step("charge")
      return `${reserved}+${charged}|signal=${signalled}|child=${shipped}`
    })
)

// ---------------------------------------------------------------------------------------------
// Entities

class Add extends Schema.TaggedClass<Add>()("Add", { messageId: Schema.String }) {}

/** An increment whose reply is the count after it. */
class AddAndGet extends Message.TaggedRequest<AddAndGet>()("AddAndGet", {
  failure: Schema.Never,
  success: Schema.Number,
  payload: { messageId: Schema.String }
}) {}

class GetCurrent extends Message.TaggedRequest<GetCurrent>()("GetCurrent", {
  failure: Schema.Never,
  success: Schema.Number,
  payload: { messageId: Schema.String }
}) {}

/** The increments the counter applied, in order. */
class Dump extends Message.TaggedRequest<Dump>()("Dump", {
  failure: Schema.Never,
  success: Schema.Array(Schema.String),
  payload: { messageId: Schema.String }
}) {}

/** A persisted counter whose state is the ids of the increments it applied, in order. */
const Counter = RecipientType.makeEntityType(
  "VerifyCounter",
  Schema.Union([Add, AddAndGet, GetCurrent, Dump]),
  (message) => message.messageId,
  { state: Schema.Array(Schema.String) }
)

const counterBehaviour = RecipientBehaviour.fromFunctionEffectStateful(
  () => Effect.succeed<ReadonlyArray<string>>([]),
  (
    _entityId,
    message: typeof Counter.schema.Type,
    state: Ref.Ref<ReadonlyArray<string>>
  ): Effect.Effect<MessageState.MessageState<unknown>> => {
    switch (message._tag) {
      case "Add":
        return Effect.as(
          Ref.update(state, (applied) => [...applied, message.messageId]),
          MessageState.Processed(Option.none())
        )
      case "AddAndGet":
        return Effect.map(
          Ref.updateAndGet(state, (applied) => [...applied, message.messageId]),
          (applied) => MessageState.Processed(Option.some(Exit.succeed(applied.length)))
        )
      case "GetCurrent":
        return Effect.map(Ref.get(state), (applied) =>
          MessageState.Processed(Option.some(Exit.succeed(applied.length)))
        )
      case "Dump":
        return Effect.map(Ref.get(state), (applied) =>
          MessageState.Processed(Option.some(Exit.succeed(applied)))
        )
    }
  }
)

class Ping extends Message.TaggedRequest<Ping>()("Ping", {
  failure: Schema.Never,
  success: Schema.String,
  payload: { messageId: Schema.String, text: Schema.String }
}) {}

/** A volatile entity that answers a ping with its text. */
const Echo = RecipientType.makeEntityType("VerifyEcho", Ping, (message) => message.messageId)

const echoBehaviour = RecipientBehaviour.fromFunctionEffect((_entityId, message: Ping) =>
  Effect.succeed(MessageState.Processed(Option.some(Exit.succeed(message.text))))
)

// ---------------------------------------------------------------------------------------------
// The program

const store = options.store.startsWith("postgres")
  ? PostgresJournal.layer({ url: options.store })
  : SqliteJournal.layer({ filename: options.store })

const cluster = Sharding.layer({ sendTimeout: "10 seconds" }).pipe(
  Layer.provideMerge(
    Membership.layer({
      podId,
      leaseTtl: Duration.millis(options.leaseTtlMillis),
      network: { host: "127.0.0.1", ...options.network }
    })
  ),
  Layer.provideMerge(Layer.fresh(store))
)

/** Retries a call whose outcome is unknown (the store or the owner briefly unreachable): ids make it idempotent. */
const persistently = <A, E, R>(call: Effect.Effect<A, E, R>) =>
  call.pipe(Effect.retry({ times: 20, schedule: Schedule.spaced("200 millis") }), Effect.option)

const counterOf = (n: number) => `counter-${n}`

/** Senders per pod, each sequential: their increments of one counter have an order to keep. */
const SENDERS = 4

const Command = Schema.fromJsonString(Schema.Struct({ dump: Schema.Number }))

const main = Effect.gen(function* () {
  // The engine's backstop looks often here: an execution it finds without a run is a finding.
  const engine = yield* WorkflowEngine.makeScoped(Workflow.union(order, ship), {
    recoveryInterval: "5 seconds"
  })
  yield* Sharding.registerEntity(Counter)(counterBehaviour)
  yield* Sharding.registerEntity(Echo)(echoBehaviour)
  const counters = yield* Sharding.messenger(Counter)
  const echoes = yield* Sharding.messenger(Echo)
  say({ ready: podId })

  const services = yield* Effect.context<never>()
  createInterface({ input: process.stdin }).on("line", (line) => {
    const command = Schema.decodeUnknownSync(Command)(line)
    Effect.runForkWith(services)(
      Effect.forEach(
        Array.from({ length: command.dump }, (_, n) => counterOf(n)),
        (entity) =>
          // Asked again while it fails (a shard still moving after the heal, an owner restarting):
          // the runner gives the whole read a minute, and reports the last failure.
          Effect.map(
            Effect.suspend(() =>
              counters.send(entity)(new Dump({ messageId: `dump-${prefix}-${Date.now()}-${entity}` }))
            ).pipe(Effect.retry({ schedule: Schedule.spaced("500 millis"), times: 60 })),
            (applied) => [entity, applied] as const
          ),
        { concurrency: 4 }
      ).pipe(
        Effect.match({
          onSuccess: (entries) => say({ dump: Object.fromEntries(entries) }),
          onFailure: (error) => say({ dumpError: String(error) })
        })
      )
    )
  })

  /** One sender: its operations one after the other, `perSecond / SENDERS` of them per second. */
  const sender = (k: number) =>
    Effect.gen(function* () {
      const next = random(options.seed * 7919 + options.pod * 104729 + options.incarnation * 31 + k)
      const gap = Duration.millis((1000 * SENDERS) / options.perSecond)
      let i = 0
      for (; Date.now() < options.until; i++) {
        const draw = next()
        const id = `${prefix}s${k}-${i}`
        if (draw < 0.4) {
          const request = new Order({
            id,
            sleepMillis: Math.floor(next() * 500),
            signal: next() < 0.3,
            child: next() < 0.3
          })
          const accepted = yield* persistently(engine.sendDiscard(request))
          if (Option.isSome(accepted)) {
            log({ k: "wf", e: id })
            if (request.signal && next() < 0.8) {
              const signalled = yield* persistently(engine.signal(id, go, `go-${id}`))
              if (Option.isSome(signalled)) log({ k: "sig", e: id })
            }
          }
        } else if (draw < 0.75) {
          const entity = counterOf(Math.floor(next() * options.counters))
          log({ k: "inc", en: entity, m: id })
          const acked =
            next() < 0.5
              ? yield* persistently(counters.sendDiscard(entity)(new Add({ messageId: id })))
              : yield* persistently(Effect.asVoid(counters.send(entity)(new AddAndGet({ messageId: id }))))
          if (Option.isSome(acked)) log({ k: "inc-ok", en: entity, m: id })
        } else if (draw < 0.9) {
          const entity = counterOf(Math.floor(next() * options.counters))
          const invokedAt = Date.now()
          const value = yield* Effect.option(
            counters.send(entity)(new GetCurrent({ messageId: `read-${id}` }))
          )
          if (Option.isSome(value)) log({ k: "read", en: entity, inv: invokedAt, v: value.value })
        } else {
          const text = `echo-${id}`
          const reply = yield* Effect.option(echoes.send(`echo-${i % 7}`)(new Ping({ messageId: id, text })))
          if (Option.isSome(reply)) log({ k: "echo", ok: reply.value === text })
        }
        yield* Effect.sleep(gap)
      }
      return i
    })
  // The senders stop at `until`; an operation still waiting on a store or a peer 10 s later is
  // given up (its outcome unknown, as the ledger then says).
  const ops = yield* Effect.forEach(
    Array.from({ length: SENDERS }, (_, k) => k),
    sender,
    { concurrency: "unbounded" }
  ).pipe(Effect.timeoutOption(Math.max(0, options.until - Date.now()) + 10_000))
  say({
    ops: Option.getOrElse(
      Option.map(ops, (n) => n.reduce((sum, k) => sum + k, 0)),
      () => -1
    ),
    done: true
  })
  return yield* Effect.never
}).pipe(
  Effect.scoped,
  Effect.provide(Layer.mergeAll(cluster, Logger.layer([Logger.consoleJson]))),
  // Outermost: the store layers, the pod and every fiber they fork read the skewed clock.
  Effect.provide(OffsetClock.layer(options.clockOffsetMillis ?? 0))
)

const fiber = Effect.runFork(main)
process.once("SIGTERM", () => Effect.runFork(Fiber.interrupt(fiber)))
fiber.addObserver((exit) => {
  if (exit._tag === "Failure" && !exit.cause.reasons.every((reason) => reason._tag === "Interrupt")) {
    console.error(String(exit.cause))
    process.exit(1)
  }
  say({ stopped: podId })
  process.exit(0)
})
