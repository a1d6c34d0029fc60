/**
 * A program that uses the library like a user and misuses it (`hostile.ts` starts it): a pod of
 * the cluster under attack, hosting what the others host (the `Counter` entities of
 * `examples/counter`, the `Order` workflow of `test/cluster/order.ts`, or both) so that the shards
 * it takes while it runs are served as by any pod, which sends what the API must refuse with a
 * typed error before anything is stored:
 * - a message over the entity type's `maxMessageBytes`, one that does not match its schema, one to
 *   an entity id no entity can have;
 * - a workflow request over the engine's `maxPayloadBytes`, one that does not match its schema.
 *
 * Every id it uses starts with `hostile-user-`. It prints `{"ready": podId}`, then
 * `{"misused": [{"what", "outcome"}]}` (the outcome is the error's tag, or `accepted`), and stays
 * a pod until SIGTERM (it leaves the cluster gracefully) or `{"stop": true}` on stdin.
 *
 * Usage: node --conditions=@effect-cluster/source verify/hostileUser.ts '<json options>'
 */
import { createInterface } from "node:readline"
import { Duration, Effect, Fiber, Layer, Logger, Schema } from "effect"
import { Membership, Sharding, SqliteJournal, WorkflowEngine } from "effect-cluster"
import { PostgresJournal } from "effect-cluster/postgres"
import { CounterEntity, counterBehaviour, Increment } from "../examples/counter/counter.ts"
import { Order, orderWorkflow } from "../test/cluster/order.ts"

const Options = Schema.Struct({
  store: Schema.String,
  tablePrefix: Schema.optional(Schema.String),
  podId: Schema.String,
  shardCount: Schema.optional(Schema.Number),
  leaseTtlMillis: Schema.optional(Schema.Number),
  /** Host the `Counter` entities and misuse their messenger. */
  counter: Schema.optional(Schema.Boolean),
  /** Host the `Order` workflow (its attempts in this ledger) and misuse the engine. */
  orders: Schema.optional(Schema.Struct({ ledger: Schema.String, activityMillis: Schema.Number }))
})

const options = Schema.decodeUnknownSync(Schema.fromJsonString(Options))(process.argv[2])
const say = (line: unknown) => console.log(JSON.stringify(line))
const PREFIX = "hostile-user-"

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

/**
 * An instance of `Class` with `fields` its constructor would refuse: what a caller that bypasses
 * the types (JavaScript, a cast, JSON from elsewhere) hands the API.
 */
const offSchema = <A>(Class: { readonly prototype: A }, fields: object): A =>
  Object.assign(Object.create(Class.prototype as object) as A & object, fields)

/** What a misuse came to: the error's tag, or `accepted` when the API took it. */
const outcome = <A, E>(what: string, effect: Effect.Effect<A, E>) =>
  Effect.match(Effect.timeout(effect, "5 seconds"), {
    onSuccess: () => ({ what, outcome: "accepted" }),
    onFailure: (error) => ({ what, outcome: (error as { readonly _tag?: string })._tag ?? String(error) })
  })

const misuseEntities = Effect.gen(function* () {
  const counter = yield* Sharding.messenger(CounterEntity)
  return yield* Effect.all([
    outcome(
      "a 300 kB Counter message (over maxMessageBytes)",
      counter.sendDiscard(`${PREFIX}counter`)(
        new Increment({ messageId: `${PREFIX}big-${"m".repeat(300_000)}` })
      )
    ),
    outcome(
      "a Counter message whose messageId is a number",
      counter.sendDiscard(`${PREFIX}counter`)(offSchema(Increment, { _tag: "Increment", messageId: 5 }))
    ),
    outcome(
      "a Counter message to the entity id ''",
      counter.sendDiscard("")(new Increment({ messageId: `${PREFIX}empty-id` }))
    ),
    outcome(
      "a Counter message to an entity id of 100,000 characters",
      counter.sendDiscard(`${PREFIX}${"e".repeat(100_000)}`)(new Increment({ messageId: `${PREFIX}long-id` }))
    )
  ])
})

const misuseWorkflows = (engine: WorkflowEngine.WorkflowEngine<ReturnType<typeof orderWorkflow>>) =>
  Effect.all([
    outcome(
      "a 2 MB Order request (over maxPayloadBytes)",
      engine.sendDiscard(new Order({ id: `${PREFIX}order-${"o".repeat(2_000_000)}` }))
    ),
    outcome(
      "an Order request whose id is a number",
      engine.sendDiscard(offSchema(Order, { _tag: "Order", id: 5 }))
    )
  ])

const main = Effect.gen(function* () {
  const misused: Array<{ readonly what: string; readonly outcome: string }> = []
  if (options.counter === true) yield* Sharding.registerEntity(CounterEntity)(counterBehaviour())
  if (options.orders !== undefined) {
    const orders = options.orders
    const engine = yield* WorkflowEngine.makeScoped(
      orderWorkflow({
        ledger: orders.ledger,
        podId: () => options.podId,
        durationOf: () => orders.activityMillis
      })
    )
    say({ ready: options.podId })
    misused.push(...(yield* misuseWorkflows(engine)))
  } else {
    say({ ready: options.podId })
  }
  if (options.counter === true) misused.push(...(yield* misuseEntities))
  say({ misused })
  yield* Effect.callback<void>((resume) => {
    createInterface({ input: process.stdin }).on("line", () => resume(Effect.void))
  })
}).pipe(Effect.scoped, Effect.provide(Layer.mergeAll(cluster, Logger.layer([Logger.consoleJson]))))

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
