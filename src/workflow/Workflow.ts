/**
 * Workflows: deterministic coordinators of activities with durable execution.
 *
 * A workflow is started by a request (see `TaggedRequest`), identified by a function from the
 * request to a globally unique execution id, and implemented by an ordinary effect that calls
 * activities. The body is re-run (replayed) after every restart, with recorded activity outcomes
 * returned instead of re-running the activities, so it must be deterministic: I/O belongs in an
 * activity, time and randomness come from `Workflow.now` and `Workflow.random` (recorded). All Effect semantics work
 * durably in the body — `catchTag` for compensation, `Effect.retry` around a group of activities,
 * `Effect.forEach` with concurrency, `Effect.race` — because they only combine activity outcomes.
 *
 * @example
 * ```ts
 * const processPayment = Workflow.make(
 *   ProcessPaymentRequest,
 *   (request) => `ProcessPayment@${request.orderId}`,
 *   ({ cardNumber, orderId }) =>
 *     Effect.gen(function* () {
 *       const total = yield* getTotalAmount(orderId)
 *       yield* chargeCreditCard(cardNumber, total)
 *       return true
 *     })
 * )
 * ```
 */
import { Clock, Duration, Effect, Schema } from "effect"
import { seededRandom } from "./internal/seededRandom.ts"
import { WorkflowContext } from "./WorkflowContext.ts"
import type { ChildCancelledError } from "./WorkflowErrors.ts"
import type { AnyRequestClass, FailureOf, RequestOf, SuccessOf } from "./WorkflowRequest.ts"

export { TaggedRequest } from "./WorkflowRequest.ts"

/** A workflow definition for the request class `C`, whose body needs services `R`. */
export interface Workflow<C extends AnyRequestClass, R> {
  readonly tag: C["tag"]
  readonly request: C
  readonly executionId: (request: RequestOf<C>) => string
  readonly body: (request: RequestOf<C>) => Effect.Effect<SuccessOf<C>, FailureOf<C>, R>
}

/** Any workflow. */
export type Any = Workflow<any, any>

/** Defines a workflow. */
export const make = <C extends AnyRequestClass, R>(
  request: C,
  executionId: (request: RequestOf<C>) => string,
  body: (request: RequestOf<C>) => Effect.Effect<SuccessOf<C>, FailureOf<C>, R>
): Workflow<C, R> => ({ tag: request.tag, request, executionId, body })

/** A set of workflows an engine runs, by request tag. */
export interface WorkflowUnion<W extends Any> {
  readonly workflows: ReadonlyMap<string, W>
}

/** The workflows of a union (or a single workflow), by request tag. */
export const byTag = <W extends Any>(workflows: WorkflowUnion<W> | W): ReadonlyMap<string, W> =>
  "workflows" in workflows ? workflows.workflows : new Map([[workflows.tag, workflows]])

/** Combines workflows for one engine. Tags must be distinct. */
export const union = <const Ws extends ReadonlyArray<Any>>(...workflows: Ws): WorkflowUnion<Ws[number]> => {
  const map = new Map<string, Ws[number]>()
  for (const workflow of workflows) {
    if (map.has(workflow.tag))
      throw new Error(`Workflow.union: two workflows handle the tag "${workflow.tag}"`)
    map.set(workflow.tag, workflow)
  }
  return { workflows: map }
}

/** The services a workflow body needs besides the `WorkflowContext` the engine provides. */
export type Requirements<W extends Any> =
  W extends Workflow<any, infer R> ? Exclude<R, WorkflowContext> : never

/** The requests an engine for `W` accepts. */
export type Requests<W extends Any> = W extends Workflow<infer C, any> ? RequestOf<C> : never

/** The success type of the workflow of `W` that handles `Tag`. */
export type SuccessFor<W extends Any, Tag> =
  W extends Workflow<infer C, any> ? (C["tag"] extends Tag ? SuccessOf<C> : never) : never

/** The failure type of the workflow of `W` that handles `Tag`. */
export type FailureFor<W extends Any, Tag> =
  W extends Workflow<infer C, any> ? (C["tag"] extends Tag ? FailureOf<C> : never) : never

/**
 * Suspends the running execution durably: it stays suspended across restarts until
 * `WorkflowEngine.resume` is called. Usable in the workflow body and inside an activity (the
 * activity records nothing and re-runs, with the next attempt number, after the resume).
 *
 * @example
 * ```ts
 * Effect.catchCause(() =>
 *   Effect.logError("OrderAPI is down").pipe(Effect.andThen(Workflow.yieldExecution))
 * )
 * ```
 */
export const yieldExecution: Effect.Effect<never, never, WorkflowContext> = WorkflowContext.use((ctx) =>
  ctx.runtime.yieldExecution("yielded by the workflow")
)

/** Like `yieldExecution`, with a message stored with the suspension (shown by `status`). */
export const yieldExecutionWith = (message: string): Effect.Effect<never, never, WorkflowContext> =>
  WorkflowContext.use((ctx) => ctx.runtime.yieldExecution(message))

