/**
 * Where effect-cluster's subsystems create spans and record metrics. Every helper first reads
 * `TelemetryEnabled` from the running fiber (one lookup in its context): off, it returns the effect
 * unchanged, so the default path allocates no span, no attribute object and touches no metric.
 */
import { Cause, Clock, Context, Effect, Exit, type Fiber, type Metric, Option, Tracer } from "effect"
import * as ExecutionTrace from "../ExecutionTrace.ts"
import { Attributes, SpanNames, TelemetryEnabled, TraceSampleRate } from "../Telemetry.ts"
import * as Definitions from "./metricDefinitions.ts"

const on = (fiber: Fiber.Fiber<unknown, unknown>): boolean => fiber.getRef(TelemetryEnabled)

/**
 * Whether the run `fiber` is in traces: false inside a run of an execution left out by the sample
 * (`TraceSampleRate`), whose parent is its span context marked not sampled. Its metrics count.
 */
const inTrace = (fiber: Fiber.Fiber<unknown, unknown>): boolean => fiber.cache.span?.sampled !== false

/**
 * The series of a metric for attribute `values` (in the order of `names`), made once with its
 * attributes (see `metricDefinitions.ts`). The memo holds metric definitions only; the values live
 * in the fiber's `MetricRegistry`.
 */
const seriesOf = <I, S>(
  make: (attributes: Definitions.Attributes) => Metric.Metric<I, S>,
  names: ReadonlyArray<string>
) => {
  // One level of maps per attribute, so that finding a series builds no key.
  const root = new Map<string, unknown>()
  return (values: ReadonlyArray<string>): Metric.Metric<I, S> => {
    let level = root
    for (let i = 0; i < names.length - 1; i++) {
      const value = values[i] ?? ""
      let next = level.get(value) as Map<string, unknown> | undefined
      if (next === undefined) {
        next = new Map()
        level.set(value, next)
      }
      level = next
    }
    const last = values[names.length - 1] ?? ""
    let series = level.get(last) as Metric.Metric<I, S> | undefined
    if (series === undefined) {
      series = make(Object.fromEntries(names.map((name, i) => [name, values[i] ?? ""])))
      level.set(last, series)
    }
    return series
  }
}

const started = seriesOf(Definitions.executionsStarted, ["workflow"])
const resumed = seriesOf(Definitions.executionsResumed, ["workflow"])
const completed = seriesOf(Definitions.executionsCompleted, ["workflow"])
const failed = seriesOf(Definitions.executionsFailed, ["workflow", "status"])
const suspended = seriesOf(Definitions.executionsSuspended, ["workflow"])
const activityDuration = seriesOf(Definitions.activityDuration, ["workflow", "activity", "outcome"])
const activityRetries = seriesOf(Definitions.activityRetries, ["workflow", "activity"])
const commitDuration = seriesOf(Definitions.commitDuration, ["store"])
const commitBatchSize = seriesOf(Definitions.commitBatchSize, ["store"])
const entityMessages = seriesOf(Definitions.entityMessages, ["entity_type", "outcome"])
const shardMoves = seriesOf(Definitions.shardMoves, ["pod", "move"])
const leaseRenewals = seriesOf(Definitions.leaseRenewals, ["pod", "result"])

const record = (
  series: (values: ReadonlyArray<string>) => Metric.Metric<number, unknown>,
  values: ReadonlyArray<string>,
  fiber: Fiber.Fiber<unknown, unknown>,
  value = 1
): void => series(values).updateUnsafe(value, fiber.context)

/** How a span ended, for `traced`'s `end`: the effect's exit, and milliseconds since the start. */
interface Ended<A, E> {
  readonly exit: Exit.Exit<A, E>
  readonly span: Tracer.Span
  readonly millis: number
}

/**
 * `effect` in a span named `name`, its parent for what `effect` runs. `end` adds attributes from
 * how it ended, before the span ends, and may give the exit the span ends with (by default
 * `effect`'s). No stack capture. The span's own start time gives the duration (one clock read
 * fewer), unless span timing is off (`References.TracerTimingEnabled`).
 */
