/**
 * The operator API: what the command-line tool and the dashboard ask a store — list and count
 * executions, read one as a timeline, export its journal, steer it (resume, interrupt, signal),
 * look at the pods and shards, an entity, the dead letters.
 *
 * It works on the store only (`DurableExecutionJournal`, and the `ShardStore` and `EntityStore`
 * when the store has them): no workflow code, no engine, no pod. So steering is a store write that
 * the engine owning the execution picks up, wherever it runs: the same writes an engine makes for
 * an execution another pod owns (a status change or a signal, with an entry in the owning shard's
 * inbox). When no engine runs, the next one to start acts on them (it resumes `running`
 * executions and delivers what waits in the inboxes).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Admin } from "effect-cluster"
 *
 * const program = Effect.gen(function* () {
 *   const admin = yield* Admin.Admin
 *   const page = yield* admin.executions({ status: "suspended", limit: 20 })
 *   for (const execution of page.executions) yield* admin.resume(execution.executionId)
 * })
 * program.pipe(Effect.provide(Admin.layerFile(".data/journal.db")))
 * ```
 */
import { existsSync, statSync } from "node:fs"
import { Clock, Context, Effect, Layer, Option, Result } from "effect"
import { parseStored } from "../internal/codec.ts"
import type { EntityStoreError } from "../sharding/EntityStore.ts"
import { EntityStore } from "../sharding/EntityStore.ts"
import { shardOf } from "../sharding/ShardId.ts"
import type { ShardStoreError } from "../sharding/ShardingErrors.ts"
import { ShardStore } from "../sharding/ShardStore.ts"
import * as SqliteJournal from "../storage/sqlite/SqliteJournal.ts"
import {
  DurableExecutionJournal,
  type ExecutionRecord,
  ExecutionStatus as ExecutionStatusSchema,
  isFinal,
  type StatusChange
} from "../workflow/DurableExecutionJournal.ts"
import { invalidIdentifier } from "../workflow/internal/identifier.ts"
import type { ExecutionJournal } from "../workflow/JournalExport.ts"
import {
  ExecutionNotFoundError,
  type InvalidIdentifierError,
  type JournalError,
  type SchemaVersionError
} from "../workflow/WorkflowErrors.ts"
import {
  DeadLetterNotFoundError,
  InvalidArgumentError,
  type InvalidCursorError,
  InvalidSignalPayloadError,
  StoreNotFoundError,
  StoreUnavailableError,
  UnsupportedByStoreError
} from "./AdminErrors.ts"
import * as ExecutionTimeline from "./ExecutionTimeline.ts"
import * as Cursor from "./internal/cursor.ts"

/** The most executions (or dead letters) one page returns. */
export const MAX_LIMIT = 1000

/** The page size when none is given. */
export const DEFAULT_LIMIT = 50

/** A query of `executions`. Times are epoch ms of the executions' creation. */
export interface ExecutionsQuery {
  readonly workflow?: string | undefined
  readonly status?: ExecutionStatus | undefined
  /** Created at or after. */
  readonly since?: number | undefined
  /** Created before. */
  readonly until?: number | undefined
  /** Default `newest`. */
  readonly order?: "newest" | "oldest" | undefined
  /** 1..1000, default 50. */
  readonly limit?: number | undefined
  /** The `next` of the previous page (same order). */
  readonly cursor?: string | undefined
}

/** A page of executions, and the cursor of the next one (none: this was the last). */
export interface ExecutionsPage {
  readonly executions: ReadonlyArray<ExecutionTimeline.ExecutionView>
  readonly next: Option.Option<string>
}

/** How many executions are in each status, and in all. */
export interface StatusCounts {
  readonly byStatus: Readonly<Record<ExecutionStatus, number>>
  readonly total: number
}

/** What `resume` did. */
export type ResumeResult =
  | { readonly _tag: "Resumed" }
  /** Only a suspended execution is resumed: a sleeping one wakes on time, others run or are final. */
  | { readonly _tag: "NotSuspended"; readonly status: ExecutionStatus }

/** What `interrupt` did. */
export type InterruptResult =
  /** Stored: the engine that runs the execution (now or at its next start) interrupts it. */
  | { readonly _tag: "InterruptRequested"; readonly status: ExecutionStatus }
  | { readonly _tag: "AlreadyFinal"; readonly status: ExecutionStatus }

/** What `signal` did. */
export type SignalResult =
  /** This call completed the signal (a sleeping execution waiting for it becomes due now). */
  | { readonly _tag: "Completed"; readonly status: ExecutionStatus }
  /** It had been completed before: the first value stays. */
  | { readonly _tag: "AlreadyCompleted"; readonly status: ExecutionStatus }

