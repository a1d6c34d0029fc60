/**
 * Entities and workflows together: a `Warehouse` entity per product keeps its stock (persisted),
 * an order workflow reserves stock from the warehouse of each product it needs (from an activity),
 * and a warehouse that runs low starts a `Replenish` workflow (from its behaviour) — one execution
 * per product and round, whatever the number of orders that found the stock low.
 *
 * Every message's id is the sending activity's `persistenceId`, so an activity that runs again
 * after a crash sends the same message id, and the warehouse applies it once.
 */
import { Effect, Exit, Option, Ref, Schema } from "effect"
import {
  Activity,
  type ActivityContext,
  Message,
  MessageState,
  RecipientBehaviour,
  RecipientType,
  Saga,
  Sharding,
  Workflow,
  type WorkflowEngine
} from "effect-cluster"

/** The warehouse has less than was asked for: final, the order compensates. */
export class OutOfStock extends Schema.TaggedError<OutOfStock>()("OutOfStock", {
  product: Schema.String,
  available: Schema.Number
}) {}

const Quantity = Schema.Int.check(Schema.isGreaterThan(0))

export class Reserve extends Message.TaggedRequest<Reserve>()("Reserve", {
  failure: OutOfStock,
  success: Schema.Number,
  payload: { messageId: Schema.String, orderId: Schema.String, quantity: Quantity }
}) {}

export class Release extends Message.TaggedRequest<Release>()("Release", {
  failure: Schema.Never,
  success: Schema.Number,
  payload: { messageId: Schema.String, orderId: Schema.String, quantity: Quantity }
}) {}

export class Restock extends Schema.TaggedClass<Restock>()("Restock", {
  messageId: Schema.String,
  quantity: Quantity
}) {}

export class StockLevel extends Message.TaggedRequest<StockLevel>()("StockLevel", {
  failure: Schema.Never,
  success: Schema.Number,
  payload: { messageId: Schema.String }
}) {}

const WarehouseState = Schema.Struct({
  stock: Schema.Number,
  replenishments: Schema.Number,
  replenishing: Schema.Boolean
})

export const Warehouse = RecipientType.makeEntityType(
  "Warehouse",
  Schema.Union([Reserve, Release, Restock, StockLevel]),
  (_) => _.messageId,
  { state: WarehouseState }
)

/** Below this stock a warehouse asks its supplier for more. */
export const LOW_STOCK = 3
export const INITIAL_STOCK = 10
export const RESTOCK_QUANTITY = 10

export class Replenish extends Workflow.TaggedRequest<Replenish>()("Replenish", {
  failure: Schema.Never,
  success: Schema.Number,
  payload: { product: Schema.String, round: Schema.Number }
}) {}

export class PlaceOrder extends Workflow.TaggedRequest<PlaceOrder>()("PlaceOrder", {
  failure: OutOfStock,
  success: Schema.String,
  payload: {
    orderId: Schema.String,
    lines: Schema.Array(Schema.Struct({ product: Schema.String, quantity: Quantity }))
  }
}) {}

/** A messenger call inside an activity: the reply, its typed failure, or a defect (retried). */
const ask = <A, E>(
  send: (messageId: string) => Effect.Effect<A, E | Sharding.MessengerError, Sharding.Sharding>,
  isFailure: (error: unknown) => error is E
) =>
  Effect.flatMap(Activity.persistenceId, (messageId) =>
    send(messageId).pipe(Effect.catchIf((error) => !isFailure(error), Effect.die))
  ) as Effect.Effect<A, E, Sharding.Sharding | ActivityContext.ActivityContext>

const isOutOfStock = (error: unknown): error is OutOfStock => error instanceof OutOfStock
const never = (_: unknown): _ is never => false

