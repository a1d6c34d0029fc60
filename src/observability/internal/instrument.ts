/**
 * Where effect-cluster's subsystems create spans and record metrics. Every helper first reads
 * `TelemetryEnabled` from the running fiber (one lookup in its context): off, it returns the effect
 * unchanged, so the default path allocates no span, no attribute object and touches no metric.
 */
import { Cause, Clock, type Context, Effect, Exit, type Fiber, Metric, type Tracer } from "effect"
import * as ExecutionTrace from "../ExecutionTrace.ts"
import { Attributes, SpanNames, TelemetryEnabled } from "../Telemetry.ts"
import * as Metrics from "../TelemetryMetrics.ts"

const on = (fiber: Fiber.Fiber<unknown, unknown>): boolean => fiber.getRef(TelemetryEnabled)

const count = (
  metric: Metric.Metric<number, unknown>,
  attributes: Record<string, string>,
  context: Context.Context<never>,
  value = 1
) => Metric.withAttributes(metric, attributes).updateUnsafe(value, context)

const nowMillis = (fiber: Fiber.Fiber<unknown, unknown>): number =>
  Number(fiber.getRef(Clock.Clock).currentTimeNanosUnsafe()) / 1e6

/** `effect` in a span named `name`; `end` adds attributes from how it ended. No stack capture. */
const traced = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  name: string,
  options: Tracer.SpanOptions,
  end?: (exit: Exit.Exit<A, E>, span: Tracer.Span) => void
): Effect.Effect<A, E, R> =>
  Effect.withSpan(
    end === undefined
      ? effect
      : Effect.onExit(effect, (exit) =>
          Effect.withFiber((fiber) => {
            const span = fiber.cache.span
            if (span !== undefined && span._tag === "Span") end(exit, span)
            return Effect.void
          })
        ),
    name,
    { captureStackTrace: false, ...options }
  )

const outcomeOf = (exit: Exit.Exit<unknown, unknown>): string =>
  Exit.isSuccess(exit) ? "succeeded" : Cause.hasInterruptsOnly(exit.cause) ? "interrupted" : "failed"

// ---------------------------------------------------------------------------------------------
// Executions

/** A run of an execution: a span under the execution's derived span context (`ExecutionTrace`). */
export const execution = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  executionId: string,
  workflow: string
): Effect.Effect<A, E, R> =>
  Effect.withFiber((fiber) =>
    on(fiber)
      ? traced(effect, SpanNames.execution, {
          parent: ExecutionTrace.spanOf(executionId),
          attributes: { [Attributes.workflow]: workflow, [Attributes.executionId]: executionId }
        })
      : effect
  )

/**
 * The run has loaded its journal: a resumed run (recorded steps) links to the execution's span
 * context, and counts as resumed; a first run counts as started.
 */
export const runBegins = (executionId: string, workflow: string, resumed: boolean): Effect.Effect<void> =>
  Effect.withFiber((fiber) => {
    if (!on(fiber)) return Effect.void
    const span = fiber.cache.span
    if (span !== undefined && span._tag === "Span") {
      span.attribute(Attributes.resumed, resumed)
      if (resumed)
        span.addLinks([
          { span: ExecutionTrace.spanOf(executionId), attributes: { [Attributes.link]: "resumed" } }
        ])
    }
    count(resumed ? Metrics.executionsResumed : Metrics.executionsStarted, { workflow }, fiber.context)
    return Effect.void
  })

/** How a run ended (the runner's `RunOutcome`, described by `outcome`). */
export const runEnds = (workflow: string, outcome: string): Effect.Effect<void> =>
  Effect.withFiber((fiber) => {
    if (!on(fiber)) return Effect.void
    const span = fiber.cache.span
    if (span !== undefined && span._tag === "Span") span.attribute(Attributes.outcome, outcome)
    switch (outcome) {
      case "succeeded":
        count(Metrics.executionsCompleted, { workflow }, fiber.context)
        break
      case "failed":
      case "interrupted":
        count(Metrics.executionsFailed, { workflow, status: outcome }, fiber.context)
        break
      case "suspended":
        count(Metrics.executionsSuspended, { workflow }, fiber.context)
        break
    }
    return Effect.void
  })

/** What a run's outcome is called on its span: the execution's final status, or why the run stopped. */
export const describeRun = (
  outcome:
    | { readonly _tag: "Completed"; readonly exit: Exit.Exit<unknown, unknown> }
    | { readonly _tag: "Suspended" | "Stopped" | "Failed" | "Stale" | "Sleeping" }
): string => (outcome._tag === "Completed" ? outcomeOf(outcome.exit) : outcome._tag.toLowerCase())

// ---------------------------------------------------------------------------------------------
// Activities

/** What identifies an attempt on its span and metrics. */
export interface AttemptInfo {
  readonly workflow: string
  readonly executionId: string
  readonly activityId: string
  readonly persistenceId: string
  readonly attempt: number
}

/**
 * An attempt (its marker write and its body), an effect that succeeds with the attempt's exit: the
 * span's outcome and the duration histogram come from that exit.
 */