/** A pod of the cluster, as the store sees it now. */
export interface PodView {
  readonly podId: string
  /** `suspect`: its PostgreSQL session ended but its lease runs; it may still be running. */
  readonly liveness: "live" | "suspect" | "expired" | "gone"
  readonly registeredAt: number
  readonly renewedAt: number
  readonly leaseUntil: number
  /** Since its last renewal (ms). */
  readonly leaseAgeMillis: number
  readonly leaseExpired: boolean
  readonly shardCount: number
  /** Whether it holds the shard manager's lease. */
  readonly manager: boolean
}

/** A shard: its owner, epoch (fencing token) and pending handover. */
export interface ShardView {
  readonly shard: number
  readonly owner: string | null
  readonly epoch: number
  /** The pod it is being handed over to. */
  readonly nextOwner: string | null
  readonly updatedAt: number
}

/** The pods of a store; `clustered: false` for a store without ownership (one process, no pods). */
export interface PodsView {
  readonly clustered: boolean
  readonly pods: ReadonlyArray<PodView>
}

/** The shards of a store; `clustered: false` for a store without ownership. */
export interface ShardsView {
  readonly clustered: boolean
  readonly shards: ReadonlyArray<ShardView>
}

/** A stored message of an entity. */
export interface MessageView {
  readonly messageId: string
  readonly seq: number
  /** The encoded message (JSON value). */
  readonly payload: unknown
  readonly createdAt: number
}

/** An entity: its stored state and its pending messages. */
export interface EntityView {
  readonly entityType: string
  readonly entityId: string
  /** The stored state (JSON value); null when none was stored. */
  readonly state: unknown
  readonly pending: ReadonlyArray<MessageView>
}

/** A dead letter, with the key `replayDeadLetter` takes. */
export interface DeadLetterView {
  /** `type/id/messageId`, each part URI-encoded. */
  readonly key: string
  readonly entityType: string
  readonly entityId: string
  readonly messageId: string
  readonly shard: number
  readonly payload: unknown
  readonly error: string
  readonly createdAt: number
  readonly deadAt: number
}

/** A page of dead letters, oldest first. */
export interface DeadLettersPage {
  readonly deadLetters: ReadonlyArray<DeadLetterView>
  readonly next: Option.Option<string>
}

/** Errors of reading an execution. */
export type LookupError = ExecutionNotFoundError | InvalidIdentifierError | JournalError

/** The operator API (see the module's doc). */
export class Admin extends Context.Service<
  Admin,
  {
    /** A page of executions, newest first unless `order` says otherwise. */
    readonly executions: (
      query?: ExecutionsQuery
    ) => Effect.Effect<ExecutionsPage, InvalidArgumentError | InvalidCursorError | JournalError>
    /** How many executions per status (same filters as `executions`, status aside). */
    readonly counts: (
      query?: Pick<ExecutionsQuery, "workflow" | "since" | "until">
    ) => Effect.Effect<StatusCounts, JournalError>
    /** An execution and every attempt of every step, in order. */
    readonly timeline: (
      executionId: string
    ) => Effect.Effect<ExecutionTimeline.ExecutionTimeline, LookupError>
    /** The journal document `engine.exportJournal` returns (`WorkflowTest.replay` reads it). */
    readonly exportJournal: (executionId: string) => Effect.Effect<ExecutionJournal, LookupError>
    /** Resumes a suspended execution. */
    readonly resume: (executionId: string) => Effect.Effect<ResumeResult, LookupError | ShardStoreError>
    /** Requests the interruption of an execution (its compensations run, then it is `interrupted`). */
    readonly interrupt: (executionId: string) => Effect.Effect<InterruptResult, LookupError | ShardStoreError>
    /**
     * Completes the signal `name` of an execution with `payloadJson` (JSON text, stored as the
     * signal's encoded value: the workflow decodes it with the signal's schema when it receives it).
     */
    readonly signal: (
      executionId: string,
      name: string,
      payloadJson: string
    ) => Effect.Effect<SignalResult, LookupError | InvalidSignalPayloadError | ShardStoreError>
    /** The pods, with their leases and shard counts. */
    readonly pods: () => Effect.Effect<PodsView, ShardStoreError>
    /** The shards, with their owners and epochs. */
    readonly shards: () => Effect.Effect<ShardsView, ShardStoreError>
    /** An entity's state and pending messages. */
    readonly entity: (
      entityType: string,
      entityId: string,
      options?: { readonly limit?: number | undefined }
    ) => Effect.Effect<EntityView, UnsupportedByStoreError | InvalidArgumentError | EntityStoreError>
    /** A page of dead letters, oldest first. */
    readonly deadLetters: (query?: {
      readonly entityType?: string | undefined
      readonly limit?: number | undefined
      readonly cursor?: string | undefined
    }) => Effect.Effect<
      DeadLettersPage,
      UnsupportedByStoreError | InvalidArgumentError | InvalidCursorError | EntityStoreError
    >
    /** Makes a dead letter pending again, so its entity's owner processes it anew. */
    readonly replayDeadLetter: (
      key: string
    ) => Effect.Effect<
      void,
      UnsupportedByStoreError | InvalidArgumentError | DeadLetterNotFoundError | EntityStoreError
    >
  }
