/**
 * The workflow of the golden journal fixture (`test/fixtures/journals/golden-v1.json`). Its
 * definition must stay compatible with the recorded journal: change it only together with a new
 * fixture version, and keep replaying the old ones.
 */
import { Effect, Schema } from "effect"
import { Activity, Workflow } from "../../src/index.ts"

export class GoldenRequest extends Workflow.TaggedRequest<GoldenRequest>()("GoldenRequest", {
  payload: { orderId: Schema.String, cardNumber: Schema.String },
  success: Schema.Struct({ refunded: Schema.Boolean, total: Schema.Number }),
  failure: Schema.Never
}) {}

export class OutOfStock extends Schema.TaggedError<OutOfStock>()("OutOfStock", { sku: Schema.String }) {}

const Money = Schema.Struct({ amount: Schema.Number, currency: Schema.Literals(["EUR", "USD"]) })

/** `ran` receives the id of every activity body that runs; `blockRefund` makes the refund wait forever. */
export const goldenWorkflow = (ran: (id: string) => void, blockRefund: boolean) =>
  Workflow.make(
    GoldenRequest,
    (request) => `golden@${request.orderId}`,
    ({ orderId }) =>
      Effect.gen(function* () {
        const total = yield* Effect.sync(() => {
          ran("get-total")
          return { amount: 42.5, currency: "EUR" as const }
        }).pipe(Activity.make("get-total", Money, Schema.Never))
        yield* Effect.sync(() => ran("charge")).pipe(Activity.make("charge", Schema.Void, Schema.Never))
        return yield* Effect.suspend(() => {
          ran("ship")
          return Effect.fail(new OutOfStock({ sku: `${orderId}-sku` }))
        }).pipe(
          Activity.make("ship", Schema.Void, OutOfStock, { retry: { maxAttempts: 1 } }),
          Effect.as({ refunded: false, total: total.amount }),
          Effect.catchTag("OutOfStock", () =>
            Effect.suspend(() => {
              ran("refund")
              return blockRefund ? Effect.never : Effect.succeed({ refunded: true, total: total.amount })
            }).pipe(
              Activity.make(
                "refund",
                Schema.Struct({ refunded: Schema.Boolean, total: Schema.Number }),
                Schema.Never
              )
            )
          )
        )
      })
  )
