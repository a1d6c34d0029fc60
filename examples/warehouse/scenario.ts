/**
 * The warehouse demo's scenario, in one process on one store (the engine and the entities share
 * the process's pod): three orders, one of which finds a product out of stock and releases what it
 * had reserved, and a warehouse that runs low and restocks itself through a workflow.
 */
import { Effect, Exit, Layer } from "effect"
import { Membership, Sharding, SqliteJournal, WorkflowEngine } from "effect-cluster"
import { PlaceOrder, StockLevel, Warehouse, warehouseBehaviour, workflows } from "./warehouse.ts"

/** What happened: each order's outcome, then each product's stock once restocking settled. */
export interface Report {
  readonly orders: ReadonlyArray<{ readonly orderId: string; readonly outcome: string }>
  readonly stock: Readonly<Record<string, number>>
}

const orders = [
  new PlaceOrder({
    orderId: "order-1",
    lines: [
      { product: "apples", quantity: 4 },
      { product: "pears", quantity: 2 }
    ]
  }),
  new PlaceOrder({
    orderId: "order-2",
    lines: [
      { product: "pears", quantity: 1 },
      { product: "apples", quantity: 20 }
    ]
  }),
  new PlaceOrder({ orderId: "order-3", lines: [{ product: "apples", quantity: 5 }] })
]

/** Runs the scenario on the SQLite file `filename`; `say` hears each step. */
export const runScenario = (filename: string, say: (line: string) => void = () => {}) =>
  Effect.gen(function* () {
    const engine = yield* WorkflowEngine.makeScoped(workflows)
    yield* Sharding.registerEntity(Warehouse)(warehouseBehaviour(engine))
    const warehouse = yield* Sharding.messenger(Warehouse)
    const outcomes: Array<{ orderId: string; outcome: string }> = []
    for (const order of orders) {
      const exit = yield* Effect.exit(engine.send(order))
      const outcome = Exit.isSuccess(exit)
        ? exit.value
        : `failed: ${exit.cause.reasons.map((r) => (r._tag === "Fail" ? JSON.stringify(r.error) : r._tag)).join(", ")}`
      say(`▶ ${order.orderId}: ${outcome}`)
      outcomes.push({ orderId: order.orderId, outcome })
    }
    // The apples warehouse ran low and started a Replenish execution: wait for its restock.
    const level = (product: string, n: number) =>
      warehouse.send(product)(new StockLevel({ messageId: `level-${product}-${n}` }))
    let apples = 0
    for (let n = 0; n < 100; n++) {
      apples = yield* level("apples", n)
      if (apples > 5) break
      yield* Effect.sleep("50 millis")
    }
    const stock = { apples, pears: yield* level("pears", 0) }
    say(`▶ stock now: ${JSON.stringify(stock)}`)
    return { orders: outcomes, stock } satisfies Report
  }).pipe(
    Effect.scoped,
    Effect.provide(
      Sharding.layer().pipe(
        Layer.provideMerge(Membership.layer()),
        Layer.provideMerge(SqliteJournal.layer({ filename }))
      )
    )
  )
