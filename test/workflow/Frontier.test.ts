/**
 * The frontier rule (I7): while an execution has recorded steps that its run has not asked for
 * yet, no step absent from the journal runs; recorded outcomes are delivered in the order the first
 * run saw them. A changed workflow whose first step is new (the talk's warning: ProcessPayment now
 * charges the card first) is suspended with NonDeterminismError before the charge runs, on every
 * backend and through every way a run starts; concurrent code added or kept by the new version
 * still replays.
 */
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Layer, Option, Schema } from "effect"
import {
  Activity,
  DurableExecutionJournal,
  MemoryJournal,
  Signal,
  SqliteJournal,
  Workflow,
  WorkflowEngine,
  WorkflowTest
} from "../../src/index.ts"
import { PostgresJournal } from "../../src/postgres.ts"
import { freshDatabase } from "../support/freshDatabase.ts"
import { scopedTempDir } from "../support/tempDir.ts"
import { Calls } from "./fixtures.ts"

class Payment extends Workflow.TaggedRequest<Payment>()("Payment", {
  payload: { orderId: Schema.String },
  success: Schema.String,
  failure: Schema.Never
}) {}

const approval = Signal.make("approval", Schema.String)

/** v1 asks the amount due, then waits for an approval; v2 charges the card first. */
const paymentV1 = (calls: Calls) =>
  Workflow.make(
    Payment,
    (request) => `payment@${request.orderId}`,
    () =>
      Effect.gen(function* () {
        const amount = yield* calls.activity("get-amount-due", Schema.Number, 42)
        const approved = yield* Signal.receive(approval)
        yield* calls.activity("charge-credit-card", Schema.Number, amount)
        return `charged ${amount} (${approved})`
      })
  )

const paymentV2 = (calls: Calls) =>
  Workflow.make(
    Payment,
    (request) => `payment@${request.orderId}`,
    () =>
      Effect.gen(function* () {
        const charged = yield* calls.activity("charge-credit-card", Schema.Number, 42)
        const amount = yield* calls.activity("get-amount-due", Schema.Number, 42)
        return `charged ${charged} of ${amount}`
      })
  )

type Journal = Layer.Layer<DurableExecutionJournal.DurableExecutionJournal, unknown>

/** A backend: a journal layer that every engine of one test opens afresh (the same store). */
const backends: ReadonlyArray<{
  readonly name: string
  readonly open: Effect.Effect<Journal, unknown, import("effect").Scope.Scope>
}> = [
  {
    name: "memory",
    open: Effect.map(MemoryJournal.make, (journal) =>
      Layer.succeed(DurableExecutionJournal.DurableExecutionJournal, journal)
    )
  },
  {
    name: "sqlite",
    open: Effect.map(scopedTempDir("frontier-"), (dir) =>
      Layer.fresh(SqliteJournal.layer({ filename: join(dir, "journal.db") }))
    )
  },
  {
    name: "postgres",
    open: Effect.map(
      Effect.promise(() => freshDatabase("frontier")),
      (url) => Layer.fresh(PostgresJournal.layer({ url }))
    )
  }
]

/** Runs `f` with an engine of `workflow` on `journal`; the engine shuts down gracefully after. */
const withEngine = <W extends Workflow.Any, A, E>(
  journal: Journal,
  workflow: W,
  f: (engine: WorkflowEngine.WorkflowEngine<W>) => Effect.Effect<A, E>
) => Effect.scoped(Effect.flatMap(WorkflowEngine.makeScoped(workflow), f)).pipe(Effect.provide(journal))

/** Polls the execution's status until `until` holds (a backstop of 30 s). */
const statusUntil = <W extends Workflow.Any>(
  engine: WorkflowEngine.WorkflowEngine<W>,
  executionId: string,
  until: (status: string | undefined) => boolean
) =>
  Effect.gen(function* () {
    for (let i = 0; i < 6_000; i++) {
      const status = Option.getOrUndefined(yield* engine.status(executionId))?.status
      if (until(status)) return status
      yield* Effect.sleep("5 millis")
    }
    return yield* Effect.die(new Error(`execution ${executionId} never reached the awaited status`))
  })

const suspendedReason = (exit: Exit.Exit<unknown, unknown>) => {
  const error = Exit.findErrorOption(exit)
  if (Option.isNone(error)) throw new Error(`expected a typed failure, got ${String(exit)}`)
  const value = error.value as { _tag: string; reason: { _tag: string; expected: string; actual: string } }
  expect(value._tag).toBe("ExecutionSuspendedError")
  return value.reason
}

