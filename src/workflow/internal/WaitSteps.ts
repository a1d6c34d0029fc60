/**
 * Waits at the frontier of an execution: durable sleeps and signal waits. Either parks the
 * execution (no fiber, its row says when to wake and which signals it awaits) or, while activity
 * attempts of the execution are in progress beside it, waits in memory.
 */
import { Effect, Exit, Option, Result, Schema } from "effect"
import type { ActivityDefinition, Schema as ActivitySchema } from "../Activity.ts"
import { JournalDecodeError, type JournalError } from "../WorkflowErrors.ts"
import { decodeJsonResult, exitSchema } from "./codec.ts"
import type { ExecutionState, Wait } from "./ExecutionState.ts"
import type { StepEnvironment } from "./StepEnvironment.ts"
import { beginStep, recordOutcome, replayOutcome, withStep, writeAttempt } from "./Steps.ts"

/**
 * Waits until `deadline` (epoch ms, recorded by `Workflow.sleep`). A deadline in the future parks
 * the execution (status `sleeping`, no fiber) unless activity attempts of the execution are
 * running: then it sleeps in memory, so that a timeout raced against an activity does not stop it.
 */
export const sleepUntil = (
  env: StepEnvironment,
  state: ExecutionState,
  deadline: number
): Effect.Effect<void> =>
  Effect.suspend(() => {
    if (state.stopping) return Effect.interrupt
    const remaining = deadline - env.now()
    // A sleep that is over is history being replayed: go on to the steps after it.
    if (remaining <= 0) return Effect.void
    return waiting(state, { wakeAt: deadline, signal: undefined }, () =>
      // In memory: the recorded deadline is written first, so a crash does not restart the sleep.
      Effect.andThen(writeAttempt(env, state, undefined), Effect.sleep(Math.max(0, deadline - env.now())))
    )
  })

/**
 * A wait that has reached the frontier of the execution (sleeping, or waiting for a signal): it is
 * registered in `state.waits` (so that a park includes it), a pending interruption is delivered
 * here, and after one `yieldNow` (sibling fibers of a race or forEach reach their own activity or
 * wait first) the execution parks — or, if activity steps are in progress beside it, `inMemory`
 * waits without parking. The registration is dropped when the wait ends, unless the run stops.
 */
const waiting = (
  state: ExecutionState,
  wait: Wait,
  inMemory: () => Effect.Effect<void>
): Effect.Effect<void> =>
  Effect.suspend(() => {
    state.caughtUp = true
    if (state.replayOnly) return state.atFrontier()
    const added = !state.waits.has(wait)
    state.waits.add(wait)
    const interrupted = (): Effect.Effect<never> | undefined =>
      state.interruptRequested
        ? state.interruptDelivered
          ? Effect.never // delivered: the interruption is on its way to this fiber
          : Effect.andThen(state.deliverInterrupt(), Effect.never)
        : undefined
    const decide = Effect.andThen(Effect.yieldNow, () => {
      const interruption = interrupted()
      if (interruption !== undefined) return interruption
      if (state.activeAttempts > 0) return inMemory()
      return state.halt({ _tag: "Sleep" })
    })
    return (interrupted() ?? decide).pipe(
      Effect.ensuring(
        Effect.sync(() => {
          if (added && !state.stopping) state.waits.delete(wait)
        })
      )
    )
  })

/** How a signal wait ended, as recorded. */
const signalOutcome = <A>(schema: ActivitySchema<A>) =>
  Schema.Union([
    Schema.Struct({ _tag: Schema.Literal("Received"), value: schema }),
    Schema.Struct({ _tag: Schema.Literal("TimedOut") })
  ])

type SignalOutcome<A> = { readonly _tag: "Received"; readonly value: A } | { readonly _tag: "TimedOut" }

const toOption = <A>(outcome: SignalOutcome<A>): Option.Option<A> =>
  outcome._tag === "Received" ? Option.some(outcome.value) : Option.none()

/** How often a signal wait that cannot park (activities running beside it) looks again. */
const SIGNAL_POLL_MILLIS = 100

/**
 * Waits for the signal `name` (see `Signal.receive`): replays how a recorded wait ended, or looks
 * for the signal in the journal; until it arrives (or `deadline` passes) the execution is parked
 * with no fiber, and the engine wakes it when the signal is sent. The result is recorded.
 */
export const awaitSignal = <A>(
  env: StepEnvironment,
  state: ExecutionState,
  name: string,
  schema: ActivitySchema<A>,
  deadline: number | undefined
): Effect.Effect<Option.Option<A>> =>
  Effect.withFiber((fiber) => {
    if (state.stopping) return Effect.interrupt
    return withStep(
      state,
      fiber,
      `effect-cluster/signal/${name}`,
      { kind: "signal name", value: name },
      (asked) => {
        const { stepKey, recorded } = asked
        const outcomeSchema = signalOutcome(schema)
        const definition: ActivityDefinition<SignalOutcome<A>, never> = {
          id: stepKey,
          success: outcomeSchema as unknown as ActivitySchema<SignalOutcome<A>>,
          failure: Schema.Never,
          retry: undefined
        }
        if (recorded?.outcome != null) {
          return Effect.map(replayOutcome(state, definition, stepKey, recorded.outcome), toOption)
        }
        const start = beginStep(state, asked, stepKey, 1)
        if (Effect.isEffect(start)) return start
        // Registered before the first look (I/O), so a sibling that parks meanwhile includes it.
        const wait: Wait = { wakeAt: deadline ?? null, signal: name }
        state.waits.add(wait)
        const record = (outcome: SignalOutcome<A>): Effect.Effect<Option.Option<A>> =>
          Effect.map(
            recordOutcome(
              state,
              start,
              exitSchema(outcomeSchema, Schema.Never),
              Exit.succeed(outcome),
              "signal"
            ),
            toOption
          )
        const look: Effect.Effect<Option.Option<A>> = Effect.suspend(() => {
          if (state.interruptRequested && !state.interruptDelivered) {
            return Effect.andThen(state.deliverInterrupt(), Effect.never)
          }
          return env.journal.getSignal(state.executionId, name).pipe(
            Effect.catch((error: JournalError) => state.halt({ _tag: "JournalFailed", error })),
            Effect.flatMap((payload) => {
              if (Option.isSome(payload)) {
                const decoded = decodeJsonResult(schema, payload.value)
                if (Result.isFailure(decoded)) {
                  return state.suspend(
                    new JournalDecodeError({
                      executionId: state.executionId,
                      workflow: state.workflow,
                      record: "activity",
                      activity: stepKey,
                      path: decoded.failure.path,
                      detail: `(signal "${name}") ${decoded.failure.message}`
                    })
                  )
                }
                return record({ _tag: "Received", value: decoded.success })
              }
              if (deadline !== undefined && env.now() >= deadline) return record({ _tag: "TimedOut" })
              // With activities running beside it, the wait keeps its fiber and looks again shortly.
              return Effect.andThen(
                waiting(state, wait, () =>
                  Effect.andThen(
                    writeAttempt(env, state, undefined),
                    Effect.sleep(
                      Math.min(
                        SIGNAL_POLL_MILLIS,
                        Math.max(1, (deadline ?? Number.POSITIVE_INFINITY) - env.now())
                      )
                    )
                  )
                ),
                look
              )
            })
          )
        })
        return look.pipe(
          Effect.ensuring(
            Effect.sync(() => {
              if (!state.stopping) state.waits.delete(wait)
            })
          )
        )
      }
    )
  })
