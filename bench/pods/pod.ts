/**
 * One pod of `bench/pods.ts`: an engine for the 3-activity workflow (`bench/workload.ts`) on the
 * PostgreSQL database at `url`, run as a child process. It prints `{"ready": podId}` once the engine
 * runs, then obeys JSON lines on stdin:
 * - `{"run": {"mode": "send"|"sendDiscard", "from", "count", "concurrency"}}`: submits executions
 *   `from`..`from + count - 1`, `concurrency` at a time, and prints `{"done": seconds}` (with
 *   `send`, once every result is back; with `sendDiscard`, once every start is stored);
 * - `{"cpu": true}`: prints `{"cpu": micros}`, the process's CPU time so far (user + system).
 *
 * Usage: node --conditions=@effect-cluster/source bench/pods/pod.ts '{"url": "postgres://..."}'
 */
import { createInterface } from "node:readline"
import { Effect, Queue, Schema } from "effect"
import { WorkflowEngine } from "effect-cluster"
import { PostgresJournal } from "effect-cluster/postgres"
import { Bench, workflow } from "../workload.ts"

const Options = Schema.Struct({ url: Schema.String, podId: Schema.optional(Schema.String) })
const Command = Schema.Union([
  Schema.Struct({
    run: Schema.Struct({
      mode: Schema.Literals(["send", "sendDiscard"]),
      from: Schema.Number,
      count: Schema.Number,
      concurrency: Schema.Number
    })
  }),
  Schema.Struct({ cpu: Schema.Boolean })
])

const options = Schema.decodeUnknownSync(Schema.fromJsonString(Options))(process.argv[2])
const decodeCommand = Schema.decodeUnknownSync(Schema.fromJsonString(Command))
const say = (message: unknown) => console.log(JSON.stringify(message))

const main = Effect.gen(function* () {
  const engine = yield* WorkflowEngine.makeScoped(workflow, { podId: options.podId })
  say({ ready: engine.podId() })
  const commands = yield* Queue.unbounded<string>()
  createInterface({ input: process.stdin }).on("line", (line) => Queue.offerUnsafe(commands, line))
  while (true) {
    const command = decodeCommand(yield* Queue.take(commands))
    if ("cpu" in command) {
      const used = process.cpuUsage()
      say({ cpu: used.user + used.system })
      continue
    }
    const { mode, from, count, concurrency } = command.run
    const started = performance.now()
    yield* Effect.forEach(
      Array.from({ length: count }, (_, i) => new Bench({ id: from + i })),
      (request) =>
        mode === "send" ? Effect.asVoid(engine.send(request)) : Effect.asVoid(engine.sendDiscard(request)),
      { concurrency, discard: true }
    )
    say({ done: (performance.now() - started) / 1000 })
  }
}).pipe(Effect.scoped, Effect.provide(PostgresJournal.layer({ url: options.url })))

Effect.runPromise(main).then(
  () => process.exit(0),
  (error) => {
    console.error(error)
    process.exit(1)
  }
)