const traced = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  name: string,
  options: Tracer.SpanOptionsNoTrace,
  end?: (ended: Ended<A, E>) => Exit.Exit<unknown, unknown> | undefined
): Effect.Effect<A, E, R> =>
  Effect.useSpan(name, options, (span) => {
    const inside = Effect.withParentSpan(effect, span, { captureStackTrace: false })
    if (end === undefined) return inside
    return Effect.withFiber((fiber) => {
      const clock = fiber.getRef(Clock.Clock)
      const timed = span.status.startTime !== 0n
      const start = timed ? span.status.startTime : clock.currentTimeNanosUnsafe()
      return Effect.onExit(inside, (exit) => {
        const now = clock.currentTimeNanosUnsafe()
        const endWith = end({ exit, span, millis: Number(now - start) / 1e6 })
        // Ended here (one clock read fewer), the span is not ended again by `useSpan`.
        span.end(timed ? now : 0n, endWith ?? exit)
        return Effect.void
      })
    })
  })

const outcomeOf = (exit: Exit.Exit<unknown, unknown>): string =>
  Exit.isSuccess(exit) ? "succeeded" : Cause.hasInterruptsOnly(exit.cause) ? "interrupted" : "failed"

// ---------------------------------------------------------------------------------------------
// Executions

/**
 * A run of an execution: a span under the execution's derived span context (`ExecutionTrace`).
 * Marks `run.telemetry` for the run's other helpers (checked without a context lookup). On,
 * `after` runs once the span has ended; off, the run calls it itself.
 */
export const execution = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  run: { telemetry: boolean },
  executionId: string,
  workflow: string,
  after: () => void
): Effect.Effect<A, E, R> =>
  Effect.withFiber((fiber) => {
    if (!on(fiber)) return effect
    run.telemetry = true
    const parent = ExecutionTrace.spanOf(executionId)
    if (!ExecutionTrace.traceIdSampled(parent.traceId, fiber.getRef(TraceSampleRate))) {
      // Left out of the sample: no span, and what it runs sees a parent that is not sampled.
      const unsampled = Tracer.externalSpan({
        traceId: parent.traceId,
        spanId: parent.spanId,
        sampled: false
      })
      return Effect.ensuring(Effect.provideService(effect, Tracer.ParentSpan, unsampled), Effect.sync(after))
    }
    return Effect.ensuring(
      traced(effect, SpanNames.execution, {
        parent,
        attributes: { [Attributes.workflow]: workflow, [Attributes.executionId]: executionId }
      }),
      Effect.sync(after)
    )
  })

/**
 * The run has loaded its journal: a resumed run (recorded steps) links to the execution's span
 * context, and counts as resumed; a first run counts as started.
 */
export const runBegins = (executionId: string, workflow: string, isResumed: boolean): Effect.Effect<void> =>
  Effect.withFiber((fiber) => {
    if (!on(fiber)) return Effect.void
    const span = fiber.cache.span
    if (span !== undefined && span._tag === "Span") {
      span.attribute(Attributes.resumed, isResumed)
      if (isResumed)
        span.addLinks([
          { span: ExecutionTrace.spanOf(executionId), attributes: { [Attributes.link]: "resumed" } }
        ])
    }
    record(isResumed ? resumed : started, [workflow], fiber)
    return Effect.void
  })

/** A run's outcome, as the runner's `RunOutcome` has it. */
export type RunEnd =
  | { readonly _tag: "Completed"; readonly exit: Exit.Exit<unknown, unknown> }
  | { readonly _tag: "Suspended" | "Stopped" | "Failed" | "Stale" | "Sleeping" }

/** The execution a run belongs to, for its root span. */
export interface RunExecution {
  readonly executionId: string
  readonly workflow: string
  /** When the execution was created (epoch ms): where its root span starts. */
  readonly createdAt: number
}