describe("a changed first step never runs against an old journal", () => {
  for (const backend of backends) {
    it.live(
      `${backend.name}: resumed on start, resumed by hand, and sent to: suspended, the card never charged`,
      () =>
        Effect.gen(function* () {
          const journal = yield* backend.open
          const calls = new Calls()
          // v1 records the amount due and parks, waiting for the approval.
          yield* withEngine(journal, paymentV1(calls), (engine) =>
            Effect.andThen(
              engine.sendDiscard(new Payment({ orderId: "1" })),
              statusUntil(engine, "payment@1", (status) => status === "sleeping")
            )
          )
          const before = yield* Effect.provide(
            Effect.flatMap(DurableExecutionJournal.DurableExecutionJournal, (j) => j.steps("payment@1")),
            journal
          )
          expect(before.map((step) => step.stepKey)).toEqual(["get-amount-due"])
          // v2 is deployed; the approval arrives, which wakes the execution on v2's code.
          yield* withEngine(journal, paymentV2(calls), (engine) =>
            Effect.gen(function* () {
              yield* engine.signal("payment@1", approval, "yes")
              yield* statusUntil(engine, "payment@1", (status) => status === "suspended")
              // By hand, and by a caller: the same verdict, and still no charge.
              yield* engine.resume("payment@1")
              const exit = yield* Effect.exit(engine.send(new Payment({ orderId: "1" })))
              const reason = suspendedReason(exit)
              expect(reason._tag).toBe("NonDeterminismError")
              expect(reason.expected).toBe('"get-amount-due" (recorded step 1)')
              expect(reason.actual).toBe('the new step "charge-credit-card" instead (nothing of it ran)')
              const history = yield* engine.history("payment@1")
              expect(history.steps.map((step) => step.stepKey)).toEqual(["get-amount-due"])
            })
          )
          expect(calls.count("charge-credit-card")).toBe(0)
          expect(calls.count("get-amount-due")).toBe(1)
        }),
      60_000
    )
  }

  it.effect("WorkflowReplay finds it with no recorded step after the change", () =>
    Effect.gen(function* () {
      const calls = new Calls()
      const engine = yield* WorkflowTest.makeEngine(paymentV1(calls))
      yield* engine.sendDiscard(new Payment({ orderId: "2" }))
      yield* WorkflowTest.advance("1 second")
      const exported = yield* engine.exportJournal("payment@2")
      expect(exported.steps.map((step) => step.stepKey)).toEqual(["get-amount-due"])
      const error = yield* Effect.flip(WorkflowTest.replay(paymentV2(calls), exported))
      expect(error._tag).toBe("NonDeterminismError")
      expect(error.message).toContain('expected "get-amount-due" (recorded step 1)')
      expect(error.message).toContain('it asked for the new step "charge-credit-card" instead')
      expect(calls.count("charge-credit-card")).toBe(0)
    }).pipe(Effect.scoped)
  )
})

class Task extends Workflow.TaggedRequest<Task>()("Task", {
  payload: { id: Schema.String },
  success: Schema.String,
  failure: Schema.Never
}) {}

const gate = (calls: Calls, open: boolean) =>
  calls
    .tracked("gate", open ? Effect.void : Effect.never)
    .pipe(Activity.make("gate", Schema.Void, Schema.Never))

/** Runs `v1` until its gate is reached, then `v2` on the same journal; v2's send exit and the steps. */
const twoVersions = (
  v1: (calls: Calls) => Effect.Effect<string, never, any>,
  v2: (calls: Calls) => Effect.Effect<string, never, any>
) =>
  Effect.gen(function* () {
    const store = yield* MemoryJournal.make
    const journal = Layer.succeed(DurableExecutionJournal.DurableExecutionJournal, store)
    const calls = new Calls()
    const make = (body: (calls: Calls) => Effect.Effect<string, never, any>) =>
      Workflow.make(
        Task,
        () => "task",
        () => body(calls)
      )
    const atGate = Effect.map(store.steps("task"), (steps) => steps.some((step) => step.stepKey === "gate"))
    yield* withEngine(journal, make(v1), (engine) =>
      Effect.andThen(
        engine.sendDiscard(new Task({ id: "1" })),
        Effect.repeat(Effect.andThen(Effect.sleep("2 millis"), atGate), { until: (at) => at, times: 5_000 })
      )
    )
    const exit = yield* Effect.exit(
      withEngine(journal, make(v2), (engine) => engine.send(new Task({ id: "1" })))
    )
    return { exit, calls, steps: yield* store.steps("task") }
  })

