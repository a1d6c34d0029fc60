/**
 * The definitions of effect-cluster's metrics, as factories of one series each: a series made with
 * its attributes keeps its registry key, where `Metric.withAttributes` would serialize the
 * attributes into the key at every update. `TelemetryMetrics` exports each without attributes.
 */
import { Metric } from "effect"

/** Attribute values of one series. */
export type Attributes = Readonly<Record<string, string>> | undefined

const durationBoundaries = Metric.exponentialBoundaries({ start: 0.5, factor: 2, count: 18 })

/** Executions whose first run started (attribute `workflow`). */
export const executionsStarted = (attributes?: Attributes) =>
  Metric.counter("effect-cluster.executions.started", {
    description: "executions whose first run started",
    incremental: true,
    attributes
  })

/** Runs of executions that had recorded steps: after a resume, a crash, a restart (`workflow`). */
export const executionsResumed = (attributes?: Attributes) =>
  Metric.counter("effect-cluster.executions.resumed", {
    description: "runs that resumed an execution with recorded steps",
    incremental: true,
    attributes
  })

/** Executions that succeeded (`workflow`). */
export const executionsCompleted = (attributes?: Attributes) =>
  Metric.counter("effect-cluster.executions.completed", {
    description: "executions that succeeded",
    incremental: true,
    attributes
  })

/** Executions that failed or were interrupted (`workflow`, `status`: failed | interrupted). */
export const executionsFailed = (attributes?: Attributes) =>
  Metric.counter("effect-cluster.executions.failed", {
    description: "executions that ended failed or interrupted",
    incremental: true,
    attributes
  })

/** Executions suspended: they wait for `engine.resume` (`workflow`). */
export const executionsSuspended = (attributes?: Attributes) =>
  Metric.counter("effect-cluster.executions.suspended", {
    description: "executions suspended (waiting for resume)",
    incremental: true,
    attributes
  })

/** How long activity attempts took (marker write and body), in ms (`workflow`, `activity`, `outcome`). */
export const activityDuration = (attributes?: Attributes) =>
  Metric.histogram("effect-cluster.activity.duration", {
    description: "activity attempt duration in milliseconds",
    boundaries: durationBoundaries,
    attributes
  })

/** Failed attempts that will be retried (`workflow`, `activity`). */
export const activityRetries = (attributes?: Attributes) =>
  Metric.counter("effect-cluster.activity.retries", {
    description: "failed activity attempts that are retried",
    incremental: true,
    attributes
  })

/** How long a group commit of the SQL stores took, in ms (`store`: journal, entity-messages, entity-owner). */
export const commitDuration = (attributes?: Attributes) =>
  Metric.histogram("effect-cluster.journal.commit.duration", {
    description: "group commit duration in milliseconds",
    boundaries: durationBoundaries,
    attributes
  })

/** How many writes a group commit carried (`store`: journal, entity-messages, entity-owner). */
export const commitBatchSize = (attributes?: Attributes) =>
  Metric.histogram("effect-cluster.journal.commit.batch_size", {
    description: "writes per group commit",
    boundaries: Metric.exponentialBoundaries({ start: 1, factor: 2, count: 12 }),
    attributes
  })

/** Shards this pod acquired, lost or handed over (`pod`, `move`: acquired | lost | handed_over). */
export const shardMoves = (attributes?: Attributes) =>
  Metric.counter("effect-cluster.shard.moves", {
    description: "shard ownership changes seen by this pod",
    incremental: true,
    attributes
  })

/** Lease renewals of this pod (`pod`, `result`: ok | failed). */
export const leaseRenewals = (attributes?: Attributes) =>
  Metric.counter("effect-cluster.lease.renewals", {
    description: "lease renewals of this pod",
    incremental: true,
    attributes
  })

/** Entity messages handled (`entity_type`, `outcome`: the answer given). */
export const entityMessages = (attributes?: Attributes) =>
  Metric.counter("effect-cluster.entity.messages", {
    description: "entity messages handled",
    incremental: true,
    attributes
  })
