import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Exit, Schema } from "effect"
import { Activity, MemoryJournal, Workflow } from "../../src/index.ts"
import { Calls, fastRetry, OutOfStockError, untilStep, withEngine } from "./fixtures.ts"

class Flaky extends Workflow.TaggedRequest<Flaky>()("Flaky", {
  payload: { id: Schema.String, failures: Schema.Number },
  success: Schema.String,
  failure: OutOfStockError
}) {}

class GatewayDown extends Schema.TaggedError<GatewayDown>()("GatewayDown", {}) {}

describe("Activity", () => {
  it.live("retries transient failures with the same persistenceId and growing attempt numbers", () =>
    Effect.gen(function* () {
      const journal = yield* MemoryJournal.make
      const calls = new Calls()
      const workflow = Workflow.make(
        Flaky,
        (r) => `flaky@${r.id}`,
        ({ failures }) =>
          calls
            .tracked(
              "charge",
              Effect.flatMap(Activity.attempt, (attempt) =>
                attempt <= failures ? Effect.fail(new GatewayDown()) : Effect.succeed(`charged on ${attempt}`)
              )
            )
            .pipe(Activity.make("charge", Schema.String, GatewayDown), Effect.orDie)
      )
      const result = yield* withEngine(
        journal,
        workflow,
        (e) => e.send(new Flaky({ id: "1", failures: 2 })),
        fastRetry
      )
      expect(result).toBe("charged on 3")
      expect(calls.attempts.get("charge")).toEqual([1, 2, 3])
      expect(new Set(calls.persistenceIds.get("charge"))).toEqual(new Set(["flaky@1/charge"]))
    })
  )

  it.live("retryWhile makes a typed failure final: it is recorded and reaches the workflow", () =>
    Effect.gen(function* () {
      const journal = yield* MemoryJournal.make
      const calls = new Calls()
      const ship = calls.tracked("ship", Effect.fail(new OutOfStockError({ sku: "seat-1A" }))).pipe(
        Activity.make("ship", Schema.Void, OutOfStockError, {
          retry: { retryWhile: (e) => e._tag !== "OutOfStockError" }
        })
      )
      const workflow = Workflow.make(
        Flaky,
        (r) => `final@${r.id}`,
        () => Effect.as(ship, "shipped")
      )
      const exit = yield* Effect.exit(
        withEngine(journal, workflow, (e) => e.send(new Flaky({ id: "1", failures: 0 })), fastRetry)
      )
      expect(exit).toEqual(Exit.fail(new OutOfStockError({ sku: "seat-1A" })))
      expect(calls.count("ship")).toBe(1)
      // Replayed from the journal in a new engine: same typed failure, no new attempt.
      const again = yield* Effect.exit(
        withEngine(journal, workflow, (e) => e.send(new Flaky({ id: "1", failures: 0 })), fastRetry)
      )
      expect(again).toEqual(exit)
      expect(calls.count("ship")).toBe(1)
    })
  )

  it.live("a defect that outlives the retries is recorded as a structured cause", () =>
    Effect.gen(function* () {
      const journal = yield* MemoryJournal.make
      const calls = new Calls()
      const workflow = Workflow.make(
        Flaky,
        (r) => `defect@${r.id}`,
        () =>
          calls
            .tracked("parse", Effect.die(new TypeError("unexpected token < in JSON")))
            .pipe(Activity.make("parse", Schema.String, Schema.Never, { retry: { maxAttempts: 3 } }))
      )
      const exit = yield* Effect.exit(
        withEngine(journal, workflow, (e) => e.send(new Flaky({ id: "1", failures: 0 })), fastRetry)
      )
      expect(calls.count("parse")).toBe(3)
      const steps = yield* journal.steps("defect@1")
      const recorded = JSON.parse(steps[0]?.outcome ?? "null")
      expect(recorded).toEqual({
        _tag: "Failure",
        cause: [{ _tag: "Die", defect: { name: "TypeError", message: "unexpected token < in JSON" } }]
      })
      expect(Exit.isFailure(exit) && Cause.hasDies(exit.cause)).toBe(true)
      const defect = Exit.isFailure(exit) ? Cause.squash(exit.cause) : undefined
      expect(defect).toBeInstanceOf(Error)
      expect((defect as Error).message).toBe("unexpected token < in JSON")
    })
  )

  it.live("versioning: an activity recording the definition version returns the recorded one on replay", () =>
    Effect.gen(function* () {
      const journal = yield* MemoryJournal.make
      const calls = new Calls()
      const getCurrentVersion = (definitionVersion: number) =>
        Effect.succeed(definitionVersion).pipe(
          Activity.make("get-current-version", Schema.Number, Schema.Never)
        )
      const definition = (version: number, open: boolean) =>
        Workflow.make(
          Flaky,
          (r) => `versioned@${r.id}`,
          () =>
            Effect.gen(function* () {
              const recorded = yield* getCurrentVersion(version)
              if (recorded >= 2) yield* calls.activity("check-trusted-card", Schema.Boolean, true)
              yield* (open ? Effect.void : Effect.never).pipe(
                Activity.make("wait", Schema.Void, Schema.Never)
              )
              return `v${recorded}`
            })
        )
      // v1 starts and is stopped (engine shutdown) while waiting.
      yield* withEngine(journal, definition(1, false), (e) =>
        Effect.andThen(
          e.sendDiscard(new Flaky({ id: "1", failures: 0 })),
          untilStep(journal, "versioned@1", "wait")
        )
      )
      // v2 of the code resumes it: the running execution keeps version 1 and skips the new step.
      const resumed = yield* withEngine(journal, definition(2, true), (e) =>
        e.send(new Flaky({ id: "1", failures: 0 }))
      )
      expect(resumed).toBe("v1")
      expect(calls.count("check-trusted-card")).toBe(0)
      // A new execution runs version 2.
      const fresh = yield* withEngine(journal, definition(2, true), (e) =>
        e.send(new Flaky({ id: "2", failures: 0 }))
      )
      expect(fresh).toBe("v2")
      expect(calls.count("check-trusted-card")).toBe(1)
    })
  )

  it.live("the first run sees an outcome as its schema stores it, exactly as replays will", () =>
    Effect.gen(function* () {
      const journal = yield* MemoryJournal.make
      const Charge = Schema.Struct({ amount: Schema.Number })
      const seen: Array<string> = []
      const workflow = Workflow.make(
        Flaky,
        (r) => `lossy@${r.id}`,
        () =>
          // The API returns an extra field that the schema does not keep.
          Effect.succeed({ amount: 5, refundable: true } as { amount: number }).pipe(
            Activity.make("charge", Charge, Schema.Never),
            Effect.tap((charge) => Effect.sync(() => seen.push(JSON.stringify(charge)))),
            Effect.map((charge) => ("refundable" in charge ? "refundable" : "final"))
          )
      )
      const first = yield* withEngine(journal, workflow, (e) => e.send(new Flaky({ id: "1", failures: 0 })))
      expect(first).toBe("final")
      expect(seen).toEqual(['{"amount":5}'])
    })
  )
})