>()("effect-cluster/admin/Admin") {}

/** The key of a dead letter: its type, entity id and message id, each URI-encoded, joined by `/`. */
export const deadLetterKey = (key: {
  readonly entityType: string
  readonly entityId: string
  readonly messageId: string
}): string => [key.entityType, key.entityId, key.messageId].map(encodeURIComponent).join("/")

const parseDeadLetterKey = (key: string) => {
  const parts = key.split("/")
  const invalid = new InvalidArgumentError({
    argument: "dead letter key",
    value: key,
    expected: "TYPE/ENTITY_ID/MESSAGE_ID as `dead-letters list` prints it"
  })
  if (parts.length !== 3 || parts.some((part) => part === "")) return Result.fail(invalid)
  try {
    // Three parts: checked just above.
    const [entityType, entityId, messageId] = parts.map(decodeURIComponent) as [string, string, string]
    return Result.succeed({ entityType, entityId, messageId })
  } catch {
    return Result.fail(invalid)
  }
}

const checkLimit = (limit: number | undefined, fallback: number) =>
  limit === undefined
    ? Effect.succeed(fallback)
    : Number.isInteger(limit) && limit >= 1 && limit <= MAX_LIMIT
      ? Effect.succeed(limit)
      : Effect.fail(
          new InvalidArgumentError({
            argument: "limit",
            value: String(limit),
            expected: `an integer from 1 to ${MAX_LIMIT}`
          })
        )

type ExecutionStatus = typeof ExecutionStatusSchema.Type

const STATUSES: ReadonlyArray<ExecutionStatus> = ExecutionStatusSchema.literals

