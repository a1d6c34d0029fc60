/** Small workflows shared by the engine tests. */
import { Effect, Schema } from "effect"
import { Activity, Workflow } from "../../src/index.ts"

/** Counts how many times each activity body ran (attempts), by activity id. */
export class Calls {
  readonly counts = new Map<string, number>()
  readonly persistenceIds = new Map<string, Array<string>>()
  readonly attempts = new Map<string, Array<number>>()
  hit(id: string) {
    this.counts.set(id, (this.counts.get(id) ?? 0) + 1)
  }
  count(id: string) {
    return this.counts.get(id) ?? 0
  }
  /** An activity that records its call and returns `value`. */
  activity<S extends Activity.Schema<any>>(id: string, schema: S, value: S["Type"]) {
    return this.tracked(id, Effect.succeed(value)).pipe(Activity.make(id, schema, Schema.Never))
  }
  /** Wraps an activity body so that its calls, persistence ids and attempts are recorded. */
  tracked<A, E, R>(id: string, body: Effect.Effect<A, E, R>) {
    return Effect.gen({ self: this }, function* () {
      this.hit(id)
      const pid = yield* Activity.persistenceId
      const attempt = yield* Activity.attempt
      this.persistenceIds.set(id, [...(this.persistenceIds.get(id) ?? []), pid])
      this.attempts.set(id, [...(this.attempts.get(id) ?? []), attempt])
      return yield* body
    })
  }
}

export class OutOfStockError extends Schema.TaggedError<OutOfStockError>()("OutOfStockError", {
  sku: Schema.String
}) {}

export class ThreeSteps extends Workflow.TaggedRequest<ThreeSteps>()("ThreeSteps", {
  payload: { id: Schema.String },
  success: Schema.Number,
  failure: OutOfStockError
}) {}

/** a → b → c, returns a + b + c. */
export const threeSteps = (calls: Calls) =>
  Workflow.make(
    ThreeSteps,
    (request) => `three@${request.id}`,
    () =>
      Effect.gen(function* () {
        const a = yield* calls.activity("a", Schema.Number, 1)
        const b = yield* calls.activity("b", Schema.Number, 2)
        const c = yield* calls.activity("c", Schema.Number, 3)
        return a + b + c
      })
  )
