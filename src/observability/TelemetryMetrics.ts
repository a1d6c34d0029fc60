/**
 * The metrics effect-cluster records when telemetry is on (`Telemetry.layer` or
 * `Telemetry.enabled`), as effect `Metric`s: read them with `Metric.value`, `Metric.snapshot`, or
 * export them with `Telemetry.layer` (OTLP). With telemetry off nothing is recorded.
 *
 * Durations are in milliseconds, by effect's `Clock` (so `TestClock` in tests).
 */
import { Metric } from "effect"

const durationBoundaries = Metric.exponentialBoundaries({ start: 0.5, factor: 2, count: 18 })

/** Executions whose first run started (attribute `workflow`). */
export const executionsStarted = Metric.counter("effect-cluster.executions.started", {
  description: "executions whose first run started",
  incremental: true
})

/** Runs of executions that had recorded steps: after a resume, a crash, a restart (`workflow`). */
export const executionsResumed = Metric.counter("effect-cluster.executions.resumed", {
  description: "runs that resumed an execution with recorded steps",
  incremental: true
})

/** Executions that succeeded (`workflow`). */
export const executionsCompleted = Metric.counter("effect-cluster.executions.completed", {
  description: "executions that succeeded",
  incremental: true
})

/** Executions that failed or were interrupted (`workflow`, `status`: failed | interrupted). */
export const executionsFailed = Metric.counter("effect-cluster.executions.failed", {
  description: "executions that ended failed or interrupted",
  incremental: true
})

/** Executions suspended: they wait for `engine.resume` (`workflow`). */
export const executionsSuspended = Metric.counter("effect-cluster.executions.suspended", {
  description: "executions suspended (waiting for resume)",
  incremental: true
})

/** How long activity attempts' bodies ran, in ms (`workflow`, `activity`, `outcome`). */
export const activityDuration = Metric.histogram("effect-cluster.activity.duration", {
  description: "activity attempt duration in milliseconds",
  boundaries: durationBoundaries
})

/** Failed attempts that will be retried (`workflow`, `activity`). */
export const activityRetries = Metric.counter("effect-cluster.activity.retries", {
  description: "failed activity attempts that are retried",
  incremental: true
})

/** How long a group commit of the SQL stores took, in ms (`store`: journal, entity-messages, entity-owner). */
export const commitDuration = Metric.histogram("effect-cluster.journal.commit.duration", {
  description: "group commit duration in milliseconds",
  boundaries: durationBoundaries
})

/** How many writes a group commit carried (`store`: journal, entity-messages, entity-owner). */
export const commitBatchSize = Metric.histogram("effect-cluster.journal.commit.batch_size", {
  description: "writes per group commit",
  boundaries: Metric.exponentialBoundaries({ start: 1, factor: 2, count: 12 })
})

/** Shards this pod acquired, lost or handed over (`pod`, `move`: acquired | lost | handed_over). */
export const shardMoves = Metric.counter("effect-cluster.shard.moves", {
  description: "shard ownership changes seen by this pod",
  incremental: true
})

/** Lease renewals of this pod (`pod`, `result`: ok | failed). */
export const leaseRenewals = Metric.counter("effect-cluster.lease.renewals", {
  description: "lease renewals of this pod",
  incremental: true
})

/** Entity messages handled (`entity_type`, `outcome`: the answer given). */
export const entityMessages = Metric.counter("effect-cluster.entity.messages", {
  description: "entity messages handled",
  incremental: true
})
