/**
 * The `Order` workflow of the multi-process tests and of `npm run verify`: two activities
 * (`reserve`, `charge`) that each take a while and record every attempt in an external ledger (a
 * file shared by every pod, one JSON line per event, appended with O_APPEND):
 * `{"k":"start"|"end"|"stop", "e": executionId, "s": activity, "a": attempt, "p": podId,
 *   "sh": shard, "ep": epoch, "t": epoch ms}`.
 */
import { appendFileSync } from "node:fs"
import { Duration, Effect, Schema } from "effect"
import { Activity, ActivityContext, Workflow } from "effect-cluster"

export class Order extends Workflow.TaggedRequest<Order>()("Order", {
  payload: { id: Schema.String },
  success: Schema.String,
  failure: Schema.Never
}) {}

/** Where a pod's `Order` runs record their attempts, and how long they take. */
export interface OrderOptions {
  readonly ledger: string
  /** The id of the pod (it may be known only once the engine runs). */
  readonly podId: () => string
  /** How long the activities of an execution take. */
  readonly durationOf: (executionId: string) => number
  /** How an attempt waits that long (default `Effect.sleep`; a test may freeze the pod in it). */
  readonly sleep?: (
    millis: number,
    context: ActivityContext.ActivityContext["Service"]
  ) => Effect.Effect<void>
}

/** The `Order` workflow of a pod. */
export const orderWorkflow = (options: OrderOptions) => {
  const record = (kind: "start" | "end" | "stop", context: ActivityContext.ActivityContext["Service"]) =>
    appendFileSync(
      options.ledger,
      `${JSON.stringify({
        k: kind,
        e: context.persistenceId.split("/")[0],
        s: context.activityId,
        a: context.attempt,
        p: options.podId(),
        sh: context.fence?.shard ?? null,
        ep: context.fence?.epoch ?? null,
        t: Date.now()
      })}\n`
    )

  const step = (id: string) =>
    Effect.gen(function* () {
      const context = yield* ActivityContext.ActivityContext
      record("start", context)
      const millis = options.durationOf(context.persistenceId.split("/")[0]!)
      yield* (options.sleep?.(millis, context) ?? Effect.sleep(Duration.millis(millis))).pipe(
        Effect.onInterrupt(() => Effect.sync(() => record("stop", context)))
      )
      record("end", context)
      return id
    }).pipe(Activity.make(id, Schema.String, Schema.Never))

  return Workflow.make(
    Order,
    (request) => request.id,
    (request) =>
      Effect.gen(function* () {
        const reserved = yield* step("reserve")
        const charged = yield* step("charge")
        return `${request.id}:${reserved}+${charged}`
      })
  )
}