export const attempt = <A, E, R>(
  effect: Effect.Effect<Exit.Exit<A, E>, never, R>,
  info: AttemptInfo
): Effect.Effect<Exit.Exit<A, E>, never, R> =>
  Effect.withFiber((fiber) => {
    if (!on(fiber)) return effect
    const started = nowMillis(fiber)
    return traced(
      effect,
      SpanNames.activity,
      {
        attributes: {
          [Attributes.workflow]: info.workflow,
          [Attributes.executionId]: info.executionId,
          [Attributes.activityId]: info.activityId,
          [Attributes.persistenceId]: info.persistenceId,
          [Attributes.attempt]: info.attempt
        }
      },
      (exit, span) => {
        const outcome = Exit.isSuccess(exit) ? outcomeOf(exit.value) : outcomeOf(exit)
        span.attribute(Attributes.outcome, outcome)
        Metric.withAttributes(Metrics.activityDuration, {
          workflow: info.workflow,
          activity: info.activityId,
          outcome
        }).updateUnsafe(nowMillis(fiber) - started, fiber.context)
      }
    )
  })

/** A failed attempt will be retried. */
export const retried = (workflow: string, activityId: string): Effect.Effect<void> =>
  Effect.withFiber((fiber) => {
    if (on(fiber)) count(Metrics.activityRetries, { workflow, activity: activityId }, fiber.context)
    return Effect.void
  })

// ---------------------------------------------------------------------------------------------
// Journal

/** What a journal write carries, for its span. */
export interface WriteInfo {
  readonly executionId: string
  readonly outcomes: ReadonlyArray<unknown>
  readonly attempt?: unknown
  readonly status?: { readonly _tag: string } | undefined
}

/** One journal write of an execution. */
export const journalWrite = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  write: WriteInfo
): Effect.Effect<A, E, R> =>
  Effect.withFiber((fiber) =>
    on(fiber)
      ? traced(effect, SpanNames.journalWrite, {
          attributes: {
            [Attributes.executionId]: write.executionId,
            [Attributes.outcomes]: write.outcomes.length,
            [Attributes.attemptMarker]: write.attempt !== undefined,
            [Attributes.status]: write.status?._tag ?? "none"
          }
        })
      : effect
  )

/** One group commit of `size` writes to `store`: a span, the commit latency and the batch size. */
export const commit = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  store: string,
  size: number,
  durable: boolean
): Effect.Effect<A, E, R> =>
  Effect.withFiber((fiber) => {
    if (!on(fiber)) return effect
    const started = nowMillis(fiber)
    return traced(
      effect,
      SpanNames.commit,
      {
        attributes: { [Attributes.store]: store, [Attributes.batchSize]: size, [Attributes.durable]: durable }
      },
      (exit, span) => {
        span.attribute(Attributes.outcome, outcomeOf(exit))
        Metric.withAttributes(Metrics.commitDuration, { store }).updateUnsafe(
          nowMillis(fiber) - started,
          fiber.context
        )
        Metric.withAttributes(Metrics.commitBatchSize, { store }).updateUnsafe(size, fiber.context)
      }
    )
  })

// ---------------------------------------------------------------------------------------------
// Entities

/**
 * One message handled by an entity. `handle` receives the answer callback to use instead of the
 * envelope's own (it notes the answer's tag for the span's outcome).
 */
export const entityMessage = <A, E, R, Answer extends { readonly _tag: string }>(
  entityType: string,
  entityId: string,
  messageId: string,
  answer: ((value: Answer) => void) | undefined,
  handle: (answer: ((value: Answer) => void) | undefined) => Effect.Effect<A, E, R>
): Effect.Effect<A, E, R> =>
  Effect.withFiber((fiber) => {
    if (!on(fiber)) return handle(answer)
    let answered = "none"
    const noted = (value: Answer) => {
      answered = value._tag
      answer?.(value)
    }
    return traced(
      handle(noted),
      SpanNames.entityMessage,
      {
        attributes: {
          [Attributes.entityType]: entityType,
          [Attributes.entityId]: entityId,
          [Attributes.messageId]: messageId
        }
      },
      (exit, span) => {
        const outcome = Exit.isSuccess(exit) ? answered : outcomeOf(exit)
        span.attribute(Attributes.outcome, outcome)
        count(Metrics.entityMessages, { entity_type: entityType, outcome }, fiber.context)
      }
    )
  })

// ---------------------------------------------------------------------------------------------
// Shards and leases

/** This pod takes `shard` at `epoch`. */
export const shardAcquired = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  pod: string,
  shard: number,
  epoch: number
): Effect.Effect<A, E, R> =>
  Effect.withFiber((fiber) => {
    if (!on(fiber)) return effect
    count(Metrics.shardMoves, { pod, move: "acquired" }, fiber.context)
    return traced(effect, SpanNames.shardAcquire, {
      root: true,
      attributes: { [Attributes.pod]: pod, [Attributes.shard]: shard, [Attributes.epoch]: epoch }
    })
  })

/** This pod stops the runs of `shard` (lost, or handed over when `handover`). */
export const shardLost = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  pod: string,
  shard: number,
  epoch: number,
  handover: boolean
): Effect.Effect<A, E, R> =>
  Effect.withFiber((fiber) => {
    if (!on(fiber)) return effect
    const move = handover ? "handed_over" : "lost"
    count(Metrics.shardMoves, { pod, move }, fiber.context)
    return traced(effect, SpanNames.shardLose, {
      root: true,
      attributes: {
        [Attributes.pod]: pod,
        [Attributes.shard]: shard,
        [Attributes.epoch]: epoch,
        [Attributes.outcome]: move
      }
    })
  })

/** A lease renewal of `pod` ended: renewed or not. */
export const leaseRenewal = (pod: string, ok: boolean): Effect.Effect<void> =>
  Effect.withFiber((fiber) => {
    if (on(fiber)) count(Metrics.leaseRenewals, { pod, result: ok ? "ok" : "failed" }, fiber.context)
    return Effect.void
  })
