/**
 * Races around parking (found in review): an interrupt that lands while an execution parks, two
 * branches parking at once, a signal sent while parking, an interrupt delivered after a replayed
 * sleep, a parent interrupted while suspended on its child, and one damaged sleeping row.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Option, Schema } from "effect"
import { Activity, MemoryJournal, Saga, Signal, Workflow } from "../../src/index.ts"
import { sqlite } from "../storage/backends.ts"
import { awaitStatus, Calls, withEngine } from "./fixtures.ts"

class Job extends Workflow.TaggedRequest<Job>()("Job", {
  payload: { id: Schema.String, n: Schema.Number },
  success: Schema.String,
  failure: Schema.Never
}) {}

const statusOf = (
  journal: { get: (id: string) => Effect.Effect<Option.Option<{ status: string }>, unknown> },
  id: string
) =>
  Effect.map(
    journal.get(id),
    Option.map((row) => row.status)
  )

describe("waits and parking under races", () => {
  it.live("an interrupt after a completed sleep replays the history first; every compensation runs", () =>
    Effect.gen(function* () {
      const journal = yield* MemoryJournal.make
      const calls = new Calls()
      const approval = Signal.make("approval", Schema.String)
      const workflow = Workflow.make(
        Job,
        (r) => `replayed@${r.id}`,
        () =>
          Saga.run(
            Effect.gen(function* () {
              yield* Saga.step(calls.activity("A", Schema.String, "a"), () =>
                calls.activity("undoA", Schema.String, "x")
              )
              yield* Workflow.sleep("50 millis")
              yield* Saga.step(calls.activity("B", Schema.String, "b"), () =>
                calls.activity("undoB", Schema.String, "x")
              )
              return yield* Signal.receive(approval)
            })
          )
      )
      yield* withEngine(journal, workflow, (engine) =>
        Effect.gen(function* () {
          yield* engine.sendDiscard(new Job({ id: "1", n: 0 }))
          for (let i = 0; i < 200 && calls.count("B") === 0; i++) yield* Effect.sleep("10 millis")
          yield* awaitStatus(engine, "replayed@1", "sleeping")
          yield* engine.interrupt("replayed@1")
        })
      )
      expect(yield* statusOf(journal, "replayed@1")).toEqual(Option.some("interrupted"))
      expect([calls.count("undoA"), calls.count("undoB")]).toEqual([1, 1])
    })
  )

  it.live("an interrupt racing a park: every execution ends interrupted", () =>
    Effect.gen(function* () {
      const journal = yield* MemoryJournal.make
      const gates = new Map<string, Deferred.Deferred<void>>()
      const signal = Signal.make("never", Schema.String)
      const workflow = Workflow.make(
        Job,
        (r) => `racing@${r.id}`,
        ({ id, n }) =>
          Effect.gen(function* () {
            yield* Effect.suspend(() => Deferred.succeed(gates.get(id)!, undefined)).pipe(
              Activity.make("a", Schema.Boolean, Schema.Never)
            )
            for (let i = 0; i < n; i++) yield* Workflow.now
            return yield* Signal.receive(signal)
          })
      )
      const notInterrupted: Array<string> = []
      yield* withEngine(journal, workflow, (engine) =>
        Effect.forEach(
          Array.from({ length: 40 }, (_, i) => i),
          (i) =>
            Effect.gen(function* () {
              const id = String(i)
              gates.set(id, yield* Deferred.make<void>())
              yield* engine.sendDiscard(new Job({ id, n: i % 6 }))
              yield* Deferred.await(gates.get(id)!)
              for (let k = 0; k < i % 4; k++) yield* Effect.yieldNow
              yield* engine.interrupt(`racing@${id}`)
              const status = yield* statusOf(journal, `racing@${id}`)
              if (Option.getOrNull(status) !== "interrupted")
                notInterrupted.push(`${id}: ${Option.getOrNull(status)}`)
            }),
          { discard: true }
        )
      )
      expect(notInterrupted).toEqual([])
    })
  )

  it.live("race(receive, sleep): parked with both, the sleep's deadline wakes it", () =>
    Effect.gen(function* () {
      const journal = yield* MemoryJournal.make
      const signal = Signal.make("sig", Schema.String)
      const workflow = Workflow.make(
        Job,
        (r) => `both@${r.id}`,
        () =>
          Effect.raceFirst(Signal.receive(signal), Workflow.sleep("200 millis").pipe(Effect.as("timeout")))
      )
      const result = yield* withEngine(
        journal,
        workflow,
        (engine) => engine.send(new Job({ id: "1", n: 0 })),
        {
          timerPollInterval: "1 minute"
        }
      )
      expect(result).toBe("timeout")
    })
  )

  it.live("race(receive x, receive y) with y sent while the execution parks: never stuck", () =>
    Effect.gen(function* () {
      const journal = yield* MemoryJournal.make
      const gates = new Map<string, Deferred.Deferred<void>>()
      const x = Signal.make("x", Schema.String)
      const y = Signal.make("y", Schema.String)
      const workflow = Workflow.make(
        Job,
        (r) => `xy@${r.id}`,
        ({ id }) =>
          Effect.gen(function* () {
            yield* Effect.suspend(() => Deferred.succeed(gates.get(id)!, undefined)).pipe(
              Activity.make("a", Schema.Boolean, Schema.Never)
            )
            return yield* Effect.raceFirst(Signal.receive(x), Signal.receive(y))
          })
      )
      const results = yield* withEngine(
        journal,
        workflow,
        (engine) =>
          Effect.forEach(
            Array.from({ length: 30 }, (_, i) => String(i)),
            (id) =>
              Effect.gen(function* () {
                gates.set(id, yield* Deferred.make<void>())
                yield* engine.sendDiscard(new Job({ id, n: 0 }))
                yield* Deferred.await(gates.get(id)!)
                for (let k = 0; k < Number(id) % 8; k++) yield* Effect.yieldNow
                yield* engine.signal(`xy@${id}`, y, "why")
                return yield* engine.send(new Job({ id, n: 0 }))
              }),
            { concurrency: "unbounded" }
          ),
        { timerPollInterval: "1 minute" }
      )
      expect(new Set(results)).toEqual(new Set(["why"]))
    })
  )

  it.live("interrupting a parent suspended on a suspended child interrupts the child too", () =>
    Effect.gen(function* () {
      class Order extends Workflow.TaggedRequest<Order>()("Order", {
        payload: { id: Schema.String },
        success: Schema.String,
        failure: Schema.String
      }) {}
      class Ship extends Workflow.TaggedRequest<Ship>()("Ship", {
        payload: { orderId: Schema.String },
        success: Schema.String,
        failure: Schema.String
      }) {}
      const journal = yield* MemoryJournal.make
      const calls = new Calls()
      const shipping = Workflow.make(
        Ship,
        (r) => `ship@${r.orderId}`,
        ({ orderId }) =>
          Effect.gen(function* () {
            const label = yield* calls.activity("label", Schema.String, `L-${orderId}`)
            yield* Workflow.yieldExecutionWith("need an operator")
            return label
          }).pipe(
            Effect.onInterrupt(() => Effect.asVoid(calls.activity("void-label", Schema.String, "voided")))
          )
      )
      const order = Workflow.make(
        Order,
        (r) => `order@${r.id}`,
        ({ id }) =>
          Effect.andThen(
            calls.activity("pay", Schema.String, "paid"),
            Workflow.executeChild(shipping, new Ship({ orderId: id })).pipe(
              Effect.catchTag("ChildCancelledError", (e) => Effect.fail(e.message))
            )
          )
      )
      yield* withEngine(journal, Workflow.union(order, shipping), (engine) =>
        Effect.gen(function* () {
          yield* Effect.exit(engine.send(new Order({ id: "1" })))
          yield* awaitStatus(engine, "order@1", "suspended")
          yield* engine.interrupt("order@1")
        })
      )
      expect(yield* statusOf(journal, "order@1")).toEqual(Option.some("interrupted"))
      expect(yield* statusOf(journal, "ship@1")).toEqual(Option.some("interrupted"))
      expect(calls.count("void-label")).toBe(1)
    })
  )

  it.live(
    "a sleeping row that no longer decodes neither stops the timer for the others nor makes it spin (SQLite)",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const storage = yield* sqlite.storage
          const journal = yield* storage.open
          const { sql, prefix } = storage.raw!
          const workflow = Workflow.make(
            Job,
            (r) => `healthy@${r.id}`,
            () => Effect.as(Workflow.sleep("300 millis"), "woke")
          )
          yield* sql.unsafe(
            `INSERT INTO ${prefix}executions (execution_id, workflow, request, status, interrupt_requested, wake_at, created_at, updated_at)
           VALUES ('damaged', 'Job', '{}', 'sleeping', 'x', 1, 0, 0)`
          )
          // The damaged row is always due and never listed: the timer must not spin on it.
          let listings = 0
          const counted: typeof journal = {
            ...journal,
            listDue: (now, limit, shards) =>
              Effect.suspend(() => {
                listings++
                return journal.listDue(now, limit, shards)
              })
          }
          const result = yield* withEngine(
            counted,
            workflow,
            (engine) => engine.send(new Job({ id: "1", n: 0 })),
            {
              timerPollInterval: "200 millis"
            }
          )
          expect(result).toBe("woke")
          // A look at the start, one per poke (the park, the wake) and one per 200 ms: a handful. It
          // looked ~200 times in the 300 ms when a due row it could not wake sent it round at once.
          expect(listings).toBeLessThan(20)
        })
      )
  )
})
