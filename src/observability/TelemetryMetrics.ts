/**
 * The metrics effect-cluster records when telemetry is on (`Telemetry.layer` or
 * `Telemetry.enabled`), as effect `Metric`s: read them with `Metric.value`, `Metric.snapshot`, or
 * export them with `Telemetry.layer` (OTLP). With telemetry off nothing is recorded.
 *
 * Durations are in milliseconds, by effect's `Clock` (so `TestClock` in tests).
 */
import * as Definitions from "./internal/metricDefinitions.ts"

/** Executions whose first run started (attribute `workflow`). */
export const executionsStarted = Definitions.executionsStarted()

/** Runs of executions that had recorded steps: after a resume, a crash, a restart (`workflow`). */
export const executionsResumed = Definitions.executionsResumed()

/** Executions that succeeded (`workflow`). */
export const executionsCompleted = Definitions.executionsCompleted()

/** Executions that failed or were interrupted (`workflow`, `status`: failed | interrupted). */
export const executionsFailed = Definitions.executionsFailed()

/** Executions suspended: they wait for `engine.resume` (`workflow`). */
export const executionsSuspended = Definitions.executionsSuspended()

/** How long activity attempts took (marker write and body), in ms (`workflow`, `activity`, `outcome`). */
export const activityDuration = Definitions.activityDuration()

/** Failed attempts that will be retried (`workflow`, `activity`). */
export const activityRetries = Definitions.activityRetries()

/** How long a group commit of the SQL stores took, in ms (`store`: journal, entity-messages, entity-owner). */
export const commitDuration = Definitions.commitDuration()

/** How many writes a group commit carried (`store`: journal, entity-messages, entity-owner). */
export const commitBatchSize = Definitions.commitBatchSize()

/** Shards this pod acquired, lost or handed over (`pod`, `move`: acquired | lost | handed_over). */
export const shardMoves = Definitions.shardMoves()

/** Lease renewals of this pod (`pod`, `result`: ok | failed). */
export const leaseRenewals = Definitions.leaseRenewals()

/** Entity messages handled (`entity_type`, `outcome`: the answer given). */
export const entityMessages = Definitions.entityMessages()