describe("concurrent code under the frontier rule", () => {
  it.live("a branch added by the new code waits until the others replayed their history, then runs", () =>
    Effect.gen(function* () {
      // What the workflow code did, in order: replay runs the code, not the activities.
      const log: Array<string> = []
      const { exit, calls, steps } = yield* twoVersions(
        (calls) =>
          Effect.gen(function* () {
            yield* calls.activity("a", Schema.Number, 1)
            yield* calls.activity("b", Schema.Number, 2)
            yield* gate(calls, false)
            return "v1"
          }),
        (calls) =>
          Effect.all(
            [
              // New: asked first, before the recorded steps of the other branch.
              calls
                .tracked(
                  "audit",
                  Effect.sync(() => {
                    log.push("audit ran")
                    return 1
                  })
                )
                .pipe(Activity.make("audit", Schema.Number, Schema.Never)),
              Effect.gen(function* () {
                const a = yield* calls.activity("a", Schema.Number, 1)
                log.push("a replayed")
                const b = yield* calls.activity("b", Schema.Number, 2)
                log.push("b replayed")
                yield* gate(calls, true)
                return a + b
              })
            ],
            { concurrency: "unbounded" }
          ).pipe(Effect.map(([audit, sum]) => `audit ${audit}, sum ${sum}`))
      )
      expect(exit).toEqual(Exit.succeed("audit 1, sum 3"))
      expect(log).toEqual(["a replayed", "b replayed", "audit ran"])
      expect([calls.count("a"), calls.count("b"), calls.count("audit")]).toEqual([1, 1, 1])
      // Its seq follows every recorded step's.
      const seqOf = (key: string) => steps.find((step) => step.stepKey === key)?.seq ?? -1
      expect(seqOf("audit")).toBeGreaterThan(Math.max(seqOf("a"), seqOf("b"), seqOf("gate")))
    })
  )

  it.live("a new step after the frontier runs", () =>
    Effect.gen(function* () {
      const { exit, calls } = yield* twoVersions(
        (calls) =>
          Effect.gen(function* () {
            yield* calls.activity("a", Schema.Number, 1)
            yield* gate(calls, false)
            return "v1"
          }),
        (calls) =>
          Effect.gen(function* () {
            yield* calls.activity("a", Schema.Number, 1)
            yield* gate(calls, true)
            return yield* calls.activity("c", Schema.String, "c ran")
          })
      )
      expect(exit).toEqual(Exit.succeed("c ran"))
      expect([calls.count("a"), calls.count("c")]).toEqual([1, 1])
    })
  )

  it.live("fork-and-continue replays: the forked fiber's and the parent's steps, nothing run twice", () =>
    Effect.gen(function* () {
      const body = (open: boolean) => (calls: Calls) =>
        Effect.gen(function* () {
          const forked = yield* Effect.forkChild(calls.activity("in-background", Schema.String, "bg"))
          const first = yield* calls.activity("parent-1", Schema.String, "p1")
          const second = yield* calls.activity("parent-2", Schema.String, "p2")
          const background = yield* Fiber.join(forked)
          yield* gate(calls, open)
          return [first, second, background].join(",")
        })
      const { exit, calls } = yield* twoVersions(body(false), body(true))
      expect(exit).toEqual(Exit.succeed("p1,p2,bg"))
      expect([calls.count("in-background"), calls.count("parent-1"), calls.count("parent-2")]).toEqual([
        1, 1, 1
      ])
    })
  )

  it.live(
    "a branch the new code dropped stops the run, naming it: the outcome recorded after it waits for it",
    () =>
      Effect.gen(function* () {
        const { exit, calls, steps } = yield* twoVersions(
          (calls) =>
            Effect.all(
              [
                calls
                  .tracked("reserve", Effect.as(Effect.sleep("30 millis"), 1))
                  .pipe(Activity.make("reserve", Schema.Number, Schema.Never)),
                calls.activity("quote", Schema.Number, 2)
              ],
              { concurrency: "unbounded" }
            ).pipe(Effect.andThen(gate(calls, false)), Effect.as("v1")),
          (calls) =>
            calls
              .tracked("reserve", Effect.succeed(1))
              .pipe(
                Activity.make("reserve", Schema.Number, Schema.Never),
                Effect.andThen(gate(calls, true)),
                Effect.as("v2")
              )
        )
        const reason = suspendedReason(exit)
        expect(reason._tag).toBe("NonDeterminismError")
        expect(reason.expected).toBe(
          `"quote" (recorded step ${steps.find((step) => step.stepKey === "quote")?.seq})`
        )
        expect(reason.actual).toBe(
          'no step that reaches it (the recorded outcome of "reserve" comes after it)'
        )
        // Nothing ran again: the gate's attempt stays the one v1 started.
        expect([calls.count("reserve"), calls.count("quote"), calls.count("gate")]).toEqual([1, 1, 1])
      })
  )
})
