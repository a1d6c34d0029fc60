/**
 * A user's program in plain JavaScript, run by Node from a project that installed the packed
 * tarball: a workflow whose activity fails once and is retried, on the journal named by the
 * arguments. Prints the result and the recorded steps as one JSON line.
 *
 * Usage: node workflow.mjs memory | sqlite <file> | postgres <url> | testkit | telemetry
 * (`testkit`: the workflow behind a 30-day sleep, on `WorkflowTest` with effect's `TestClock`, and
 * its exported journal replayed. `telemetry`: the memory run with `Telemetry.layer` exporting to a
 * local OTLP/HTTP collector; adds the names of the spans and metrics it received.)
 */
import { createServer } from "node:http"
import { Effect, Exit, Fiber, Layer, Option, Ref, Schema } from "effect"
import { TestClock } from "effect/testing"
import {
  Activity,
  Membership,
  MemoryJournal,
  Message,
  MessageState,
  RecipientBehaviour,
  RecipientType,
  Sharding,
  SqliteJournal,
  Telemetry,
  Workflow,
  WorkflowEngine,
  WorkflowTest
} from "effect-cluster"

const [backend, location = ""] = process.argv.slice(2)

class Greet extends Workflow.TaggedRequest()("Greet", {
  payload: { name: Schema.String },
  success: Schema.String,
  failure: Schema.Never
}) {}

class Busy extends Schema.TaggedError()("Busy", {}) {}

const shout = (name) =>
  Activity.attempt.pipe(
    Effect.flatMap((attempt) => (attempt < 2 ? Effect.fail(new Busy()) : Effect.succeed(name.toUpperCase()))),
    Activity.make("shout", Schema.String, Busy, { retry: { initialDelay: "1 millis" } })
  )

const greet = Workflow.make(
  Greet,
  (request) => `greet/${request.name}`,
  ({ name }) => Effect.map(shout(name), (loud) => `hello ${loud}`)
)

/** The test kit from the package: a month skipped in no real time, then the journal replayed. */
const testkit = Effect.gen(function* () {
  const later = Workflow.make(
    Greet,
    (request) => `later/${request.name}`,
    ({ name }) =>
      Effect.andThen(
        Workflow.sleep("30 days"),
        Effect.map(shout(name), (loud) => `hello ${loud}`)
      )
  )
  const started = performance.now()
  const engine = yield* WorkflowTest.makeEngine(later)
  const fiber = yield* Effect.forkChild(engine.send(new Greet({ name: "ada" })))
  yield* WorkflowTest.advance("31 days")
  const result = yield* Fiber.join(fiber)
  const replayed = yield* WorkflowTest.replay(later, yield* engine.exportJournal("later/ada"))
  return { result, replayed: replayed.ended, skippedInMs: Math.round(performance.now() - started) }
}).pipe(Effect.scoped, Effect.provide(Layer.fresh(TestClock.layer())))

if (backend === "testkit") {
  console.log(JSON.stringify(await Effect.runPromise(testkit)))
  process.exit(0)
}

const journal = async () => {
  switch (backend) {
    case "memory":
    case "telemetry":
      return MemoryJournal.layer
    case "sqlite":
      return SqliteJournal.layer({ filename: location })
    case "postgres": {
      // Only PostgreSQL users load the subpath, and with it @effect/sql-pg.
      const { PostgresJournal } = await import("effect-cluster/postgres")
      return PostgresJournal.layer({ url: location })
    }
    default:
      throw new Error(`unknown backend ${backend}`)
  }
}

/** A persisted entity beside the workflow, on the same store and pod. */
class Add extends Message.TaggedRequest()("Add", {
  payload: { messageId: Schema.String, n: Schema.Number },
  success: Schema.Number,
  failure: Schema.Never
}) {}
const Counter = RecipientType.makeEntityType("Counter", Add, (message) => message.messageId, {
  state: Schema.Number
})

const program = Effect.gen(function* () {
  const engine = yield* WorkflowEngine.makeScoped(Workflow.union(greet))
  const result = yield* engine.send(new Greet({ name: "ada" }))
  const history = yield* engine.history("greet/ada")
  yield* Sharding.registerEntity(Counter)(
    RecipientBehaviour.fromFunctionEffectStateful(
      () => Effect.succeed(0),
      (_, add, state) =>
        Effect.map(
          Ref.updateAndGet(state, (n) => n + add.n),
          (n) => MessageState.Processed(Option.some(Exit.succeed(n)))
        )
    )
  )
  const counter = yield* Sharding.messenger(Counter)
  yield* counter.send("c")(new Add({ messageId: "one", n: 1 }))
  yield* counter.send("c")(new Add({ messageId: "one", n: 1 }))
  const count = yield* counter.send("c")(new Add({ messageId: "two", n: 1 }))
  return { result, steps: history.steps.map((step) => [step.stepKey, step.attempts, step.state]), count }
}).pipe(
  Effect.scoped,
  Effect.provide(
    Sharding.layer().pipe(Layer.provideMerge(Membership.layer()), Layer.provideMerge(await journal()))
  )
)

/** A local OTLP/HTTP collector: the JSON bodies posted to it, by path. */
const collect = async () => {
  const bodies = []
  const server = createServer((request, response) => {
    const chunks = []
    request.on("data", (chunk) => chunks.push(chunk))
    request.on("end", () => {
      bodies.push({ path: request.url, body: JSON.parse(Buffer.concat(chunks).toString("utf8")) })
      response.end("{}")
    })
  })
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve))
  return { url: `http://127.0.0.1:${server.address().port}`, bodies, close: () => server.close() }
}

if (backend === "telemetry") {
  const collector = await collect()
  const result = await Effect.runPromise(
    program.pipe(Effect.provide(Telemetry.layer({ serviceName: "consumer", url: collector.url })))
  )
  collector.close()
  const of = (path, pick) =>
    [...new Set(collector.bodies.filter((b) => b.path === path).flatMap((b) => pick(b.body)))].sort()
  const spans = of("/v1/traces", (body) =>
    body.resourceSpans.flatMap((r) => r.scopeSpans.flatMap((s) => s.spans.map((span) => span.name)))
  )
  const metrics = of("/v1/metrics", (body) =>
    body.resourceMetrics.flatMap((r) => r.scopeMetrics.flatMap((s) => s.metrics.map((metric) => metric.name)))
  )
  console.log(JSON.stringify({ ...result, spans, metrics }))
} else {
  console.log(JSON.stringify(await Effect.runPromise(program)))
}
