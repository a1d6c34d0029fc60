/** The engine's hooks into one execution, used by `Activity` and `Workflow.yieldExecution`. */
import type { Effect } from "effect"
import type { ActivityDefinition } from "../Activity.ts"

export interface ExecutionRuntime {
  /** Runs (or replays) one activity step of this execution. */
  readonly runActivity: <A, E, R>(
    definition: ActivityDefinition<A, E>,
    body: Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E, R>
  /** Suspends the execution durably; never returns. */
  readonly yieldExecution: (message: string) => Effect.Effect<never>
}