const reserve = (orderId: string, product: string, quantity: number) =>
  ask(
    (messageId) =>
      Effect.flatMap(Sharding.messenger(Warehouse), (warehouse) =>
        warehouse.send(product)(new Reserve({ messageId, orderId, quantity }))
      ),
    isOutOfStock
  ).pipe(
    // Out of stock is an answer, not a fault: retrying cannot help, the order compensates instead.
    Activity.make(`reserve-${product}`, Schema.Number, OutOfStock, { retry: { retryWhile: () => false } })
  )

const release = (orderId: string, product: string, quantity: number) =>
  ask(
    (messageId) =>
      Effect.flatMap(Sharding.messenger(Warehouse), (warehouse) =>
        warehouse.send(product)(new Release({ messageId, orderId, quantity }))
      ),
    never
  ).pipe(Activity.make(`release-${product}`, Schema.Number, Schema.Never))

/** Reserves every line; if one is out of stock, releases the ones already reserved. */
export const placeOrder = Workflow.make(
  PlaceOrder,
  (request) => request.orderId,
  (request) =>
    Saga.run(
      Effect.gen(function* () {
        for (const line of request.lines) {
          yield* Saga.step(reserve(request.orderId, line.product, line.quantity), () =>
            release(request.orderId, line.product, line.quantity)
          )
        }
        return `${request.orderId}: reserved ${request.lines.map((l) => `${l.quantity} × ${l.product}`).join(", ")}`
      })
    )
)

/** Orders from the supplier (here: a short wait), then restocks the warehouse. */
export const replenish = Workflow.make(
  Replenish,
  (request) => `replenish-${request.product}-${request.round}`,
  (request) =>
    Effect.gen(function* () {
      yield* Effect.sleep("50 millis").pipe(Activity.make("order-from-supplier", Schema.Void, Schema.Never))
      yield* ask(
        (messageId) =>
          Effect.flatMap(Sharding.messenger(Warehouse), (warehouse) =>
            warehouse.sendDiscard(request.product)(new Restock({ messageId, quantity: RESTOCK_QUANTITY }))
          ),
        never
      ).pipe(Activity.make("restock", Schema.Void, Schema.Never))
      return RESTOCK_QUANTITY
    })
)

export const workflows = Workflow.union(placeOrder, replenish)

/** The warehouse's behaviour; it starts `Replenish` executions on `engine`. */
export const warehouseBehaviour = (
  engine: WorkflowEngine.WorkflowEngine<typeof placeOrder | typeof replenish>
) =>
  RecipientBehaviour.fromFunctionEffectStateful(
    () => Effect.succeed({ stock: INITIAL_STOCK, replenishments: 0, replenishing: false }),
    (product, message: typeof Warehouse.schema.Type, state: Ref.Ref<typeof WarehouseState.Type>) =>
      Effect.gen(function* () {
        const current = yield* Ref.get(state)
        switch (message._tag) {
          case "Reserve": {
            if (message.quantity > current.stock) {
              return MessageState.Processed(
                Option.some(Exit.fail(new OutOfStock({ product, available: current.stock })))
              )
            }
            const stock = current.stock - message.quantity
            let { replenishments, replenishing } = current
            if (stock < LOW_STOCK && !replenishing) {
              // One execution per product and round: a redelivered message starts nothing new.
              replenishments++
              replenishing = true
              yield* engine.sendDiscard(new Replenish({ product, round: replenishments })).pipe(Effect.orDie)
            }
            yield* Ref.set(state, { stock, replenishments, replenishing })
            return MessageState.Processed(Option.some(Exit.succeed(stock)))
          }
          case "Release": {
            yield* Ref.set(state, { ...current, stock: current.stock + message.quantity })
            return MessageState.Processed(Option.some(Exit.succeed(current.stock + message.quantity)))
          }
          case "Restock": {
            yield* Ref.set(state, {
              ...current,
              stock: current.stock + message.quantity,
              replenishing: false
            })
            return MessageState.Processed(Option.none())
          }
          case "StockLevel":
            return MessageState.Processed(Option.some(Exit.succeed(current.stock)))
        }
      })
  )
