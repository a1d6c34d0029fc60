/**
 * In-memory `DurableExecutionJournal`, for tests and examples.
 *
 * Same semantics as the durable backends (first-writer-wins outcomes, final statuses never
 * change), but nothing survives the process. To simulate an engine restart in a test, build one
 * journal with `make` and provide it to two engines in turn.
 *
 * `make` and `layer` are a journal without ownership: one process, whose engine runs every shard
 * unfenced. `makeCluster` and `layerCluster` add a `ShardStore` sharing the journal's state, so that
 * several engines (pods) in one process can own shards and fence their writes: fast in-process
 * ownership tests. Both layers also provide an `EntityStore` (`MemoryEntityStore`): unfenced with
 * `layer`, fenced against the shared shards with `layerCluster`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { MemoryJournal, WorkflowEngine } from "effect-cluster"
 *
 * const program = Effect.scoped(WorkflowEngine.makeScoped(workflows)).pipe(
 *   Effect.provide(MemoryJournal.layer)
 * )
 * ```
 */
import { Clock, Context, Effect, Layer, Option } from "effect"
import { EntityStore } from "../../sharding/EntityStore.ts"
import { StaleEpochError } from "../../sharding/ShardingErrors.ts"
import { ShardStore } from "../../sharding/ShardStore.ts"
import {
  type AttemptRecord,
  applyStatusChange,
  DurableExecutionJournal,
  type ExecutionRecord,
  type ExecutionStatus,
  type Fence,
  type InboxEntry,
  matchesQuery,
  newExecutionRecord,
  type StepRecord
} from "../../workflow/DurableExecutionJournal.ts"
import type { ExecutionJournal } from "../../workflow/JournalExport.ts"
import * as Ownership from "./internal/ownership.ts"
import * as MemoryEntityStore from "./MemoryEntityStore.ts"
import * as MemoryShardStore from "./MemoryShardStore.ts"

/**
 * Builds a fresh, empty in-memory journal without ownership (see `makeCluster`): its engine runs
 * every shard and writes unfenced. It has no shards, so a write that carries a fence is refused.
 */
export const make: Effect.Effect<DurableExecutionJournal["Service"]> = Effect.sync(() => build())

/** A memory journal, the shard store that shares its state, and an entity store fenced by it. */
export interface MemoryCluster {
  readonly journal: DurableExecutionJournal["Service"]
  readonly shards: ShardStore["Service"]
  readonly entities: EntityStore["Service"]
}

/**
 * A fresh in-memory store with ownership: the journal and the entity store fence writes against the
 * shard epochs of `shards`. Give them to several engines of one process to test ownership without a
 * database. Leases follow the `Clock` of the fiber that makes it (a `TestClock` in a test), whatever
 * clock each engine has.
 *
 * @example
 * ```ts
 * const { journal, shards, entities } = yield* MemoryJournal.makeCluster
 * yield* shards.init(16)
 * ```
 */
export const makeCluster: Effect.Effect<MemoryCluster> = Clock.clockWith((clock) =>
  Effect.sync(() => {
    const ownership = Ownership.make()
    return {
      journal: build(undefined, ownership),
      shards: MemoryShardStore.make(ownership, clock),
      entities: MemoryEntityStore.make(ownership)
    }
  })
)

/**
 * A journal holding one exported execution (see `JournalExport`), as it was stored: to replay it
 * (`WorkflowTest.replay`) or to resume it in a test.
 */
export const fromExport = (journal: ExecutionJournal): Effect.Effect<DurableExecutionJournal["Service"]> =>
  Effect.sync(() => build(journal))

const attemptKey = (attempt: AttemptRecord) =>
  `${attempt.executionId}\u0000${attempt.stepKey}\u0000${attempt.attempt}`

const byExecutionId = (a: ExecutionRecord, b: ExecutionRecord) =>
  a.executionId < b.executionId ? -1 : a.executionId > b.executionId ? 1 : 0

/** Oldest first, ties by execution id (the order of `list` with `oldest`). */
const byCreation = (a: ExecutionRecord, b: ExecutionRecord) =>
  a.createdAt - b.createdAt || byExecutionId(a, b)