/**
 * Gives `span` the ids `ids` (its own properties, over the tracer's generated ones), for a tracer
 * whose exporter reads a span's ids from it when it ends (effect's native and OTLP tracers do).
 * False when the tracer's spans take their ids elsewhere: better no root than a wrong one.
 */
const chooseIds = (span: Tracer.Span, ids: Tracer.ExternalSpan): boolean => {
  try {
    Object.defineProperty(span, "traceId", { value: ids.traceId, enumerable: true, configurable: true })
    Object.defineProperty(span, "spanId", { value: ids.spanId, enumerable: true, configurable: true })
  } catch {
    return false
  }
  return span.traceId === ids.traceId && span.spanId === ids.spanId
}

/**
 * The execution's root span (`SpanNames.executionRoot`), exported once: when the execution
 * completes, by the run that recorded its final status. It spans the execution's life (from its
 * creation to now) and has the ids every run's parent has (`ExecutionTrace.spanOf`), so the runs of
 * the execution, on any pod, nest under a span that exists. Emitted at the end rather than at the
 * start because only then is its duration known: a root that ended before its children would make
 * trace viewers "correct" the children's times.
 */
const exportRoot = (
  fiber: Fiber.Fiber<unknown, unknown>,
  execution: RunExecution,
  outcome: string,
  exit: Exit.Exit<unknown, unknown>
): void => {
  const span = fiber.getRef(Tracer.Tracer).span({
    name: SpanNames.executionRoot,
    parent: Option.none(),
    annotations: Context.empty(),
    links: [],
    startTime: BigInt(Math.round(execution.createdAt)) * 1_000_000n,
    kind: "internal",
    root: true,
    sampled: true
  })
  if (!chooseIds(span, ExecutionTrace.spanOf(execution.executionId))) return
  span.attribute(Attributes.workflow, execution.workflow)
  span.attribute(Attributes.executionId, execution.executionId)
  span.attribute(Attributes.outcome, outcome)
  span.end(fiber.getRef(Clock.Clock).currentTimeNanosUnsafe(), exit)
}

/**
 * How a run ended: its span's outcome (the execution's final status, or why the run stopped:
 * suspended, sleeping, stopped, journal_failed, stale) and the execution counters. A run that
 * completed the execution exports the execution's root span (`execution` given).
 */
export const runEnds = (workflow: string, end: RunEnd, execution?: RunExecution): Effect.Effect<void> =>
  Effect.withFiber((fiber) => {
    if (!on(fiber)) return Effect.void
    // "Failed" is the journal failing (the execution stays running), not the execution.
    const outcome =
      end._tag === "Completed"
        ? outcomeOf(end.exit)
        : end._tag === "Failed"
          ? "journal_failed"
          : end._tag.toLowerCase()
    const span = fiber.cache.span
    if (span !== undefined && span._tag === "Span") span.attribute(Attributes.outcome, outcome)
    if (end._tag === "Completed" && execution !== undefined && inTrace(fiber))
      exportRoot(fiber, execution, outcome, end.exit)
    switch (outcome) {
      case "succeeded":
        record(completed, [workflow], fiber)
        break
      case "failed":
      case "interrupted":
        record(failed, [workflow, outcome], fiber)
        break
      case "suspended":
        record(suspended, [workflow], fiber)
        break
    }
    return Effect.void
  })

// ---------------------------------------------------------------------------------------------
// Activities

/** A failed attempt's exit, as the error its span ends with (an OTel error status, an event). */
class AttemptFailed extends Error {
  readonly exit: Exit.Exit<unknown, unknown>
  constructor(exit: Exit.Exit<unknown, unknown>) {
    super(Exit.isFailure(exit) ? (Cause.pretty(exit.cause).split("\n")[0] ?? "failed") : "failed")
    this.exit = exit
    this.name = "ActivityAttemptFailed"
  }
}

/**
 * The attempt's own exit: the value its effect succeeded with, or the effect's failure (an
 * interruption of the attempt's fiber).
 */
const attemptExit = <A, E>(ended: Exit.Exit<Exit.Exit<A, E>>): Exit.Exit<A, E> =>
  Exit.isSuccess(ended) ? ended.value : Exit.failCause(ended.cause)

