/**
 * Runs one activity step of an execution: replays its recorded outcome (I1), or runs attempts
 * until an outcome is recorded (I2), checking on the way that replay follows the journal (I7) and
 * that outcomes round-trip through their schemas (I6).
 *
 * Write protocol: before an attempt's body runs, one journal write stores its attempt marker
 * together with every outcome this execution delivered since its last write, and the attempt waits
 * until every earlier write that carried outcomes has committed. So an outcome is on disk before
 * anything that could depend on it has a side effect, and a sequential workflow pays one durable
 * commit per activity.
 */
import { Cause, Deferred, Duration, Effect, Exit, Fiber, Option, Result, Schema } from "effect"
import * as Instrument from "../../observability/internal/instrument.ts"
import type { ActivityDefinition, Schema as ActivitySchema } from "../Activity.ts"
import { ActivityContext } from "../ActivityContext.ts"
import type { AttemptStart, ExecutionRecord, Fence, StepRecord } from "../DurableExecutionJournal.ts"
import { delayAfter, type ResolvedRetryPolicy, resolve } from "../RetryPolicy.ts"
import type { Any } from "../Workflow.ts"
import {
  ActivityResultError,
  ActivityTimeoutError,
  ChildCancelledError,
  ExecutionYielded,
  type InvalidIdentifierError,
  JournalDecodeError,
  type JournalError,
  NonDeterminismError
} from "../WorkflowErrors.ts"
import { decodeJsonResult, encodeJsonRoundTrip, exitSchema, withoutExitEnvelope } from "./codec.ts"
import type { ExecutionState, Wait } from "./ExecutionState.ts"
import type { RunJournal } from "./FencedJournal.ts"
import { invalidIdentifier } from "./identifier.ts"

/**
 * What a step needs from its engine. The journal given here already retries transient storage
 * faults; an error that still escapes it stops the run (the execution stays `running`).
 */
export interface StepEnvironment {
  readonly journal: RunJournal
  /** The shard and epoch this run writes with (null: unfenced, one process runs every shard). */
  readonly fence?: Fence | null | undefined
  readonly retryPolicy: ResolvedRetryPolicy
  /** The engine's clock, read synchronously on the hot path. */
  readonly now: () => number
  /** The engine's side of child workflows. */
  readonly children: ChildHooks
}

/** What a parent execution needs from its engine to run a child workflow. */
export interface ChildHooks {
  /** Starts the child execution of `request` (or attaches to it); returns its id. */
  readonly start: (workflow: Any, request: { readonly _tag: string }) => Effect.Effect<string, unknown>
  /** Waits until the execution is final or suspended, and returns its row. */
  readonly settled: (executionId: string) => Effect.Effect<ExecutionRecord, unknown>
  /** Interrupts the execution (its compensations run) and waits for it. */
  readonly interrupt: (executionId: string) => Effect.Effect<void, unknown>
}

/**
 * Asks the replay for the next step of `id` in this fiber and checks determinism (I7). Returns the
 * step key, its recorded row and the fiber's previous step, or the effect that suspends the run.
 */
const askStep = (
  state: ExecutionState,
  fiber: object,
  id: string,
  checked: { readonly kind: InvalidIdentifierError["kind"]; readonly value: string } = {
    kind: "activity id",
    value: id
  }
):
  | { readonly stepKey: string; readonly recorded: StepRecord | undefined; readonly previous: string | null }
  | Effect.Effect<never> => {
  state.asks++
  const invalid = invalidIdentifier(checked.kind, checked.value, state.workflow)
  if (invalid !== undefined) return state.suspend(invalid)
  const stepKey = state.replay.nextStepKey(id)
  const recorded = state.replay.recordedStep(stepKey)
  const previous = state.replay.previousOf(fiber)
  const divergence = state.replay.ask(fiber, stepKey, recorded)
  if (divergence === undefined) return { stepKey, recorded, previous }
  return state.suspend(
    new NonDeterminismError({
      executionId: state.executionId,
      workflow: state.workflow,
      expected: divergence.expected,
      actual: divergence.actual
    })
  )
}

