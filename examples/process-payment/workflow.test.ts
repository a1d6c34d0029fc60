/**
 * The talk's ProcessPayment tested the way a user tests a workflow with effect-cluster's kit:
 * time skipped on `TestClock`, services in memory, and the golden journals of executions stopped
 * mid-way replayed against the current code, so a change that would break them fails here.
 */
import { readdirSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { Workflow, WorkflowTest } from "effect-cluster"
import { inMemoryServices } from "./in-memory-services.ts"
import type { Services } from "./services-client.ts"
import {
  chargeCreditCard,
  createShippingTrackingCode,
  getTotalAmount,
  ProcessPaymentRequest,
  processPayment,
  refundCreditCard,
  sendConfirmationEmail,
  sendOrderToShipping
} from "./workflow.ts"

const order1 = new ProcessPaymentRequest({
  orderId: "order-1",
  cardNumber: "4242-4242",
  email: "my@email.com",
  deliveryAddress: "My address, 5, Italy"
})
const order2 = new ProcessPaymentRequest({
  orderId: "order-2",
  cardNumber: "5555-0000",
  email: "bob@example.com",
  deliveryAddress: "Via Roma 1, Milano"
})

const journals = join(import.meta.dirname, "journals")

describe("ProcessPayment", () => {
  it.effect("pays, ships and emails; out of stock refunds the card", () =>
    Effect.gen(function* () {
      const fake = inMemoryServices({ outOfStock: new Set(["order-2"]) })
      const engine = yield* WorkflowTest.makeEngine(processPayment(fake.services))
      expect(yield* engine.send(order1)).toBe(true)
      expect(yield* engine.send(order2)).toBe(false)
      expect([...fake.charges.keys()]).toEqual([
        "ProcessPayment@order-1/charge-credit-card",
        "ProcessPayment@order-2/charge-credit-card"
      ])
      expect([...fake.refunds.keys()]).toEqual(["ProcessPayment@order-2/refund-credit-card"])
      expect(fake.emails).toEqual(["my@email.com"])
    }).pipe(Effect.scoped)
  )

  it.effect("the gateway is down for most of an hour: the charge backs off and the order completes", () =>
    Effect.gen(function* () {
      // 1, 2, 4, 8, 10, 10, 10, 10 minutes of backoff: 55 minutes of test time, no real time.
      const fake = inMemoryServices({ chargeFailures: 8 })
      const engine = yield* WorkflowTest.makeEngine(processPayment(fake.services), {
        retry: { initialDelay: "1 minute", factor: 2, maxDelay: "10 minutes", maxAttempts: 20 }
      })
      expect(yield* WorkflowTest.within("1 hour", engine.send(order1))).toBe(true)
      const charge = (yield* engine.history("ProcessPayment@order-1")).steps.find(
        (step) => step.stepKey === "charge-credit-card"
      )
      expect(charge?.attempts).toBe(9)
      expect(charge?.failedAttempts.map((a) => a.attempt)).toEqual([1, 2, 3, 4, 5, 6, 7, 8])
      expect(fake.charges.size).toBe(1)
    }).pipe(Effect.scoped)
  )

  describe("golden journals (recorded by record-journal.ts)", () => {
    const files = readdirSync(journals).filter((file) => file.endsWith(".json"))

    it("there are journals to replay", () => {
      expect(files.length).toBeGreaterThanOrEqual(2)
    })

    for (const file of files) {
      it.effect(`${file} replays against the current workflow without running an activity`, () =>
        Effect.gen(function* () {
          const fake = inMemoryServices()
          const report = yield* WorkflowTest.replay(processPayment(fake.services), join(journals, file))
          expect(report.ended).toBe("frontier")
          expect(fake.calls).toEqual([])
        })
      )
    }

    it.effect("a release that creates the tracking code before charging the card fails the replay", () =>
      Effect.gen(function* () {
        const fake = inMemoryServices()
        const error = yield* Effect.flip(
          WorkflowTest.replay(trackingFirst(fake.services), join(journals, "order-2-mid-refund.v1.json"))
        )
        expect(error._tag).toBe("NonDeterminismError")
        if (error._tag !== "NonDeterminismError") return
        expect(error.expected).toBe('"charge-credit-card" (recorded step 2)')
        expect(error.actual).toBe('"create-shipping-tracking-code" (recorded step 3)')
        expect(fake.calls).toEqual([])
      })
    )
  })
})

/** A "v2" that reorders two activities: unsafe for executions recorded by v1. */
const trackingFirst = (services: Services) =>
  Workflow.make(
    ProcessPaymentRequest,
    (request) => `ProcessPayment@${request.orderId}`,
    ({ cardNumber, deliveryAddress, email, orderId }) =>
      getTotalAmount(services, orderId).pipe(
        Effect.flatMap((totalAmount) =>
          createShippingTrackingCode(services, deliveryAddress).pipe(
            Effect.tap(() => chargeCreditCard(services, cardNumber, totalAmount)),
            Effect.tap((trackingId) => sendOrderToShipping(services, orderId, trackingId)),
            Effect.tap((trackingId) => sendConfirmationEmail(services, email, orderId, trackingId)),
            Effect.as(true),
            Effect.catchTag("OutOfStockError", () => refundCreditCard(services, cardNumber, totalAmount))
          )
        ),
        Effect.orDie
      )
  )