/**
 * An attempt (its marker write and its body), an effect that succeeds with the attempt's exit: the
 * span's outcome, its status and the duration histogram come from that exit.
 */
export const attempt = <A, E, R>(
  effect: Effect.Effect<Exit.Exit<A, E>, never, R>,
  execution: { readonly workflow: string; readonly executionId: string },
  activityId: string,
  persistenceId: string,
  attemptNumber: number
): Effect.Effect<Exit.Exit<A, E>, never, R> =>
  Effect.withFiber((fiber) => {
    if (!on(fiber)) return effect
    if (!inTrace(fiber)) {
      // Not in the sample: the duration histogram only.
      const clock = fiber.getRef(Clock.Clock)
      const begin = clock.currentTimeNanosUnsafe()
      return Effect.onExit(effect, (ended) =>
        Effect.sync(() => {
          const millis = Number(clock.currentTimeNanosUnsafe() - begin) / 1e6
          record(
            activityDuration,
            [execution.workflow, activityId, outcomeOf(attemptExit(ended))],
            fiber,
            millis
          )
        })
      )
    }
    return traced(
      effect,
      SpanNames.activity,
      {
        attributes: {
          [Attributes.workflow]: execution.workflow,
          [Attributes.executionId]: execution.executionId,
          [Attributes.activityId]: activityId,
          [Attributes.persistenceId]: persistenceId,
          [Attributes.attempt]: attemptNumber
        }
      },
      (ended) => {
        // A failed attempt ends the span as an error.
        const exit = attemptExit(ended.exit)
        const outcome = outcomeOf(exit)
        ended.span.attribute(Attributes.outcome, outcome)
        record(activityDuration, [execution.workflow, activityId, outcome], fiber, ended.millis)
        return Exit.isFailure(exit) ? Exit.fail(new AttemptFailed(exit)) : undefined
      }
    )
  })

/** A failed attempt will be retried. */
export const retried = (workflow: string, activityId: string): Effect.Effect<void> =>
  Effect.withFiber((fiber) => {
    if (on(fiber)) record(activityRetries, [workflow, activityId], fiber)
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

/**
 * One journal write of an execution: a leaf span, not made the parent of what the write runs (a
 * group commit it joins or starts has its own span, under the attempt or run). Making it a parent
 * changes the fiber's context on the way in and out; on four writes per execution that measured
 * 8-10 % of the engine's throughput with telemetry on (memory journal, concurrency 100).
 */
export const journalWrite = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  write: WriteInfo
): Effect.Effect<A, E, R> =>
  Effect.withFiber((fiber) =>
    on(fiber) && inTrace(fiber)
      ? Effect.useSpan(
          SpanNames.journalWrite,
          {
            attributes: {
              [Attributes.executionId]: write.executionId,
              [Attributes.outcomes]: write.outcomes.length,
              [Attributes.attemptMarker]: write.attempt !== undefined,
              [Attributes.status]: write.status?._tag ?? "none"
            }
          },
          () => effect
        )
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
    return traced(
      effect,
      SpanNames.commit,
      {
        attributes: { [Attributes.store]: store, [Attributes.batchSize]: size, [Attributes.durable]: durable }
      },
      ({ exit, span, millis }) => {
        span.attribute(Attributes.outcome, outcomeOf(exit))
        record(commitDuration, [store], fiber, millis)
        record(commitBatchSize, [store], fiber, size)
        return undefined
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
      ({ exit, span }) => {
        const outcome = Exit.isSuccess(exit) ? answered : outcomeOf(exit)
        span.attribute(Attributes.outcome, outcome)
        record(entityMessages, [entityType, outcome], fiber)
        return undefined
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
    record(shardMoves, [pod, "acquired"], fiber)
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
    record(shardMoves, [pod, move], fiber)
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
    if (on(fiber)) record(leaseRenewals, [pod, ok ? "ok" : "failed"], fiber)
    return Effect.void
  })