/**
 * A step with no recorded outcome begins: replay has caught up. Delivers a pending interruption
 * (`WorkflowEngine.interrupt` before a restart) instead, or returns the step's attempt start.
 */
const beginStep = (
  state: ExecutionState,
  asked: {
    readonly stepKey: string
    readonly recorded: StepRecord | undefined
    readonly previous: string | null
  },
  activityId: string,
  attempt: number
): AttemptStart | Effect.Effect<never> => {
  state.caughtUp = true
  if (state.replayOnly) return state.atFrontier()
  if (state.interruptRequested && !state.interruptDelivered) {
    return Effect.andThen(state.deliverInterrupt(), Effect.never)
  }
  return {
    executionId: state.executionId,
    stepKey: asked.stepKey,
    activityId,
    seq: asked.recorded?.seq ?? state.replay.allocateSeq(),
    previous: asked.recorded?.previous ?? asked.previous,
    attempt
  }
}

/**
 * Queues the outcome of a step for the next write, encoded with `schema` (an `Exit` schema), and
 * returns the value a replay will see (decoded back from what is stored), so that the first run
 * cannot see more than replays do. A value the schema cannot encode suspends the run instead.
 */
const recordOutcome = <A, E>(
  state: ExecutionState,
  start: AttemptStart,
  schema: Schema.Codec<Exit.Exit<A, E>, any, never, never>,
  exit: Exit.Exit<A, E>,
  what: string
): Effect.Effect<A, E> => {
  const encoded = encodeJsonRoundTrip(schema, exit)
  if (Result.isFailure(encoded)) {
    const failure = withoutExitEnvelope(encoded.failure)
    return state.suspend(
      new ActivityResultError({
        executionId: state.executionId,
        workflow: state.workflow,
        activity: start.stepKey,
        path: failure.path,
        detail: `(${what}) ${failure.message}`
      })
    )
  }
  state.addPending({ ...start, outcome: encoded.success.json })
  return encoded.success.value as Exit.Exit<A, E>
}

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
    const asked = askStep(state, fiber, id)
    if (Effect.isEffect(asked)) return asked
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

export const runActivity = <A, E, R>(
  env: StepEnvironment,
  state: ExecutionState,
  definition: ActivityDefinition<A, E>,
  body: Effect.Effect<A, E, R>
): Effect.Effect<A, E, R> =>
  Effect.withFiber((fiber) => {
    if (state.stopping) return Effect.interrupt
    const asked = askStep(state, fiber, definition.id)
    if (Effect.isEffect(asked)) return asked
    const { stepKey, recorded, previous } = asked
    if (recorded?.outcome != null) return replayOutcome(state, definition, stepKey, recorded.outcome)
    return fresh(env, state, definition, body, stepKey, recorded, previous)
  })

/** Returns a recorded outcome, decoded with the activity's current schemas. */
const replayOutcome = <A, E>(
  state: ExecutionState,
  definition: ActivityDefinition<A, E>,
  stepKey: string,
  outcome: string
): Effect.Effect<A, E> => {
  const decoded = decodeJsonResult(exitSchema(definition.success, definition.failure), outcome)
  if (Result.isFailure(decoded)) {
    const failure = withoutExitEnvelope(decoded.failure)
    return state.suspend(
      new JournalDecodeError({
        executionId: state.executionId,
        workflow: state.workflow,
        record: "activity",
        activity: stepKey,
        path: failure.path,
        detail: failure.message
      })
    )
  }
  // Decoded with Exit(success, failure): its value and error have the activity's types.
  return decoded.success as Exit.Exit<A, E>
}

