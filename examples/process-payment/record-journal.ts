/**
 * Records the golden journals the example's tests replay (`journals/*.json`): executions of
 * ProcessPayment stopped in the middle, as a worker killed at that moment leaves them —
 * order-1 while the gateway charges the card (the demo's kill), order-2 (out of stock) while the
 * card is refunded. Run by hand only for a new version of the workflow, keeping the old files:
 * `npx node --conditions=@effect-cluster/source --no-warnings examples/process-payment/record-journal.ts`.
 */
import { join } from "node:path"
import { Effect } from "effect"
import { DurableExecutionJournal, JournalExport, MemoryJournal, WorkflowEngine } from "effect-cluster"
import { type InMemoryOptions, inMemoryServices } from "./in-memory-services.ts"
import { ProcessPaymentRequest, processPayment } from "./workflow.ts"

const record = (file: string, request: ProcessPaymentRequest, stopAt: string, options: InMemoryOptions) => {
  const { services, calls } = inMemoryServices(options)
  return Effect.gen(function* () {
    const journal = yield* MemoryJournal.make
    const engine = yield* WorkflowEngine.makeScoped(processPayment(services)).pipe(
      Effect.provideService(DurableExecutionJournal.DurableExecutionJournal, journal)
    )
    const executionId = yield* engine.sendDiscard(request)
    while (!calls.includes(stopAt)) yield* Effect.sleep("5 millis")
    const path = join(import.meta.dirname, "journals", file)
    yield* JournalExport.writeFile(path, yield* engine.exportJournal(executionId))
    console.log(`wrote ${path}`)
  }).pipe(Effect.scoped)
}

await Effect.runPromise(
  Effect.all([
    record(
      "order-1-mid-charge.v1.json",
      new ProcessPaymentRequest({
        orderId: "order-1",
        cardNumber: "4242-4242",
        email: "my@email.com",
        deliveryAddress: "My address, 5, Italy"
      }),
      "/payments/charge",
      { chargeHangs: true }
    ),
    record(
      "order-2-mid-refund.v1.json",
      new ProcessPaymentRequest({
        orderId: "order-2",
        cardNumber: "5555-0000",
        email: "bob@example.com",
        deliveryAddress: "Via Roma 1, Milano"
      }),
      "/payments/refund",
      { outOfStock: new Set(["order-2"]), refundHangs: true }
    )
  ])
)
