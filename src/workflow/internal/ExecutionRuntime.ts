/** The engine's hooks into one execution, used by `Activity` and `Workflow.yieldExecution`. */
import type { Effect, Option } from "effect"
import type { ActivityDefinition, Schema } from "../Activity.ts"
import type { Any } from "../Workflow.ts"

export interface ExecutionRuntime {
  /** Runs (or replays) one activity step of this execution. */
  readonly runActivity: <A, E, R>(
    definition: ActivityDefinition<A, E>,
    body: Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E, R>
  /**
   * Runs (or replays) a local step: a value computed in the workflow itself (the time, a random
   * number), recorded with the execution's next write instead of an attempt of its own. `compute`
   * gets the step's persistence id (`executionId/stepKey`).
   */
  readonly recordLocal: <A>(
    id: string,
    schema: Schema<A>,
    compute: (persistenceId: string) => Effect.Effect<A>
  ) => Effect.Effect<A>
  /** The recorded version of a change (see `Workflow.version`); 0 for histories from before it. */
  readonly version: (changeId: string, current: number) => Effect.Effect<number>
  /** Waits until the recorded `deadline` (epoch ms), parking the execution if it can. */
  readonly sleepUntil: (deadline: number) => Effect.Effect<void>
  /** Waits for the signal `name` until `deadline` (epoch ms, recorded), if any; none: timed out. */
  readonly awaitSignal: <A>(
    name: string,
    schema: Schema<A>,
    deadline: number | undefined
  ) => Effect.Effect<Option.Option<A>>
  /** Runs a child workflow of this execution and returns its result (see `Workflow.executeChild`). */
  readonly runChild: (workflow: Any, request: { readonly _tag: string }) => Effect.Effect<unknown, unknown>
  /** Suspends the execution durably; never returns. */
  readonly yieldExecution: (message: string) => Effect.Effect<never>
}
