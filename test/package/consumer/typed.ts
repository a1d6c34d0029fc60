/**
 * A user's TypeScript module, type-checked against the installed package's `.d.ts` files with
 * `module`/`moduleResolution` `nodenext` and `strict`. The `@ts-expect-error` lines fail the check
 * if the package's types degrade to `any` (a missing or unresolvable `.d.ts`) or if its internals
 * become importable.
 */
import { Effect, Exit, Option, Schema } from "effect"
import {
  Activity,
  MemoryJournal,
  Message,
  MessageState,
  RecipientBehaviour,
  RecipientType,
  Sharding,
  Telemetry,
  Workflow,
  WorkflowEngine,
  type WorkflowErrors
} from "effect-cluster"
import { PostgresJournal } from "effect-cluster/postgres"

class Greet extends Workflow.TaggedRequest<Greet>()("Greet", {
  payload: { name: Schema.String },
  success: Schema.String,
  failure: Schema.Never
}) {}

const shout = (name: string) =>
  Effect.succeed(name.toUpperCase()).pipe(Activity.make("shout", Schema.String, Schema.Never))

const greet = Workflow.make(
  Greet,
  (request) => `greet/${request.name}`,
  ({ name }) => Effect.map(shout(name), (loud) => `hello ${loud}`)
)

export const onMemory: Effect.Effect<
  string,
  WorkflowErrors.WorkflowEngineError | WorkflowEngine.EngineStartError
> = Effect.gen(function* () {
  const engine = yield* WorkflowEngine.makeScoped(Workflow.union(greet))
  const greeting: string = yield* engine.send(new Greet({ name: "ada" }))
  // @ts-expect-error the result is a string
  const wrong: number = yield* engine.send(new Greet({ name: "ada" }))
  return `${greeting} ${wrong}`
}).pipe(Effect.scoped, Effect.provide(MemoryJournal.layer))

// @ts-expect-error a request needs its payload
export const missingName = new Greet({})

export const onPostgres = PostgresJournal.layer({
  url: "postgres://app@localhost/orders",
  tablePrefix: "app_"
})

class Ping extends Message.TaggedRequest<Ping>()("Ping", {
  payload: { messageId: Schema.String },
  success: Schema.Number,
  failure: Schema.Literal("busy")
}) {}
const Pinger = RecipientType.makeEntityType("Pinger", Ping, (ping) => ping.messageId)

export const registered = Sharding.registerEntity(Pinger)(
  RecipientBehaviour.fromFunctionEffect((_, ping) =>
    Effect.succeed(MessageState.Processed(Option.some(Exit.succeed(ping.messageId.length))))
  )
)

export const ping: Effect.Effect<number, "busy" | Sharding.MessengerError, Sharding.Sharding> = Effect.gen(
  function* () {
    const pinger = yield* Sharding.messenger(Pinger)
    const pong: number = yield* pinger.send("p")(new Ping({ messageId: "1" }))
    // @ts-expect-error the reply is a number
    const wrong: string = yield* pinger.send("p")(new Ping({ messageId: "2" }))
    return pong + wrong.length
  }
)

// @ts-expect-error internals are not part of the package's exports
export const internal: unknown = await import("effect-cluster/dist/workflow/internal/Replay.js")

/** Telemetry from the package: one layer, typed. */
export const traced: Effect.Effect<
  string,
  WorkflowErrors.WorkflowEngineError | WorkflowEngine.EngineStartError
> = onMemory.pipe(Effect.provide(Telemetry.layer({ serviceName: "typed", url: "http://localhost:4318" })))

// @ts-expect-error a service name is required
export const unnamed = Telemetry.layer({ url: "http://localhost:4318" })