/**
 * Writes an attempt marker with the pending outcomes, then waits for earlier outcome writes.
 * Outcomes of a write that fails or is interrupted go back to the queue; a write that fails for
 * good stops the run.
 */
const writeAttempt = (
  env: StepEnvironment,
  state: ExecutionState,
  start: AttemptStart | undefined
): Effect.Effect<void> =>
  Effect.suspend(() => {
    const outcomes = state.takePending()
    if (start === undefined && outcomes.length === 0) return Effect.void
    const failedAttempts = state.takeFailedAttempts()
    const prior = state.outcomesWritten
    const mine = outcomes.length > 0 ? Deferred.makeUnsafe<void>() : undefined
    if (mine !== undefined) state.outcomesWritten = mine
    const written = env.journal
      .write({ executionId: state.executionId, outcomes, attempt: start, failedAttempts, now: env.now() })
      .pipe(Effect.andThen(prior === undefined ? Effect.void : Deferred.await(prior)))
    return written.pipe(
      Effect.onExit((exit) => {
        if (!Exit.isSuccess(exit)) {
          state.restorePending(outcomes)
          state.restoreFailedAttempts(failedAttempts)
        }
        return mine === undefined ? Effect.void : Deferred.succeed(mine, undefined)
      }),
      Effect.catch((error: JournalError) => state.halt({ _tag: "JournalFailed", error }))
    )
  })

/** Runs attempts of a step that has no recorded outcome. Written without generators: hot path. */
const fresh = <A, E, R>(
  env: StepEnvironment,
  state: ExecutionState,
  definition: ActivityDefinition<A, E>,
  body: Effect.Effect<A, E, R>,
  stepKey: string,
  recorded: StepRecord | undefined,
  previous: string | null
): Effect.Effect<A, E, R> => {
  state.caughtUp = true
  if (state.replayOnly) return state.atFrontier()
  if (state.interruptRequested && !state.interruptDelivered) {
    // Replay has caught up with the interrupted execution: interrupt it here.
    return Effect.andThen(state.deliverInterrupt(), Effect.never)
  }
  const policy = resolve(definition.retry, env.retryPolicy)
  const seq = recorded?.seq ?? state.replay.allocateSeq()
  const persistenceId = `${state.executionId}/${stepKey}`
  const schema = exitSchema(definition.success, definition.failure)
  const progress = new Progress(env, state, stepKey, recorded?.heartbeat ?? null)
  const startToClose = millisOf(definition.startToCloseTimeout)
  const heartbeatTimeout = millisOf(definition.heartbeatTimeout)

  const attemptNumber = (attempt: number): Effect.Effect<A, E, R> => {
    const start: AttemptStart = {
      executionId: state.executionId,
      stepKey,
      activityId: definition.id,
      seq,
      previous: recorded?.previous ?? previous,
      attempt
    }
    let startedAt = 0
    // The attempt's clocks start when its body does, after its marker is written.
    const run = Effect.suspend(() => {
      startedAt = env.now()
      const lastHeartbeat = progress.startAttempt()
      return withTimeouts(
        Effect.provideService(body, ActivityContext, {
          activityId: definition.id,
          persistenceId,
          attempt,
          heartbeat: progress.beat,
          lastHeartbeat,
          fence: env.fence ?? null
        }),
        stepKey,
        startToClose,
        heartbeatTimeout,
        progress
      )
    })
    const attempted = Effect.uninterruptibleMask((restore) =>
      state.stopping
        ? Effect.interrupt
        : state.draining
          ? // The shard is being handed over: the new owner starts this attempt.
            state.halt({ _tag: "Shutdown" })
          : Effect.flatMap(restore(writeAttempt(env, state, start)), () =>
              Effect.flatMap(Effect.exit(restore(run)), (exit) =>
                // If this fiber was interrupted (shutdown, race lost), stop here: nothing is recorded.
                Effect.as(restore(Effect.void), exit)
              )
            )
    )
    const observed = state.telemetry
      ? Instrument.attempt(attempted, state, definition.id, persistenceId, attempt)
      : attempted
    return observed.pipe(
      Effect.flatMap((exit): Effect.Effect<A, E, R> => {
        if (Exit.isFailure(exit)) {
          // Interrupted without this fiber being interrupted (the run is stopping, or the body
          // interrupted itself): nothing to record, the step runs again on the next run.
          if (state.stopping || Cause.hasInterruptsOnly(exit.cause)) return exit
          if (shouldRetry(policy, exit.cause, attempt)) {
            // Kept for the history, written with the next attempt's marker.
            const failure = encodeJsonRoundTrip(schema, exit)
            state.addFailedAttempt({
              executionId: state.executionId,
              stepKey,
              attempt,
              startedAt,
              endedAt: env.now(),
              outcome: Result.isSuccess(failure)
                ? failure.success.json
                : JSON.stringify({ _tag: "Failure", cause: Cause.pretty(exit.cause) })
            })
            if (policy.yieldAfter !== undefined && attempt % policy.yieldAfter === 0) {
              // The attempt-failed signal: give the execution back instead of retrying on.
              const message = `activity "${stepKey}" failed ${attempt} attempts; last error: ${Cause.pretty(exit.cause).split("\n")[0]}`
              return Effect.andThen(
                Effect.logWarning(`execution ${state.executionId} yields: ${message}`),
                state.suspend(
                  new ExecutionYielded({
                    executionId: state.executionId,
                    workflow: state.workflow,
                    detail: message
                  })
                )
              )
            }
            const backoff = Effect.andThen(
              Effect.sleep(delayAfter(policy, attempt)),
              attemptNumber(attempt + 1)
            )
            return state.telemetry
              ? Effect.andThen(Instrument.retried(state.workflow, definition.id), backoff)
              : backoff
          }
        }
        return recordOutcome(state, start, schema, exit, "activity")
      })
    )
  }
  return counted(state, attemptNumber((recorded?.attempt ?? 0) + 1))
}

