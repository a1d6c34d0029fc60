/**
 * effect-cluster: durable workflows for effect 4.
 *
 * @example
 * ```ts
 * import { Activity, DurableExecutionJournal, MemoryJournal, Workflow, WorkflowEngine } from "effect-cluster"
 * ```
 *
 * The PostgreSQL journal is `effect-cluster/postgres` (it needs `@effect/sql-pg`), so that this
 * root imports no database driver.
 */

/**
 * The operator API on a store (no engine needed): list, count and read executions as timelines,
 * export journals, resume / interrupt / signal, pods, shards, entities, dead letters.
 */
export * as Admin from "./admin/Admin.ts"
/** The errors of the operator API and its command-line tool (bad cursor or argument, store not found). */
export * as AdminErrors from "./admin/AdminErrors.ts"
/** An execution as an operator reads it: its row and every attempt of every step, crashes included. */
export * as ExecutionTimeline from "./admin/ExecutionTimeline.ts"
/** Pods over TCP (or TLS) on Node.js: the network the SQLite and PostgreSQL layers turn on. */
export * as NodePodNetwork from "./node/NodePodNetwork.ts"
/** Every run of an execution in one trace, whose ids derive from the execution id. */
export * as ExecutionTrace from "./observability/ExecutionTrace.ts"
/** Spans and metrics, off by default: `Telemetry.layer` exports them over OTLP/HTTP. */
export * as Telemetry from "./observability/Telemetry.ts"
/** The metrics recorded when telemetry is on (executions, activities, commits, shards, leases). */
export * as TelemetryMetrics from "./observability/TelemetryMetrics.ts"
/** The errors of entities and their messenger (malformed, too large, timeout, dead-lettered, ...). */
export * as EntityErrors from "./sharding/EntityErrors.ts"
/** The storage port of entities: messages (de-duplicated by id), replies, states, dead letters. */
export * as EntityStore from "./sharding/EntityStore.ts"
/** This process's pod, shared by the workflow engine and the entities of the process. */
export * as Membership from "./sharding/Membership.ts"
/** Messages of entities; `TaggedRequest` for messages with a typed reply. */
export * as Message from "./sharding/Message.ts"
/** What a behaviour answers for a message: `Processed(reply)` or `Processing`. */
export * as MessageState from "./sharding/MessageState.ts"
/** Sends messages to entities by id, wherever they run: `send` (a typed reply), `sendDiscard`. */
export * as Messenger from "./sharding/Messenger.ts"
/** The direct path between pods: its options (`Membership.layer({ network })`), messages and errors. */
export * as PodNetwork from "./sharding/PodNetwork.ts"
/** The port for a faster path between pods than the store (hints only), and its in-process form. */
export * as PodTransport from "./sharding/PodTransport.ts"
/** The shard manager's planning step: even spread, bounded handovers, dead pods' shards at once. */
export * as Rebalance from "./sharding/Rebalance.ts"
/** What an entity does with its messages: stateless or stateful behaviours. */
export * as RecipientBehaviour from "./sharding/RecipientBehaviour.ts"
/** Entity types: a name, a message schema, a message id; persisted with a state schema. */
export * as RecipientType from "./sharding/RecipientType.ts"
/** The shard of an execution: a stable hash of its id (FNV-1a), the same on every pod. */
export * as ShardId from "./sharding/ShardId.ts"
/** Entities addressed by id on whichever pod owns them: `registerEntity`, `messenger`. */
export * as Sharding from "./sharding/Sharding.ts"
/** The errors of ownership: a stale epoch, a shard count or pod id the store refuses. */
export * as ShardingErrors from "./sharding/ShardingErrors.ts"
/** The storage port of ownership: pods, leases, shards and their epochs. */
export * as ShardStore from "./sharding/ShardStore.ts"
/** In-memory entity store, for tests (fenced when built on a memory cluster's ownership). */
export * as MemoryEntityStore from "./storage/memory/MemoryEntityStore.ts"
/** In-memory journal, for tests. */
export * as MemoryJournal from "./storage/memory/MemoryJournal.ts"
/** The embedded durable store: one SQLite file, no server. */
export * as SqliteJournal from "./storage/sqlite/SqliteJournal.ts"
/** A test kit for your workflows: an engine on `TestClock` and the memory journal, journal replay. */
export * as WorkflowTest from "./testing/WorkflowTest.ts"
/** Side-effecting steps of a workflow, recorded once and retried until they are. */
export * as Activity from "./workflow/Activity.ts"
/** What an activity attempt knows about itself (persistence id, attempt number). */
export * as ActivityContext from "./workflow/ActivityContext.ts"
/** The storage port of executions and activity outcomes. */
export * as DurableExecutionJournal from "./workflow/DurableExecutionJournal.ts"
/** One execution's journal as a JSON document: export it, check it in, replay it in CI. */
export * as JournalExport from "./workflow/JournalExport.ts"
/** Retry policies of activities. */
export * as RetryPolicy from "./workflow/RetryPolicy.ts"
/** Activities paired with compensations that run in reverse order when the saga fails. */
export * as Saga from "./workflow/Saga.ts"
/** Durable external events a workflow waits for (`Signal.receive`, `engine.signal`). */
export * as Signal from "./workflow/Signal.ts"
/** Deterministic coordinators of activities. */
export * as Workflow from "./workflow/Workflow.ts"
/** The context of a running execution (graceful shutdown flag, execution id). */
export * as WorkflowContext from "./workflow/WorkflowContext.ts"
/** Starts, resumes, inspects and interrupts executions. */
export * as WorkflowEngine from "./workflow/WorkflowEngine.ts"
/** The errors of the workflow subsystem. */
export * as WorkflowErrors from "./workflow/WorkflowErrors.ts"
/** Replays a stored execution against the current code without running anything (safe upgrades). */
export * as WorkflowReplay from "./workflow/WorkflowReplay.ts"