/**
 * The current time in milliseconds, read from the `Clock` once and recorded: a replay returns
 * the time of the first run. Use it instead of `Date.now()` or `Clock` in a workflow body.
 *
 * @example
 * ```ts
 * const startedAt = yield* Workflow.now
 * ```
 */
export const now: Effect.Effect<number, never, WorkflowContext> = WorkflowContext.use((ctx) =>
  ctx.runtime.recordLocal("effect-cluster/now", Schema.Number, () => Clock.currentTimeMillis)
)

/**
 * Versioning a workflow that has executions running: returns the version of the change
 * `changeId` that this execution follows. An execution that reaches the call for the first time
 * records `current` and gets it (new executions, and running ones whose replay is past the point
 * where the call was added); a replay returns the recorded number; an execution whose recorded
 * history went through this point before the call existed gets 0, without recording anything, so
 * it keeps replaying the old path. Branch on it, and keep the old branch until no execution of
 * the old version is running (check with `WorkflowTest.replay` on their exported journals).
 *
 * Call it in the workflow's own fiber (not as the first step of a concurrent branch).
 *
 * @example
 * ```ts
 * // v1 sent the email, then shipped. v2 ships first.
 * if ((yield* Workflow.version("ship-before-email", 1)) >= 1) {
 *   yield* ship(orderId)
 *   yield* sendEmail(orderId)
 * } else {
 *   yield* sendEmail(orderId)
 *   yield* ship(orderId)
 * }
 * ```
 */
export const version = (changeId: string, current: number): Effect.Effect<number, never, WorkflowContext> =>
  WorkflowContext.use((ctx) => ctx.runtime.version(changeId, current))

/**
 * A random number in [0, 1), seeded by the execution id and the step (the n-th call in the
 * execution gets the n-th number of that execution), and recorded: a replay returns the same
 * numbers. Use it instead of `Math.random()` in a workflow body.
 *
 * @example
 * ```ts
 * const jitterMillis = Math.floor((yield* Workflow.random) * 1000)
 * ```
 */
export const random: Effect.Effect<number, never, WorkflowContext> = WorkflowContext.use((ctx) =>
  ctx.runtime.recordLocal("effect-cluster/random", Schema.Number, (persistenceId) =>
    Effect.sync(() => seededRandom(persistenceId))
  )
)

/** A deterministic integer in [min, max], bounds included (see `random`). */
export const randomInt = (min: number, max: number): Effect.Effect<number, never, WorkflowContext> => {
  const low = Math.ceil(min)
  const high = Math.floor(max)
  return Effect.map(random, (r) => low + Math.floor(r * (high - low + 1)))
}

/**
 * Sleeps durably: the deadline (now + `duration`) is recorded, the execution is parked in the
 * journal (status `sleeping`, no fiber, no memory beyond its row) and the engine's timer wakes it
 * at the deadline — the original deadline, even if the process restarted in between. When
 * activities of the same execution are running in parallel branches (a timeout raced against an
 * activity), it waits in memory instead, so they are not interrupted.
 *
 * @example
 * ```ts
 * yield* sendReminder(orderId)
 * yield* Workflow.sleep("3 days")
 * yield* cancelIfUnpaid(orderId)
 * ```
 */
export const sleep = (duration: Duration.Input): Effect.Effect<void, never, WorkflowContext> =>
  WorkflowContext.use((ctx) => {
    const millis = Duration.toMillis(Duration.fromInputUnsafe(duration))
    return Effect.flatMap(
      ctx.runtime.recordLocal("effect-cluster/sleep", Schema.Number, () =>
        Effect.map(Clock.currentTimeMillis, (now) => now + millis)
      ),
      (deadline) => ctx.runtime.sleepUntil(deadline)
    )
  })

/**
 * Runs a child workflow and waits for its result, durably: the child is an execution of its own
 * (id from `child`'s `executionId(request)`, so a replay attaches to the same child), its result is
 * recorded in the parent's journal, and its typed failure is the parent's failure. Interrupting the
 * parent (`WorkflowEngine.interrupt`) interrupts the child and waits for its compensations. A child
 * interrupted on its own (`engine.interrupt` of the child) fails the parent with the typed
 * `ChildCancelledError`: catch it (compensate, carry on) or list it in the parent's failure schema.
 * The child's workflow must be registered in the same engine (`Workflow.union`).
 *
 * @example
 * ```ts
 * const receipt = yield* Workflow.executeChild(shipping, new ShipOrder({ orderId }))
 * ```
 */
export const executeChild = <C extends AnyRequestClass, R>(
  child: Workflow<C, R>,
  request: RequestOf<C>
): Effect.Effect<SuccessOf<C>, FailureOf<C> | ChildCancelledError, WorkflowContext> =>
  WorkflowContext.use(
    (ctx) =>
      // The child's outcome is decoded with `child`'s schemas: its types are the child's.
      ctx.runtime.runChild(child, request as { readonly _tag: string }) as Effect.Effect<
        SuccessOf<C>,
        FailureOf<C> | ChildCancelledError
      >
  )
