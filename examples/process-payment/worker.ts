/**
 * The demo's worker process: runs the workflow engine on the embedded store (a file path) or on
 * PostgreSQL (a `postgres://` URL) and processes two orders. The supervisor (main.ts) kills it
 * with SIGKILL in the middle and starts it again.
 *
 * Usage: node worker.ts <servicesUrl> <journalFile | postgresUrl> <run> [otlpUrl]
 *
 * With an OTLP URL, the engine's spans and metrics are exported there (`Telemetry.layer`); every
 * run of an execution, in either worker, lands in the same trace.
 */
import { Effect, Layer, Option, Schema } from "effect"
import { DurableExecutionJournal, SqliteJournal, Telemetry, Workflow, WorkflowEngine } from "effect-cluster"
import { PostgresJournal } from "effect-cluster/postgres"
import { DEMO_TABLE_PREFIX } from "./store.ts"
import { ProcessPaymentRequest, processPayment } from "./workflow.ts"

const Args = Schema.Union([
  Schema.Tuple([Schema.String, Schema.String, Schema.NumberFromString]),
  Schema.Tuple([Schema.String, Schema.String, Schema.NumberFromString, Schema.String])
])
const [baseUrl, store, run, otlp] = Schema.decodeUnknownSync(Args)(process.argv.slice(2))
const log = (line: string) => console.log(`    [worker #${run} pid ${process.pid}] ${line}`)

const orders = [
  new ProcessPaymentRequest({
    orderId: "order-2",
    cardNumber: "5555-0000",
    email: "bob@example.com",
    deliveryAddress: "Via Roma 1, Milano"
  }),
  new ProcessPaymentRequest({
    orderId: "order-1",
    cardNumber: "4242-4242",
    email: "my@email.com",
    deliveryAddress: "My address, 5, Italy"
  })
]

/** Prints what the journal holds for unfinished executions: what will be replayed, what re-run. */
const showJournal = Effect.gen(function* () {
  const journal = yield* DurableExecutionJournal.DurableExecutionJournal
  const replayed: Array<string> = []
  for (const execution of yield* journal.listRunning) {
    log(`journal: ${execution.executionId} is unfinished`)
    for (const step of yield* journal.steps(execution.executionId)) {
      if (step.outcome !== null) {
        replayed.push(step.stepKey)
        log(`  ✓ ${step.stepKey} recorded: will be replayed from the journal, not re-run`)
      } else {
        log(`  … ${step.stepKey} attempt ${step.attempt} started, no outcome: will run again`)
      }
    }
  }
  return replayed
})

const program = Effect.gen(function* () {
  const replayed = yield* showJournal
  const workflow = processPayment({ baseUrl, log })
  const engine = yield* WorkflowEngine.makeScoped(Workflow.union(workflow), {
    retry: { initialDelay: "200 millis", maxDelay: "1 second", maxAttempts: 20 }
  })
  for (const order of orders) {
    log(`send ${order.orderId}`)
    const shipped = yield* engine.send(order)
    log(`${order.orderId}: ${shipped ? "paid and shipped" : "out of stock: refunded"}`)
  }
  if (replayed.length > 0) log(`replayed from the journal without re-running: ${replayed.join(", ")}`)
  const info = yield* engine.status("ProcessPayment@order-1")
  log(
    `status of ProcessPayment@order-1: ${Option.match(info, { onNone: () => "missing", onSome: (i) => i.status })}`
  )
})

Effect.runPromise(
  Effect.scoped(program).pipe(
    Effect.provide(
      store.startsWith("postgres")
        ? PostgresJournal.layer({ url: store, tablePrefix: DEMO_TABLE_PREFIX })
        : SqliteJournal.layer({ filename: store })
    ),
    // Outside the journal's layer, so that its group commits are traced too. A short interval:
    // the first worker is SIGKILLed, and what it had not sent by then is lost.
    Effect.provide(
      otlp === undefined
        ? Layer.empty
        : Telemetry.layer({ serviceName: "process-payment-demo", url: otlp, exportInterval: "200 millis" })
    )
  )
).then(
  () => process.exit(0),
  (error) => {
    console.error(error)
    process.exit(1)
  }
)
