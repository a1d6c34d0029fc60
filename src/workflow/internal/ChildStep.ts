/** Child workflows as steps of their parent (`Workflow.executeChild`). */
import { Cause, Effect } from "effect"
import type { ActivityDefinition } from "../Activity.ts"
import type { Any } from "../Workflow.ts"
import { ChildCancelledError, ExecutionYielded } from "../WorkflowErrors.ts"
import type { ExecutionState } from "./ExecutionState.ts"
import type { StepEnvironment } from "./StepEnvironment.ts"
import { beginStep, counted, replayOutcome, withStep, writeAttempt } from "./Steps.ts"

/**
 * Runs a child workflow (see `Workflow.executeChild`) as a step of the parent: the step's marker is
 * written, the child is started (or, on replay, attached to: its id comes from its request), and
 * the child's final result is recorded as the step's outcome. Interrupting the parent interrupts
 * the child (and waits for its compensations); an engine shutdown leaves it running.
 */
export const runChild = (
  env: StepEnvironment,
  state: ExecutionState,
  workflow: Any,
  request: { readonly _tag: string }
): Effect.Effect<unknown, unknown> =>
  Effect.withFiber((fiber) => {
    if (state.stopping) return Effect.interrupt
    const childId = workflow.executionId(request)
    return withStep(
      state,
      fiber,
      `effect-cluster/child/${childId}`,
      { kind: "execution id", value: childId },
      (asked) => {
        const { stepKey, recorded } = asked
        const definition: ActivityDefinition<unknown, unknown> = {
          id: stepKey,
          success: workflow.request.success,
          failure: workflow.request.failure,
          retry: undefined
        }
        // The child's exit is recorded as it ended; an interrupted child is the parent's typed failure.
        const childOutcome = (outcome: string) =>
          Effect.catchCause(replayOutcome(state, definition, stepKey, outcome), (cause) =>
            Cause.hasInterruptsOnly(cause) && !state.stopping && !state.interruptRequested
              ? Effect.fail(
                  new ChildCancelledError({
                    executionId: state.executionId,
                    workflow: state.workflow,
                    childExecutionId: childId,
                    childWorkflow: workflow.tag
                  })
                )
              : Effect.failCause(cause)
          )
        if (recorded?.outcome != null) return childOutcome(recorded.outcome)
        if (state.interruptRequested && !state.interruptDelivered) {
          // The parent is being interrupted here (after a restart, or while it was suspended): the
          // child is interrupted first (its compensations run), then the parent's are delivered.
          return Effect.andThen(Effect.ignore(env.children.interrupt(childId)), () => {
            const begun = beginStep(state, asked, stepKey, 1)
            return Effect.isEffect(begun) ? begun : Effect.andThen(state.deliverInterrupt(), Effect.never)
          })
        }
        const start = beginStep(state, asked, stepKey, (recorded?.attempt ?? 0) + 1)
        if (Effect.isEffect(start)) return start
        const awaitChild = Effect.gen(function* () {
          yield* writeAttempt(env, state, start)
          yield* Effect.orDie(env.children.start(workflow, request))
          const row = yield* Effect.orDie(env.children.settled(childId))
          if (row.status === "suspended" || row.result === null) {
            return yield* state.suspend(
              new ExecutionYielded({
                executionId: state.executionId,
                workflow: state.workflow,
                detail: `its child execution ${childId} is suspended: resume the child first`
              })
            )
          }
          state.addPending({ ...start, outcome: row.result, completedAfter: state.replay.lastSeq() })
          return yield* childOutcome(row.result)
        })
        return counted(
          state,
          awaitChild.pipe(
            Effect.onInterrupt(() =>
              // WorkflowEngine.interrupt of the parent: the child is cancelled too. Not on a shutdown.
              state.interruptRequested ? Effect.ignore(env.children.interrupt(childId)) : Effect.void
            )
          )
        )
      }
    )
  })