const millisOf = (duration: Duration.Input | undefined): number | undefined =>
  duration === undefined ? undefined : Duration.toMillis(Duration.fromInputUnsafe(duration))

/**
 * Heartbeats are stored at most this often per step (advisory writes); the latest details are
 * stored within this delay, so a crash loses at most the last second of progress.
 */
const HEARTBEAT_WRITE_MILLIS = 1_000

/**
 * The heartbeats of one step: the latest details (kept for the next attempt), when the running
 * attempt last reported, and throttled writes to the journal.
 */
class Progress {
  details: string | null
  lastBeat = 0
  private lastWrite = 0
  private readonly env: StepEnvironment
  private readonly state: ExecutionState
  private readonly stepKey: string

  constructor(env: StepEnvironment, state: ExecutionState, stepKey: string, recorded: string | null) {
    this.env = env
    this.state = state
    this.stepKey = stepKey
    this.details = recorded
  }

  now(): number {
    return this.env.now()
  }

  /** An attempt starts: its heartbeat clock starts now; returns what earlier attempts reported. */
  startAttempt(): string | null {
    this.lastBeat = this.env.now()
    return this.details
  }

  readonly beat = (details: string): Effect.Effect<void> =>
    Effect.suspend(() => {
      const now = this.env.now()
      this.details = details
      this.lastBeat = now
      const wait = this.lastWrite + HEARTBEAT_WRITE_MILLIS - now
      if (wait <= 0) return this.store()
      if (this.trailing) return Effect.void
      // Stored at most once a second, but the latest details are always stored within a second.
      this.trailing = true
      return Effect.map(Effect.forkDetach(Effect.andThen(Effect.sleep(wait), this.store())), (fiber) => {
        this.trailingFiber = fiber
      })
    })

  private trailing = false
  private trailingFiber: Fiber.Fiber<void> | undefined = undefined