/** The operator API on the stores in context (the journal; the shard and entity stores if present). */
export const make: Effect.Effect<Admin["Service"], never, DurableExecutionJournal> = Effect.gen(function* () {
  const journal = yield* DurableExecutionJournal
  const shardStore = Option.getOrUndefined(yield* Effect.serviceOption(ShardStore))
  const entityStore = Option.getOrUndefined(yield* Effect.serviceOption(EntityStore))

  const getRow = (executionId: string): Effect.Effect<ExecutionRecord, LookupError> =>
    Effect.gen(function* () {
      const invalid = invalidIdentifier("execution id", executionId, null)
      if (invalid !== undefined) return yield* invalid
      const row = yield* journal.get(executionId)
      if (Option.isNone(row)) return yield* new ExecutionNotFoundError({ executionId })
      return row.value
    })

  /** The journal document of an execution (its row, steps and failed attempts): three reads. */
  const exportJournal = (executionId: string): Effect.Effect<ExecutionJournal, LookupError> =>
    Effect.gen(function* () {
      const execution = yield* getRow(executionId)
      const steps = yield* journal.steps(executionId)
      const attempts = yield* journal.attempts(executionId)
      return { format: "effect-cluster/execution-journal", version: 1, execution, steps, attempts } as const
    })

  /**
   * The shard whose owner must hear of a change to `executionId`: none without ownership, or while
   * no pod ever took the shards (then the first engine to start finds the change in the rows).
   */
  let shardCount: number | undefined
  const ownerShard = (executionId: string): Effect.Effect<number | undefined, ShardStoreError> =>
    Effect.gen(function* () {
      if (shardStore === undefined) return undefined
      if (shardCount === undefined) {
        // Not read, the owner would not hear of the change: fail rather than store it silently.
        const shards = yield* shardStore.shards
        if (shards.length > 0) shardCount = shards.length
      }
      return shardCount === undefined ? undefined : shardOf(executionId, shardCount)
    })

  /** A status change any pod may make, with an entry in the owner's inbox (the engine's `changeStatus`). */
  const changeStatus = (executionId: string, status: StatusChange) =>
    Effect.gen(function* () {
      const notify = yield* ownerShard(executionId)
      const now = yield* Clock.currentTimeMillis
      yield* journal.write({ executionId, outcomes: [], status, notify, now }).pipe(
        // Unfenced writes are never refused for their epoch.
        Effect.catchTag("StaleEpochError", (error) => Effect.die(error))
      )
    })

  const needEntities = (operation: string) =>
    entityStore === undefined
      ? Effect.fail(
          new UnsupportedByStoreError({
            operation,
            detail: "this store has no entity store (entities' messages and states)"
          })
        )
      : Effect.succeed(entityStore)

  return Admin.of({
    executions: (query = {}) =>
      Effect.gen(function* () {
        const limit = yield* checkLimit(query.limit, DEFAULT_LIMIT)
        const order = query.order ?? "newest"
        const position =
          query.cursor === undefined
            ? undefined
            : yield* Effect.fromResult(Cursor.decodeExecutions(order, query.cursor))
        const rows = yield* journal.list({
          workflow: query.workflow,
          status: query.status,
          createdSince: query.since,
          createdUntil: query.until,
          order,
          position,
          // One more than asked: a next page is announced only when there is one.
          limit: limit + 1
        })
        const page = rows.slice(0, limit)
        const last = page[page.length - 1]
        return {
          executions: page.map(ExecutionTimeline.executionView),
          next:
            rows.length > limit && last !== undefined
              ? Option.some(Cursor.encodeExecutions(order, last))
              : Option.none()
        }
      }),
    counts: (query = {}) =>
      Effect.map(
        journal.count({ workflow: query.workflow, createdSince: query.since, createdUntil: query.until }),
        (counts) => {
          // Every status is a key: built from the full list.
          const byStatus = Object.fromEntries(STATUSES.map((status) => [status, 0])) as Record<
            ExecutionStatus,
            number
          >
          for (const { status, count } of counts) byStatus[status] = count
          return { byStatus, total: counts.reduce((sum, { count }) => sum + count, 0) }
        }
      ),
    timeline: (executionId) => Effect.map(exportJournal(executionId), ExecutionTimeline.fromJournal),
    exportJournal: (executionId) => exportJournal(executionId),
    resume: (executionId) =>
      Effect.gen(function* () {
        const row = yield* getRow(executionId)
        if (row.status !== "suspended") return { _tag: "NotSuspended", status: row.status } as const
        yield* changeStatus(executionId, { _tag: "Resume" })
        return { _tag: "Resumed" } as const
      }),
    interrupt: (executionId) =>
      Effect.gen(function* () {
        const row = yield* getRow(executionId)
        if (isFinal(row.status)) return { _tag: "AlreadyFinal", status: row.status } as const
        yield* changeStatus(executionId, { _tag: "RequestInterrupt" })
        // A parked execution has no run to deliver it to: make it run (as `engine.interrupt` does),
        // it replays and is interrupted at its first step without a recorded outcome.
        if (row.status === "suspended" || row.status === "sleeping") {
          yield* changeStatus(executionId, { _tag: "Resume" })
        }
        const after = yield* getRow(executionId)
        return isFinal(after.status)
          ? ({ _tag: "AlreadyFinal", status: after.status } as const)
          : ({ _tag: "InterruptRequested", status: after.status } as const)
      }),
    signal: (executionId, name, payloadJson) =>
      Effect.gen(function* () {
        const invalid = invalidIdentifier("signal name", name, null)
        if (invalid !== undefined) return yield* invalid
        let payload: string
        try {
          payload = JSON.stringify(JSON.parse(payloadJson))
        } catch (error) {
          return yield* new InvalidSignalPayloadError({
            executionId,
            signal: name,
            detail: error instanceof Error ? error.message : String(error)
          })
        }
        const row = yield* getRow(executionId)
        const notify = yield* ownerShard(executionId)
        const now = yield* Clock.currentTimeMillis
        const stored = yield* journal.signal({ executionId, name, payload, notify, now })
        return { _tag: stored ? "Completed" : "AlreadyCompleted", status: row.status } as const
      }),
    pods: () =>
      Effect.gen(function* () {
        if (shardStore === undefined) return { clustered: false, pods: [] }
        const pods = yield* shardStore.pods
        const shards = yield* shardStore.shards
        const manager = yield* shardStore.manager
        const now = yield* Clock.currentTimeMillis
        return {
          clustered: true,
          pods: pods.map((pod) => ({
            podId: pod.podId,
            liveness: pod.liveness,
            registeredAt: pod.registeredAt,
            renewedAt: pod.renewedAt,
            leaseUntil: pod.leaseUntil,
            leaseAgeMillis: Math.max(0, now - pod.renewedAt),
            leaseExpired: pod.liveness === "expired" || pod.liveness === "gone",
            shardCount: shards.filter((shard) => shard.owner === pod.podId).length,
            manager: manager?.podId === pod.podId
          }))
        }
      }),
    shards: () =>
      Effect.gen(function* () {
        if (shardStore === undefined) return { clustered: false, shards: [] }
        const shards = yield* shardStore.shards
        return {
          clustered: true,
          shards: shards.map((shard) => ({
            shard: shard.shard,
            owner: shard.owner,
            epoch: shard.epoch,
            nextOwner: shard.nextOwner,
            updatedAt: shard.updatedAt
          }))
        }
      }),
    entity: (entityType, entityId, options = {}) =>
      Effect.gen(function* () {
        const store = yield* needEntities("entities show")
        const limit = yield* checkLimit(options.limit, DEFAULT_LIMIT)
        const state = yield* store.state({ entityType, entityId })
        const pending = yield* store.pendingOf({ entityType, entityId }, limit)
        return {
          entityType,
          entityId,
          state: parseStored(state),
          pending: pending.map((message) => ({
            messageId: message.messageId,
            seq: message.seq,
            payload: parseStored(message.payload),
            createdAt: message.createdAt
          }))
        }
      }),
    deadLetters: (query = {}) =>
      Effect.gen(function* () {
        const store = yield* needEntities("dead letters")
        const limit = yield* checkLimit(query.limit, DEFAULT_LIMIT)
        const afterSeq =
          query.cursor === undefined
            ? undefined
            : yield* Effect.fromResult(Cursor.decodeDeadLetters(query.cursor))
        const rows = yield* store.deadLetters({ entityType: query.entityType, afterSeq, limit: limit + 1 })
        const page = rows.slice(0, limit)
        const last = page[page.length - 1]
        return {
          deadLetters: page.map((letter) => ({
            key: deadLetterKey(letter),
            entityType: letter.entityType,
            entityId: letter.entityId,
            messageId: letter.messageId,
            shard: letter.shard,
            payload: parseStored(letter.payload),
            error: letter.error,
            createdAt: letter.createdAt,
            deadAt: letter.deadAt
          })),
          next:
            rows.length > limit && last !== undefined
              ? Option.some(Cursor.encodeDeadLetters(last.seq))
              : Option.none()
        }
      }),
    replayDeadLetter: (key) =>
      Effect.gen(function* () {
        const store = yield* needEntities("dead letters replay")
        const messageKey = yield* Effect.fromResult(parseDeadLetterKey(key))
        const now = yield* Clock.currentTimeMillis
        const replayed = yield* store.replay(messageKey, now)
        if (!replayed) return yield* new DeadLetterNotFoundError({ key })
      })
  })
})

