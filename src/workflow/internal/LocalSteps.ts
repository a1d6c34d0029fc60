/**
 * Local steps: values computed inside the workflow and recorded (`Workflow.now`, `Workflow.random`,
 * the deadline of `Workflow.sleep`), and `Workflow.version`'s recorded change numbers.
 */
import { Effect, Exit, Schema } from "effect"
import type { ActivityDefinition, Schema as ActivitySchema } from "../Activity.ts"
import { exitSchema } from "./codec.ts"
import type { ExecutionState } from "./ExecutionState.ts"
import { beginStep, recordOutcome, replayOutcome, withStep } from "./Steps.ts"

/**
 * A local step (`Workflow.now`, `Workflow.random`): replays its recorded value, or computes it and
 * queues it with the execution's pending outcomes. No attempt marker: nothing outside the
 * workflow happens, and the value is durable before any later side effect (the next write carries
 * it, and every attempt's body waits for that write).
 */
export const recordLocal = <A>(
  state: ExecutionState,
  id: string,
  schema: ActivitySchema<A>,
  compute: (persistenceId: string) => Effect.Effect<A>
): Effect.Effect<A> =>
  Effect.withFiber((fiber) => {
    if (state.stopping) return Effect.interrupt
    return withStep(state, fiber, id, undefined, (asked) => {
      const { stepKey, recorded } = asked
      const definition: ActivityDefinition<A, never> = {
        id,
        success: schema,
        failure: Schema.Never,
        retry: undefined
      }
      if (recorded?.outcome != null) return replayOutcome(state, definition, stepKey, recorded.outcome)
      const start = beginStep(state, asked, id, 1)
      if (Effect.isEffect(start)) return start
      return Effect.flatMap(compute(`${state.executionId}/${stepKey}`), (value) =>
        recordOutcome(state, start, exitSchema(schema, Schema.Never), Exit.succeed(value), "local step")
      )
    })
  })

/**
 * `Workflow.version(changeId, current)`: a local step recording `current` the first time an
 * execution reaches it, and replaying the recorded number. An execution whose history was written
 * by code without this check (the fiber is still replaying recorded steps and none is this check)
 * gets 0, and nothing is recorded or checked for it: its replay goes on as recorded.
 */
export const recordVersion = (
  state: ExecutionState,
  changeId: string,
  current: number
): Effect.Effect<number> =>
  Effect.withFiber((fiber) => {
    if (state.stopping) return Effect.interrupt
    const id = `effect-cluster/version/${changeId}`
    const recorded = state.replay.recordedStep(state.replay.peekStepKey(id))
    if (recorded === undefined && !state.caughtUp && state.replay.inRecordedHistory(fiber)) {
      return Effect.succeed(0)
    }
    return recordLocal(state, id, Schema.Number, () => Effect.succeed(current))
  })
