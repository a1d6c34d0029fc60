/** Saga.run / Saga.step: compensations of completed steps run in reverse order on failure or interrupt. */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Option, Schema } from "effect"
import { Activity, MemoryJournal, Saga, Workflow } from "../../src/index.ts"
import { awaitStatus, withEngine } from "./fixtures.ts"

class Trip extends Workflow.TaggedRequest<Trip>()("Trip", {
  payload: { id: Schema.String, card: Schema.String },
  success: Schema.String,
  failure: Schema.String
}) {}

/** Records the side effects of the trip's activities, in order. */
const makeTrip = (options: {
  readonly blockCharge?: Deferred.Deferred<void>
  readonly failFlightCancel?: boolean
}) => {
  const log: Array<string> = []
  const act = <A>(id: string, value: A, schema: Schema.Codec<A, any, never, never>, fail?: string) =>
    Effect.suspend(() => {
      log.push(id)
      return fail === undefined ? Effect.succeed(value) : Effect.fail(fail)
    }).pipe(Activity.make(id, schema, Schema.String, { retry: { maxAttempts: 1 } }))
  const workflow = Workflow.make(
    Trip,
    (r) => `trip@${r.id}`,
    ({ card }) =>
      Saga.run(
        Effect.gen(function* () {
          const hotel = yield* Saga.step(act("reserve-hotel", "H1", Schema.String), (h) =>
            act(`cancel-hotel ${h}`, undefined, Schema.Void)
          )
          const flight = yield* Saga.step(act("reserve-flight", "F1", Schema.String), (f) =>
            act(
              `cancel-flight ${f}`,
              undefined,
              Schema.Void,
              options.failFlightCancel ? "airline API down" : undefined
            )
          )
          if (options.blockCharge !== undefined) {
            const gate = options.blockCharge
            yield* Deferred.succeed(gate, undefined).pipe(
              Effect.andThen(Effect.never),
              Activity.make("charge-blocked", Schema.Void, Schema.Never)
            )
          }
          yield* act("charge", undefined, Schema.Void, card === "declined" ? "card declined" : undefined)
          return `${hotel}+${flight}`
        })
      )
  )
  return { workflow, log }
}

describe("Saga", () => {
  it.live("success: no compensation runs", () =>
    Effect.gen(function* () {
      const journal = yield* MemoryJournal.make
      const { workflow, log } = makeTrip({})
      const result = yield* withEngine(journal, workflow, (e) => e.send(new Trip({ id: "1", card: "ok" })))
      expect(result).toBe("H1+F1")
      expect(log).toEqual(["reserve-hotel", "reserve-flight", "charge"])
    })
  )

  it.live(
    "a failure compensates the completed steps in reverse order, then fails with the original error",
    () =>
      Effect.gen(function* () {
        const journal = yield* MemoryJournal.make
        const { workflow, log } = makeTrip({})
        const exit = yield* withEngine(journal, workflow, (e) =>
          Effect.exit(e.send(new Trip({ id: "1", card: "declined" })))
        )
        expect(exit).toEqual(Exit.fail("card declined"))
        expect(log).toEqual([
          "reserve-hotel",
          "reserve-flight",
          "charge",
          "cancel-flight F1",
          "cancel-hotel H1"
        ])
        // Replayed: nothing runs again, the same failure comes back.
        const again = yield* withEngine(journal, workflow, (e) =>
          Effect.exit(e.send(new Trip({ id: "1", card: "declined" })))
        )
        expect(again).toEqual(exit)
        expect(log).toHaveLength(5)
      })
  )

  it.live("an interrupted execution compensates too", () =>
    Effect.gen(function* () {
      const journal = yield* MemoryJournal.make
      const blockCharge = yield* Deferred.make<void>()
      const { workflow, log } = makeTrip({ blockCharge })
      yield* withEngine(journal, workflow, (e) =>
        Effect.gen(function* () {
          yield* e.sendDiscard(new Trip({ id: "1", card: "ok" }))
          yield* Deferred.await(blockCharge)
          yield* e.interrupt("trip@1")
        })
      )
      expect(Option.map(yield* journal.get("trip@1"), (row) => row.status)).toEqual(
        Option.some("interrupted")
      )
      expect(log).toEqual(["reserve-hotel", "reserve-flight", "cancel-flight F1", "cancel-hotel H1"])
    })
  )

  it.live("a compensation that fails is logged and the others still run", () =>
    Effect.gen(function* () {
      const journal = yield* MemoryJournal.make
      const { workflow, log } = makeTrip({ failFlightCancel: true })
      const exit = yield* withEngine(journal, workflow, (e) =>
        Effect.exit(e.send(new Trip({ id: "1", card: "declined" })))
      )
      expect(exit).toEqual(Exit.fail("card declined"))
      expect(log).toEqual([
        "reserve-hotel",
        "reserve-flight",
        "charge",
        "cancel-flight F1",
        "cancel-hotel H1"
      ])
      yield* withEngine(journal, workflow, (e) => awaitStatus(e, "trip@1", "failed"))
    })
  )
})
