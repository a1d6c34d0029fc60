/**
 * The talk's ProcessPayment workflow: get the amount due, charge the card, create a shipping
 * tracking code, send the order to shipping and a confirmation email — refunding the card when
 * the warehouse is out of stock.
 */
import { Effect, Schema } from "effect"
import { Activity, Workflow } from "effect-cluster"
import { call, type Services, ServiceUnavailable } from "./services-client.ts"

export class ProcessPaymentRequest extends Workflow.TaggedRequest<ProcessPaymentRequest>()(
  "ProcessPaymentRequest",
  {
    failure: Schema.Never,
    success: Schema.Boolean,
    payload: {
      orderId: Schema.String,
      cardNumber: Schema.String,
      email: Schema.String,
      deliveryAddress: Schema.String
    }
  }
) {}

/** Final: retrying cannot help, the workflow compensates instead. */
export class OutOfStockError extends Schema.TaggedError<OutOfStockError>()("OutOfStockError", {
  orderId: Schema.String
}) {}

/** An activity of the workflow (exported for the example's tests). */
export const getTotalAmount = (services: Services, orderId: string) =>
  call(services, "orders", `/total?order=${orderId}`).pipe(
    Effect.map((body) => Number(body.total)),
    Activity.make(`get-amount-due-${orderId}`, Schema.Number, ServiceUnavailable)
  )

/** An activity of the workflow (exported for the example's tests). */
export const chargeCreditCard = (services: Services, cardNumber: string, amount: number) =>
  Activity.persistenceId.pipe(
    Effect.flatMap((key) =>
      call(services, "payments", `/charge?card=${cardNumber}&amount=${amount}&key=${key}`)
    ),
    Effect.asVoid,
    Activity.make("charge-credit-card", Schema.Void, ServiceUnavailable)
  )

/** An activity of the workflow (exported for the example's tests). */
export const refundCreditCard = (services: Services, cardNumber: string, amount: number) =>
  Activity.persistenceId.pipe(
    Effect.flatMap((key) =>
      call(services, "payments", `/refund?card=${cardNumber}&amount=${amount}&key=${key}`)
    ),
    Effect.as(false),
    Activity.make("refund-credit-card", Schema.Boolean, ServiceUnavailable)
  )

/** An activity of the workflow (exported for the example's tests). */
export const createShippingTrackingCode = (services: Services, deliveryAddress: string) =>
  call(services, "shipping", `/tracking-code?address=${encodeURIComponent(deliveryAddress)}`).pipe(
    Effect.map((body) => String(body.trackingId)),
    Activity.make("create-shipping-tracking-code", Schema.String, ServiceUnavailable)
  )

/** An activity of the workflow (exported for the example's tests). */
export const sendOrderToShipping = (services: Services, orderId: string, trackingId: string) =>
  call(services, "warehouse", `/ship?order=${orderId}&tracking=${trackingId}`).pipe(
    Effect.flatMap((body) =>
      body.outOfStock === true ? Effect.fail(new OutOfStockError({ orderId })) : Effect.void
    ),
    Activity.make(
      "send-order-to-shipping",
      Schema.Void,
      Schema.Union([ServiceUnavailable, OutOfStockError]),
      {
        retry: { retryWhile: (error) => error._tag !== "OutOfStockError" }
      }
    )
  )

/** An activity of the workflow (exported for the example's tests). */
export const sendConfirmationEmail = (
  services: Services,
  email: string,
  orderId: string,
  trackingId: string
) =>
  call(services, "email", `/send?to=${email}&order=${orderId}&tracking=${trackingId}`).pipe(
    Effect.asVoid,
    Activity.make("send-confirmation-email", Schema.Void, ServiceUnavailable)
  )

/** The workflow, bound to the fake services at `services`. */
export const processPayment = (services: Services) =>
  Workflow.make(
    ProcessPaymentRequest,
    (request) => `ProcessPayment@${request.orderId}`,
    ({ cardNumber, deliveryAddress, email, orderId }) =>
      getTotalAmount(services, orderId).pipe(
        Effect.flatMap((totalAmount) =>
          chargeCreditCard(services, cardNumber, totalAmount).pipe(
            Effect.flatMap(() => createShippingTrackingCode(services, deliveryAddress)),
            Effect.tap((trackingId) => sendOrderToShipping(services, orderId, trackingId)),
            Effect.tap((trackingId) => sendConfirmationEmail(services, email, orderId, trackingId)),
            Effect.as(true),
            Effect.catchTag("OutOfStockError", () => refundCreditCard(services, cardNumber, totalAmount))
          )
        ),
        // Every remaining failure is transient and retried until the policy gives up.
        Effect.orDie
      )
  )
