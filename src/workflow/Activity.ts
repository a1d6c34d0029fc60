/**
 * Activities: the side-effecting steps of a workflow.
 *
 * An activity is an effect with an id (unique inside its workflow execution) and two schemas, so
 * that its outcome can be recorded in the journal. Inside a workflow, an activity whose outcome is
 * recorded is never run again: replay returns the recorded value or failure (I1). An activity that
 * has not recorded an outcome runs until it does, across retries and process crashes (I2), so it
 * must be idempotent: use `Activity.persistenceId` as the idempotency key of external calls.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Activity } from "effect-cluster"
 *
 * const chargeCreditCard = (cardNumber: string, amount: number) =>
 *   Activity.persistenceId.pipe(
 *     Effect.flatMap((key) => paymentGateway.charge(key, cardNumber, amount)),
 *     Activity.make("charge-credit-card", Schema.Void, PaymentError)
 *   )
 * ```
 */
import { type Duration, Effect, Schema as EffectSchema, Option } from "effect"
import { ActivityContext } from "./ActivityContext.ts"
import type { AnyCodec } from "./internal/codec.ts"
import type { RetryPolicy } from "./RetryPolicy.ts"
import { WorkflowContext } from "./WorkflowContext.ts"

/** Options of `Activity.make`. */
export interface ActivityOptions<E> {
  /** Retry policy of this activity; missing fields come from the engine's policy. */
  readonly retry?: RetryPolicy<E> | undefined
  /** An attempt that runs longer fails with `ActivityTimeoutError` and is retried per policy. */
  readonly startToCloseTimeout?: Duration.Input | undefined
  /**
   * An attempt that does not call `Activity.heartbeat` for this long fails with
   * `ActivityTimeoutError` and is retried per policy (a hung upload, a lost worker).
   */
  readonly heartbeatTimeout?: Duration.Input | undefined
}

/** Everything the engine needs to know about an activity besides its body. */
export interface ActivityDefinition<A, E> {
  readonly id: string
  readonly success: Schema<A>
  readonly failure: Schema<E>
  readonly retry: RetryPolicy<E> | undefined
  readonly startToCloseTimeout?: Duration.Input | undefined
  readonly heartbeatTimeout?: Duration.Input | undefined
}

/** A journal-able schema of `A` (no services needed to encode or decode). */
export type Schema<A> = AnyCodec & { readonly Type: A }

/**
 * Turns an effect into an activity of the current workflow. Data-last, so it works both as
 * `Activity.make(id, success, failure)(effect)` and `pipe(effect, Activity.make(id, success, failure))`.
 *
 * The body can read `Activity.persistenceId` and `Activity.attempt`; the result requires the
 * `WorkflowContext` that the engine provides to workflow bodies.
 */
export const make =
  <S extends AnyCodec, F extends AnyCodec>(
    id: string,
    success: S,
    failure: F,
    options?: ActivityOptions<F["Type"]>
  ) =>
  <R>(
    effect: Effect.Effect<S["Type"], F["Type"], R>
  ): Effect.Effect<S["Type"], F["Type"], Exclude<R, ActivityContext> | WorkflowContext> => {
    const definition: ActivityDefinition<S["Type"], F["Type"]> = {
      id,
      success,
      failure,
      retry: options?.retry,
      startToCloseTimeout: options?.startToCloseTimeout,
      heartbeatTimeout: options?.heartbeatTimeout
    }
    return WorkflowContext.use((ctx) =>
      // The runtime provides ActivityContext to the body, so it no longer requires it.
      ctx.runtime.runActivity(
        definition,
        effect as Effect.Effect<S["Type"], F["Type"], Exclude<R, ActivityContext>>
      )
    )
  }

/**
 * The idempotency key of the running activity step: `executionId/activityId` (with `#n` for the
 * n-th repetition of the same activity id). The same on every attempt and every replay.
 */
export const persistenceId: Effect.Effect<string, never, ActivityContext> = ActivityContext.useSync(
  (ctx) => ctx.persistenceId
)

/** The current attempt number: 1, 2, ... (counted across process restarts). */
export const attempt: Effect.Effect<number, never, ActivityContext> = ActivityContext.useSync(
  (ctx) => ctx.attempt
)

/**
 * Reports the progress of the running attempt: resets its `heartbeatTimeout`, and is stored (as
 * JSON) so that the next attempt of the step can resume from it with `Activity.lastHeartbeat`.
 *
 * @example
 * ```ts
 * yield* Activity.heartbeat({ uploadedBytes })
 * ```
 */
export const heartbeat = (details: unknown): Effect.Effect<void, never, ActivityContext> =>
  ActivityContext.use((ctx) => ctx.heartbeat(JSON.stringify(details ?? null)))

/**
 * The last progress reported by an earlier attempt of this step (this run or a run before a
 * crash), decoded with `schema`; none if there is none or it no longer decodes.
 *
 * @example
 * ```ts
 * const from = Option.match(yield* Activity.lastHeartbeat(Progress), {
 *   onNone: () => 0,
 *   onSome: (p) => p.uploadedBytes
 * })
 * ```
 */
export const lastHeartbeat = <S extends AnyCodec>(
  schema: S
): Effect.Effect<Option.Option<S["Type"]>, never, ActivityContext> =>
  ActivityContext.use((ctx) => {
    if (ctx.lastHeartbeat === null) return Effect.succeed(Option.none())
    return EffectSchema.decodeUnknownEffect(EffectSchema.fromJsonString(schema))(ctx.lastHeartbeat).pipe(
      Effect.map(Option.some),
      Effect.catch((error) =>
        Effect.as(
          Effect.logWarning(`the last heartbeat of ${ctx.persistenceId} no longer decodes: ${error.message}`),
          Option.none()
        )
      )
    )
  })