  /**
   * The attempt ended. A trailing write still waiting is cancelled; if the attempt failed (it will
   * be retried, maybe after a long backoff or a crash), the latest details are stored now. After a
   * success (the outcome follows) or an interruption (a shutdown: the journal may be closing) they
   * are not.
   */
  readonly stop = (exit: Exit.Exit<unknown, unknown>): Effect.Effect<void> =>
    Effect.suspend(() => {
      const fiber = this.trailingFiber
      const pending = this.trailing
      this.trailingFiber = undefined
      this.trailing = false
      const cancel = fiber === undefined ? Effect.void : Fiber.interrupt(fiber)
      const failed = Exit.isFailure(exit) && !Cause.hasInterruptsOnly(exit.cause)
      return pending && failed ? Effect.andThen(cancel, this.store()) : cancel
    })

  private store(): Effect.Effect<void> {
    return Effect.suspend(() => {
      this.trailing = false
      this.lastWrite = this.env.now()
      const details = this.details
      if (details === null) return Effect.void
      return this.env.journal
        .heartbeat({
          executionId: this.state.executionId,
          stepKey: this.stepKey,
          details,
          now: this.lastWrite
        })
        .pipe(Effect.catchCause((cause) => Effect.logWarning("a heartbeat could not be stored", cause)))
    })
  }
}

/** Fails the attempt with `ActivityTimeoutError` when it runs too long or stops heartbeating. */
const withTimeouts = <A, E, R>(
  run: Effect.Effect<A, E, R>,
  stepKey: string,
  startToClose: number | undefined,
  heartbeatTimeout: number | undefined,
  progress: Progress
): Effect.Effect<A, E, R> => {
  let guarded = run
  if (heartbeatTimeout !== undefined) {
    const watchdog: Effect.Effect<never> = Effect.suspend(() => {
      const left = progress.lastBeat + heartbeatTimeout - progress.now()
      return left <= 0
        ? Effect.die(
            new ActivityTimeoutError({
              activity: stepKey,
              timeout: "heartbeat",
              millis: heartbeatTimeout
            })
          )
        : Effect.andThen(Effect.sleep(left), watchdog)
    })
    guarded = Effect.raceFirst(guarded, watchdog)
  }
  if (startToClose !== undefined) {
    guarded = Effect.timeoutOrElse(guarded, {
      duration: startToClose,
      orElse: () =>
        Effect.die(
          new ActivityTimeoutError({
            activity: stepKey,
            timeout: "start-to-close",
            millis: startToClose
          })
        )
    })
  }
  // Outermost: a timeout is a failure too, and its last details are stored.
  return Effect.onExit(guarded, progress.stop)
}

/** Counts the step as in progress while it runs (see `ExecutionState.activeAttempts`). */
const counted = <A, E, R>(state: ExecutionState, step: Effect.Effect<A, E, R>) =>
  Effect.suspend(() => {
    state.activeAttempts++
    return Effect.ensuring(
      step,
      Effect.sync(() => {
        state.activeAttempts--
      })
    )
  })

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
    const asked = askStep(state, fiber, `effect-cluster/signal/${name}`, { kind: "signal name", value: name })
    if (Effect.isEffect(asked)) return asked
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
        recordOutcome(state, start, exitSchema(outcomeSchema, Schema.Never), Exit.succeed(outcome), "signal"),
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
  })

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
    const asked = askStep(state, fiber, `effect-cluster/child/${childId}`, {
      kind: "execution id",
      value: childId
    })
    if (Effect.isEffect(asked)) return asked
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
      state.addPending({ ...start, outcome: row.result })
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
  })

const shouldRetry = (policy: ResolvedRetryPolicy, cause: Cause.Cause<unknown>, attempt: number): boolean => {
  if (attempt >= policy.maxAttempts) return false
  const error = Cause.findErrorOption(cause)
  return Option.isNone(error) || policy.retryWhile(error.value)
}
