/**
 * One waiter of the restaurant: a process running a workflow engine on the shared store, so a pod
 * of the cluster with the id given on the command line (`waiter-1`, …). It runs the `Order`
 * executions of the tables (shards) it owns; with `--guests N` it is also the host at the door and
 * places N orders a second (`sendDiscard` from this process: an order whose table another waiter
 * serves goes to that waiter's inbox through the store).
 *
 * It talks to `main.ts` in JSON lines. On stdout: `{"ready": waiterId}` once its engine runs,
 * `{"placed": n}` every ten orders, `{"waited": {"ms", "by"}}` for every tenth order, which the host
 * places with `send` and waits for (`by`: the waiter that served it), `{"closed": n}` once the door
 * is closed (n orders placed in all), `{"stopped": waiterId}` after a graceful shutdown (SIGTERM), and its logs
 * (`{"level": "INFO", "message": …}`). On stdin: the line `close-door` stops placing orders.
 *
 * Usage: node --conditions=@effect-cluster/source waiter.ts --waiter waiter-1 --store <file | postgres URL>
 *          --ledger <file> --pass <folder> [--guests 10]
 */
import { createInterface } from "node:readline"
import { parseArgs } from "node:util"
import { Duration, Effect, Fiber, Layer, Logger, Schema } from "effect"
import { Workflow, WorkflowEngine } from "effect-cluster"
import { Order, order, orderId } from "./order.ts"
import { journalLayer } from "./store.ts"
import { CLUSTER } from "./tables.ts"

const Options = Schema.Struct({
  waiter: Schema.NonEmptyString,
  store: Schema.NonEmptyString,
  ledger: Schema.NonEmptyString,
  pass: Schema.NonEmptyString,
  guests: Schema.optional(Schema.NumberFromString.check(Schema.isGreaterThan(0)))
})

const { values } = parseArgs({
  options: {
    waiter: { type: "string" },
    store: { type: "string" },
    ledger: { type: "string" },
    pass: { type: "string" },
    guests: { type: "string" }
  },
  strict: true
})
const options = Schema.decodeUnknownSync(Options)(values)

const say = (message: Record<string, unknown>) => console.log(JSON.stringify(message))

let doorOpen = options.guests !== undefined
createInterface({ input: process.stdin }).on("line", (line) => {
  if (line.trim() === "close-door") doorOpen = false
})

/**
 * Places an order every 1/rate seconds while the door is open; returns how many it placed. Every
 * tenth order the host waits for (`send`, in the background): how long its guest waited, and which
 * waiter served it (another one: its start and its result went over the network).
 */
const seatGuests = (engine: WorkflowEngine.WorkflowEngine<Workflow.Any>, rate: number) =>
  Effect.gen(function* () {
    const gap = Duration.millis(1000 / rate)
    let placed = 0
    while (doorOpen) {
      const request = new Order({ orderId: orderId(placed + 1) })
      if ((placed + 1) % 10 === 0) {
        const started = performance.now()
        yield* Effect.forkChild(
          Effect.flatMap(engine.send(request), (result) =>
            Effect.sync(() =>
              say({
                waited: {
                  ms: performance.now() - started,
                  by: /served by (\S+)/.exec(String(result))?.[1] ?? "?"
                }
              })
            )
          ).pipe(Effect.ignore)
        )
      } else {
        // Returns once the order is durably stored (I5), whichever waiter serves its table.
        yield* engine.sendDiscard(request)
      }
      placed += 1
      if (placed % 10 === 0) say({ placed })
      yield* Effect.sleep(gap)
    }
    say({ closed: placed })
  })

const main = Effect.gen(function* () {
  const engine = yield* WorkflowEngine.makeScoped(
    Workflow.union(order({ waiter: options.waiter, ledger: options.ledger, pass: options.pass })),
    { ...CLUSTER, podId: options.waiter }
  )
  say({ ready: engine.podId() })
  if (options.guests !== undefined) yield* seatGuests(engine, options.guests)
  return yield* Effect.never
}).pipe(
  Effect.scoped,
  Effect.provide(Layer.mergeAll(journalLayer(options.store), Logger.layer([Logger.consoleJson])))
)

const fiber = Effect.runFork(main)
// SIGTERM: close the engine's scope. Its runs stop (their delivered outcomes are recorded), then
// the waiter hands its tables back and leaves the cluster: the others take them within a round.
process.once("SIGTERM", () => Effect.runFork(Fiber.interrupt(fiber)))
fiber.addObserver((exit) => {
  if (exit._tag === "Failure" && !exit.cause.reasons.every((reason) => reason._tag === "Interrupt")) {
    console.error(String(exit.cause))
    process.exit(1)
  }
  say({ stopped: options.waiter })
  process.exit(0)
})