/** The operator API on the journal in context (and the shard and entity stores, if provided). */
export const layer: Layer.Layer<Admin, never, DurableExecutionJournal> = Layer.effect(Admin, make)

/** Options of the store layers for tools. */
export interface StoreOptions {
  /** Prefix of the table names. Default `effect_cluster_`. */
  readonly tablePrefix?: string | undefined
  /**
   * Apply the store's migrations if it is older than this build (the CLI's `--migrate`). Default
   * false: a tool never changes a store's schema on its own; a store that is not at this build's
   * schema version (or a prefix with no tables) fails with `SchemaVersionError`, changing nothing.
   */
  readonly migrate?: boolean | undefined
}

/**
 * The operator API on an embedded store (a SQLite file an engine created). The file must exist:
 * a tool never creates an empty store because of a typo in a path. Its schema is checked, not
 * migrated, unless `migrate: true`.
 */
export const layerFile = (
  path: string,
  options: StoreOptions = {}
): Layer.Layer<Admin, StoreNotFoundError | StoreUnavailableError | SchemaVersionError> =>
  Layer.unwrap(
    Effect.suspend(
      (): Effect.Effect<
        Layer.Layer<Admin, StoreUnavailableError | SchemaVersionError>,
        StoreNotFoundError | StoreUnavailableError
      > => {
        if (!existsSync(path)) return Effect.fail(new StoreNotFoundError({ path }))
        if (!statSync(path).isFile()) {
          return Effect.fail(new StoreUnavailableError({ store: path, detail: "it is not a file" }))
        }
        return Effect.succeed(
          layer.pipe(
            Layer.provide(
              (options.migrate === true ? SqliteJournal.layer : SqliteJournal.layerExisting)({
                filename: path,
                tablePrefix: options.tablePrefix
              })
            ),
            Layer.catchTag("JournalError", (error) =>
              Layer.effect(
                Admin,
                Effect.fail(new StoreUnavailableError({ store: path, detail: error.message }))
              )
            )
          )
        )
      }
    )
  )
