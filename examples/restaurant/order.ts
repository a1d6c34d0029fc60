/**
 * The restaurant's `Order` workflow: take the order, cook, serve — three short activities. Each
 * one tells who ran it: the waiter (pod), the table (the order's shard) and the epoch at which the
 * waiter held that table (`ActivityContext.fence`), in its recorded outcome and in the waiters'
 * ledger (see `ledger.ts`). Serving puts the plate on the pass (see `pass.ts`), once per order.
 */
import { Duration, Effect, Schema } from "effect"
import { Activity, ActivityContext, Workflow } from "effect-cluster"
import * as Ledger from "./ledger.ts"
import * as Pass from "./pass.ts"

/** A guest's order; its id is the execution id, so the same order placed twice is one execution. */
export class Order extends Workflow.TaggedRequest<Order>()("Order", {
  payload: { orderId: Schema.String },
  success: Schema.String,
  failure: Schema.Never
}) {}

/** The id of the n-th order of the evening: `order-0001`, … */
export const orderId = (n: number): string => `order-${String(n).padStart(4, "0")}`

/** Who works in this process, where the ledger is, and where the pass is. */
export interface Crew {
  readonly waiter: string
  readonly ledger: string
  readonly pass: string
}

/** How long each step takes: cooking is the slow part, so some orders are always in progress. */
export const STEP_MILLIS = { "take-order": 40, cook: 400, serve: 40 } as const

/** What a step says it did, in its recorded outcome: `served by waiter-2 (table 7, epoch 4, attempt 1)`. */
export const done = (verb: string, by: Omit<Pass.Plate, "order">) =>
  `${verb} by ${by.waiter} (table ${by.table}, epoch ${by.epoch}, attempt ${by.attempt})`

/**
 * A step of an order: one activity that records its attempts in the ledger and takes
 * `STEP_MILLIS`. `serve` then puts the plate on the pass, keyed by the step's persistence id.
 */
const step = (crew: Crew, id: keyof typeof STEP_MILLIS, verb: string) =>
  Effect.gen(function* () {
    const context = yield* ActivityContext.ActivityContext
    const attempt = {
      order: context.persistenceId.split("/")[0]!,
      waiter: crew.waiter,
      // Null only when one process runs every shard, which a waiter never does.
      table: context.fence?.shard ?? 0,
      epoch: context.fence?.epoch ?? 0,
      attempt: context.attempt
    }
    const line = { ...attempt, step: id }
    Ledger.append(crew.ledger, { ...line, k: "start", t: Date.now() })
    yield* Effect.sleep(Duration.millis(STEP_MILLIS[id])).pipe(
      Effect.onInterrupt(() =>
        Effect.sync(() => Ledger.append(crew.ledger, { ...line, k: "stop", t: Date.now() }))
      )
    )
    // An earlier attempt may have served the plate and died before the journal recorded it: then
    // the plate at the table is that attempt's, and this one carries nothing.
    const by = id === "serve" ? Pass.serveOnce(crew.pass, context.persistenceId, attempt).plate : attempt
    Ledger.append(crew.ledger, { ...line, k: "end", t: Date.now() })
    return done(verb, by)
  }).pipe(Activity.make(id, Schema.String, Schema.Never))

/** The workflow, run by `crew`; its result says who took, cooked and served the order. */
export const order = (crew: Crew) =>
  Workflow.make(
    Order,
    (request) => request.orderId,
    () =>
      Effect.gen(function* () {
        const taken = yield* step(crew, "take-order", "taken")
        const cooked = yield* step(crew, "cook", "cooked")
        const served = yield* step(crew, "serve", "served")
        return [taken, cooked, served].join("; ")
      })
  )