const build = (
  initial?: ExecutionJournal,
  ownership: Ownership.Ownership = Ownership.make()
): DurableExecutionJournal["Service"] => {
  const executions = new Map<string, ExecutionRecord>()
  const steps = new Map<string, Map<string, StepRecord>>()
  const signals = new Map<string, string>()
  const attempts = new Map<string, AttemptRecord>()
  if (initial !== undefined) {
    executions.set(initial.execution.executionId, initial.execution)
    ownership.executionShards.set(initial.execution.executionId, undefined)
    steps.set(initial.execution.executionId, new Map(initial.steps.map((step) => [step.stepKey, step])))
    for (const attempt of initial.attempts) attempts.set(attemptKey(attempt), attempt)
  }
  const listeners = new Set<(wakeAt: number) => void>()
  /** Tells the engines on this journal that an execution will be due at `wakeAt`. */
  const announce = (row: ExecutionRecord | undefined) => {
    if (row?.status !== "sleeping" || row.wakeAt === null) return
    for (const listener of listeners) listener(row.wakeAt)
  }
  /** The fence's shard epoch, when it is not the stored one (null: the shard has no row). */
  const staleEpoch = (fence: Fence | undefined): { readonly current: number | null } | undefined => {
    if (fence === undefined) return undefined
    const current = Ownership.currentEpoch(ownership, fence.shard)
    return current === fence.epoch ? undefined : { current }
  }
  const inShards = (shards: ReadonlyArray<number> | undefined) => {
    if (shards === undefined) return () => true
    const set = new Set(shards)
    return (row: ExecutionRecord) => {
      const shard = ownership.executionShards.get(row.executionId)
      return shard !== undefined && set.has(shard)
    }
  }
  const stepsOf = (executionId: string) => {
    let map = steps.get(executionId)
    if (map === undefined) {
      map = new Map()
      steps.set(executionId, map)
    }
    return map
  }
  /** The steps of an execution, by seq. */
  const bySeq = (executionId: string) =>
    [...(steps.get(executionId)?.values() ?? [])].sort((a, b) => a.seq - b.seq)
  return DurableExecutionJournal.of({
    start: (execution) =>
      Effect.sync(() => {
        const existing = executions.get(execution.executionId)
        if (existing !== undefined) return { created: false, execution: existing }
        const row = newExecutionRecord(execution)
        executions.set(row.executionId, row)
        // `shard` is required by the port; an engine that predates it leaves it out.
        ownership.executionShards.set(row.executionId, execution.shard as number | undefined)
        if (execution.notify === true) Ownership.notify(ownership, execution.shard, row.executionId)
        return { created: true, execution: row }
      }),
    get: (executionId) => Effect.sync(() => Option.fromNullishOr(executions.get(executionId))),
    steps: (executionId) => Effect.sync(() => bySeq(executionId)),
    stepsMany: (executionIds) => Effect.sync(() => [...new Set(executionIds)].flatMap(bySeq)),
    write: (write) =>
      Effect.suspend(() => {
        const stale = staleEpoch(write.fence)
        if (stale !== undefined && write.fence !== undefined) {
          return Effect.fail(
            new StaleEpochError({
              executionId: write.executionId,
              shard: write.fence.shard,
              epoch: write.fence.epoch,
              currentEpoch: stale.current
            })
          )
        }
        const map = stepsOf(write.executionId)
        for (const outcome of write.outcomes) {
          const existing = map.get(outcome.stepKey)
          if (existing?.outcome != null) continue
          map.set(outcome.stepKey, {
            executionId: outcome.executionId,
            stepKey: outcome.stepKey,
            activityId: outcome.activityId,
            seq: outcome.seq,
            previous: outcome.previous,
            attempt: outcome.attempt,
            outcome: outcome.outcome,
            heartbeat: existing?.heartbeat ?? null,
            startedAt: existing?.startedAt ?? write.now,
            completedAt: write.now,
            attemptStartedAt: existing?.attemptStartedAt ?? null,
            completedAfter: outcome.completedAfter ?? null
          })
        }
        const attempt = write.attempt
        if (attempt !== undefined) {
          const existing = map.get(attempt.stepKey)
          if (existing?.outcome == null) {
            map.set(attempt.stepKey, {
              ...attempt,
              outcome: null,
              heartbeat: existing?.heartbeat ?? null,
              startedAt: existing?.startedAt ?? write.now,
              completedAt: null,
              attemptStartedAt: write.now,
              completedAfter: null
            })
          }
        }
        for (const failed of write.failedAttempts ?? []) {
          const key = attemptKey(failed)
          if (!attempts.has(key)) attempts.set(key, failed)
        }
        const row = executions.get(write.executionId)
        if (row !== undefined && write.status !== undefined) {
          const changed = applyStatusChange(row, write.status, write.now)
          executions.set(write.executionId, changed)
          if (changed !== row) announce(changed)
        }
        if (write.notify !== undefined) Ownership.notify(ownership, write.notify, write.executionId)
        return Effect.void
      }),
    listRunning: Effect.sync(() =>
      [...executions.values()]
        .filter((row) => row.status === "running")
        .sort((a, b) => a.createdAt - b.createdAt)
    ),
    listUnfinished: ({ shard, after, limit }) =>
      Effect.sync(() =>
        [...executions.values()]
          .filter(
            (row) =>
              row.status === "running" &&
              ownership.executionShards.get(row.executionId) === shard &&
              (after === undefined || row.executionId > after)
          )
          .sort(byExecutionId)
          .slice(0, limit)
      ),
    getMany: (executionIds) =>
      Effect.sync(() =>
        [...new Set(executionIds)].flatMap((id) => {
          const row = executions.get(id)
          return row === undefined ? [] : [row]
        })
      ),
    takeInbox: (shards, limit) =>
      Effect.sync(() => {
        const wanted = new Set(shards)
        const taken: Array<InboxEntry> = []
        for (const [id, entry] of ownership.inbox) {
          if (taken.length >= limit) break
          if (!wanted.has(entry.shard)) continue
          ownership.inbox.delete(id)
          taken.push(entry)
        }
        return taken
      }),
    signal: (signal) =>
      Effect.sync(() => {
        const key = `${signal.executionId}\u0000${signal.name}`
        const row = executions.get(signal.executionId)
        if (
          row !== undefined &&
          row.status === "sleeping" &&
          (row.wakeAt === null || row.wakeAt > signal.now)
        ) {
          const due = { ...row, wakeAt: signal.now, updatedAt: signal.now }
          executions.set(signal.executionId, due)
          announce(due)
        }
        if (signals.has(key)) return false
        signals.set(key, signal.payload)
        if (signal.notify !== undefined) Ownership.notify(ownership, signal.notify, signal.executionId)
        return true
      }),
    attempts: (executionId) =>
      Effect.sync(() =>
        [...attempts.values()]
          .filter((a) => a.executionId === executionId)
          .sort((a, b) => (a.stepKey < b.stepKey ? -1 : a.stepKey > b.stepKey ? 1 : a.attempt - b.attempt))
      ),
    list: (query) =>
      Effect.sync(() => {
        const order = query.order ?? "id"
        const compare =
          order === "id"
            ? byExecutionId
            : order === "oldest"
              ? byCreation
              : (a: ExecutionRecord, b: ExecutionRecord) => byCreation(b, a)
        const position = query.position
        return [...executions.values()]
          .filter(
            (row) =>
              matchesQuery(row, query) &&
              (order !== "id" || query.after === undefined || row.executionId > query.after) &&
              (order === "id" ||
                position === undefined ||
                compare(row, { ...row, createdAt: position.createdAt, executionId: position.executionId }) >
                  0)
          )
          .sort(compare)
          .slice(0, query.limit)
      }),
    count: (query) =>
      Effect.sync(() => {
        const counts = new Map<ExecutionStatus, number>()
        for (const row of executions.values()) {
          if (matchesQuery(row, query)) counts.set(row.status, (counts.get(row.status) ?? 0) + 1)
        }
        return [...counts].map(([status, count]) => ({ status, count }))
      }),
    heartbeat: (heartbeat) =>
      Effect.sync(() => {
        // Advisory: a heartbeat of a pod that no longer owns the shard is dropped silently.
        if (staleEpoch(heartbeat.fence) !== undefined) return
        const map = stepsOf(heartbeat.executionId)
        const existing = map.get(heartbeat.stepKey)
        if (existing !== undefined && existing.outcome === null) {
          map.set(heartbeat.stepKey, { ...existing, heartbeat: heartbeat.details })
        }
      }),
    wakeups: (listener) => {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
    getSignal: (executionId, name) =>
      Effect.sync(() => Option.fromNullishOr(signals.get(`${executionId}\u0000${name}`))),
    listDue: (now, limit, shards) =>
      Effect.sync(() => {
        const owned = inShards(shards)
        const sleeping = [...executions.values()]
          .filter((row) => row.status === "sleeping" && row.wakeAt !== null && owned(row))
          .sort((a, b) => (a.wakeAt ?? 0) - (b.wakeAt ?? 0))
        return {
          due: sleeping.filter((row) => (row.wakeAt ?? 0) <= now).slice(0, limit),
          nextWakeAt: sleeping[0]?.wakeAt ?? null
        }
      })
  })
}

/**
 * A fresh in-memory journal and entity store per layer build (no ownership: see `layerCluster`;
 * the entity store accepts only unfenced writes).
 */
export const layer: Layer.Layer<DurableExecutionJournal | EntityStore> = Layer.effectContext(
  Effect.map(make, (journal) =>
    Context.make(DurableExecutionJournal, journal).pipe(Context.add(EntityStore, MemoryEntityStore.make()))
  )
)

/**
 * A fresh in-memory journal, its `ShardStore` and its `EntityStore` per layer build (see
 * `makeCluster`). Build it once and provide it to every engine that should share the store.
 */
export const layerCluster: Layer.Layer<DurableExecutionJournal | ShardStore | EntityStore> =
  Layer.effectContext(
    Effect.map(makeCluster, ({ journal, shards, entities }) =>
      Context.make(DurableExecutionJournal, journal).pipe(
        Context.add(ShardStore, shards),
        Context.add(EntityStore, entities)
      )
    )
  )
