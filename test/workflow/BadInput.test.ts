/** I6: bad input gives a typed error naming workflow, activity and field; nothing stored is lost. */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Option, Schema } from "effect"
import { Activity, MemoryJournal, Signal, Workflow } from "../../src/index.ts"
import { awaitStatus, Calls, withEngine } from "./fixtures.ts"

class Payment extends Workflow.TaggedRequest<Payment>()("Payment", {
  payload: { orderId: Schema.String, cardNumber: Schema.NonEmptyString },
  success: Schema.String,
  failure: Schema.Never
}) {}

class Refund extends Workflow.TaggedRequest<Refund>()("Refund", {
  payload: { orderId: Schema.String },
  success: Schema.String,
  failure: Schema.Never
}) {}

const Amount = Schema.Struct({ amount: Schema.Number })
const AmountV2 = Schema.Struct({ amount: Schema.String })

const failureOf = (exit: Exit.Exit<unknown, unknown>): any => {
  const error = Exit.isFailure(exit) ? Exit.findErrorOption(exit) : Option.none()
  if (Option.isNone(error)) throw new Error(`expected a typed failure, got ${String(exit)}`)
  return error.value
}

describe("I6 bad input cannot corrupt", () => {
  it.live("a request that does not match its schema: typed error with workflow and field path", () =>
    Effect.gen(function* () {
      const journal = yield* MemoryJournal.make
      const workflow = Workflow.make(
        Payment,
        (r) => `pay@${r.orderId}`,
        () => Effect.succeed("ok")
      )
      const bad = new Payment({ orderId: "1", cardNumber: "" }, { disableChecks: true })
      const exit = yield* Effect.exit(withEngine(journal, workflow, (e) => e.send(bad)))
      const error = failureOf(exit)
      expect(error._tag).toBe("InvalidRequestError")
      expect(error.workflow).toBe("Payment")
      expect(error.path).toBe('["cardNumber"]')
      expect(Option.isNone(yield* journal.get("pay@1"))).toBe(true)
    })
  )

  it.live("a request or a signal value over maxPayloadBytes: PayloadTooLargeError; nothing stored", () =>
    Effect.gen(function* () {
      const journal = yield* MemoryJournal.make
      const approval = Signal.make("approval", Schema.String)
      const workflow = Workflow.make(
        Payment,
        (r) => `pay@${r.orderId}`,
        () => Signal.receive(approval)
      )
      const options = { maxPayloadBytes: 4096 }
      const huge = new Payment({ orderId: "huge", cardNumber: "4".repeat(5_000) })
      const refused = failureOf(
        yield* Effect.exit(withEngine(journal, workflow, (e) => e.sendDiscard(huge), options))
      )
      expect(refused).toMatchObject({
        _tag: "PayloadTooLargeError",
        payload: "request",
        payloadOf: "Payment",
        limit: 4096
      })
      expect(refused.bytes).toBeGreaterThan(5_000)
      expect(Option.isNone(yield* journal.get("pay@huge"))).toBe(true)
      // The default is 1 MiB: a 2 MB request is refused, a small one runs.
      const twoMegabytes = new Payment({ orderId: "2mb", cardNumber: "4".repeat(2_000_000) })
      const byDefault = failureOf(
        yield* Effect.exit(withEngine(journal, workflow, (e) => e.sendDiscard(twoMegabytes)))
      )
      expect(byDefault).toMatchObject({ _tag: "PayloadTooLargeError", limit: 1024 * 1024 })
      expect(Option.isNone(yield* journal.get("pay@2mb"))).toBe(true)
      const signalRefused = yield* withEngine(
        journal,
        workflow,
        (e) =>
          Effect.gen(function* () {
            yield* e.sendDiscard(new Payment({ orderId: "1", cardNumber: "4242" }))
            const error = yield* Effect.flip(e.signal("pay@1", approval, "y".repeat(5_000)))
            yield* e.signal("pay@1", approval, "yes")
            return { error, result: yield* e.send(new Payment({ orderId: "1", cardNumber: "4242" })) }
          }),
        options
      )
      expect(signalRefused.error).toMatchObject({
        _tag: "PayloadTooLargeError",
        payload: "signal",
        payloadOf: "approval"
      })
      // The refused value was not stored: the execution received the next one.
      expect(signalRefused.result).toBe("yes")
    })
  )

  it.live("an activity result that does not match its schema suspends only that execution", () =>
    Effect.gen(function* () {
      const journal = yield* MemoryJournal.make
      const calls = new Calls()
      const workflow = Workflow.make(
        Payment,
        (r) => `pay@${r.orderId}`,
        ({ orderId }) =>
          Effect.gen(function* () {
            // A buggy activity: for order 1 the API returns the amount as a string.
            const total = yield* calls
              .tracked(
                "get-total",
                Effect.succeed(orderId === "1" ? ({ amount: "12" } as any) : { amount: 12 })
              )
              .pipe(Activity.make("get-total", Amount, Schema.Never))
            return `charged ${total.amount}`
          })
      )
      const [bad, good] = yield* withEngine(journal, workflow, (e) =>
        Effect.all(
          [
            Effect.exit(e.send(new Payment({ orderId: "1", cardNumber: "4242" }))),
            e.send(new Payment({ orderId: "2", cardNumber: "4242" }))
          ],
          { concurrency: 2 }
        )
      )
      expect(good).toBe("charged 12")
      const error = failureOf(bad)
      expect(error._tag).toBe("ExecutionSuspendedError")
      expect(error.reason._tag).toBe("ActivityResultError")
      expect(error.reason.workflow).toBe("Payment")
      expect(error.reason.activity).toBe("get-total")
      expect(error.reason.path).toBe('["amount"]')
      // Nothing was recorded for the bad outcome: after a fix it re-runs.
      const steps = yield* journal.steps("pay@1")
      expect(steps.map((s) => s.outcome)).toEqual([null])
    })
  )

  it.live(
    "a journal row whose schema changed suspends the execution; nothing is deleted; resume after the fix",
    () =>
      Effect.gen(function* () {
        const journal = yield* MemoryJournal.make
        const calls = new Calls()
        const make = (schema: typeof Amount | typeof AmountV2, value: unknown, open: boolean) =>
          Workflow.make(
            Payment,
            (r) => `pay@${r.orderId}`,
            () =>
              Effect.gen(function* () {
                const total = yield* calls
                  .tracked("get-total", Effect.succeed(value as any))
                  .pipe(Activity.make("get-total", schema, Schema.Never))
                yield* (open ? Effect.void : Effect.never).pipe(
                  Activity.make("gate", Schema.Void, Schema.Never)
                )
                return `charged ${total.amount}`
              })
          )
        yield* withEngine(journal, make(Amount, { amount: 12 }, false), (e) =>
          Effect.andThen(
            e.sendDiscard(new Payment({ orderId: "1", cardNumber: "4242" })),
            Effect.sleep("20 millis")
          )
        )
        const stored = yield* journal.steps("pay@1")
        const exit = yield* Effect.exit(
          withEngine(journal, make(AmountV2, { amount: "12" }, true), (e) =>
            e.send(new Payment({ orderId: "1", cardNumber: "4242" }))
          )
        )
        const error = failureOf(exit)
        expect(error.reason._tag).toBe("JournalDecodeError")
        expect(error.reason.record).toBe("activity")
        expect(error.reason.activity).toBe("get-total")
        expect(error.reason.path).toBe('["amount"]')
        expect(error.reason.message).toContain("Payment")
        expect(yield* journal.steps("pay@1")).toEqual(stored)
        // Deploy the fixed code (schema back), resume: the recorded outcome is used, not re-run.
        const result = yield* withEngine(journal, make(Amount, { amount: 99 }, true), (e) =>
          Effect.andThen(e.resume("pay@1"), e.send(new Payment({ orderId: "1", cardNumber: "4242" })))
        )
        expect(result).toBe("charged 12")
        expect(calls.count("get-total")).toBe(1)
      })
  )

  it.live("an unknown workflow tag suspends that execution; the others keep running", () =>
    Effect.gen(function* () {
      const journal = yield* MemoryJournal.make
      const blockFirst = { open: false }
      const body = (name: string) => () =>
        Effect.suspend(() => (blockFirst.open ? Effect.succeed(name) : Effect.never)).pipe(
          Activity.make("work", Schema.String, Schema.Never)
        )
      const payment = Workflow.make(Payment, (r) => `pay@${r.orderId}`, body("payment"))
      const refund = Workflow.make(Refund, (r) => `refund@${r.orderId}`, body("refund"))
      yield* withEngine(journal, Workflow.union(payment, refund), (e) =>
        Effect.gen(function* () {
          yield* e.sendDiscard(new Payment({ orderId: "1", cardNumber: "4242" }))
          yield* e.sendDiscard(new Refund({ orderId: "1" }))
          yield* Effect.sleep("10 millis")
        })
      )
      blockFirst.open = true
      // A deploy that no longer knows the Payment workflow.
      yield* withEngine(journal, refund, (e) =>
        Effect.gen(function* () {
          yield* awaitStatus(e, "refund@1", "succeeded")
          const info = yield* awaitStatus(e, "pay@1", "suspended")
          const reason = Option.getOrThrow(info.suspendedBecause)
          expect(reason._tag).toBe("UnknownWorkflowError")
          expect(reason.message).toContain('"Payment"')
        })
      )
      const row = Option.getOrThrow(yield* journal.get("pay@1"))
      expect(JSON.parse(row.request)).toEqual({ _tag: "Payment", orderId: "1", cardNumber: "4242" })
      // The workflow is deployed again: resume completes it.
      const result = yield* withEngine(journal, Workflow.union(payment, refund), (e) =>
        Effect.andThen(e.resume("pay@1"), e.send(new Payment({ orderId: "1", cardNumber: "4242" })))
      )
      expect(result).toBe("payment")
    })
  )
})
