/**
 * The context of one running workflow execution, available to the workflow body and to the
 * activities it runs.
 *
 * `isGracefulShutdown` lets an activity that is being interrupted tell a graceful engine shutdown
 * (it will be resumed by the next engine, nothing is recorded) from other interruptions.
 *
 * @example
 * ```ts
 * const upload = Effect.never.pipe(
 *   Effect.onInterrupt(() =>
 *     Effect.flatMap(WorkflowContext.isGracefulShutdown, (graceful) =>
 *       graceful ? Effect.log("engine restarting, will resume") : Effect.log("cancelled")
 *     )
 *   ),
 *   Activity.make("upload", Schema.Void, Schema.Never)
 * )
 * ```
 */
import { Context, type Effect } from "effect"
import type { ExecutionRuntime } from "./internal/ExecutionRuntime.ts"

/** The running execution. */
export class WorkflowContext extends Context.Service<
  WorkflowContext,
  {
    readonly executionId: string
    /** The workflow's tag (its request's `_tag`). */
    readonly workflow: string
    /** True once the engine that runs this execution has begun a graceful shutdown. */
    readonly isGracefulShutdown: () => boolean
    /** The engine's side of the execution; not part of the public API. */
    readonly runtime: ExecutionRuntime
  }
>()("effect-cluster/workflow/WorkflowContext") {}

/** Whether the engine is shutting down gracefully (as opposed to the execution being interrupted). */
export const isGracefulShutdown: Effect.Effect<boolean, never, WorkflowContext> = WorkflowContext.useSync(
  (ctx) => ctx.isGracefulShutdown()
)

/** The id of the running execution. */
export const executionId: Effect.Effect<string, never, WorkflowContext> = WorkflowContext.useSync(
  (ctx) => ctx.executionId
)
