/**
 * In-memory `DurableExecutionJournal`, for tests and examples.
 *
 * Same semantics as the durable backends (first-writer-wins outcomes, final statuses never
 * change), but nothing survives the process. To simulate an engine restart in a test, build one
 * journal with `make` and provide it to two engines in turn.
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
import { Effect, Layer, Option } from "effect"
import {
  type AttemptRecord,
  applyStatusChange,
  DurableExecutionJournal,
  type ExecutionRecord,
  newExecutionRecord,
  type StepRecord
} from "../../workflow/DurableExecutionJournal.ts"
import type { ExecutionJournal } from "../../workflow/JournalExport.ts"

/** Builds a fresh, empty in-memory journal. */
export const make: Effect.Effect<DurableExecutionJournal["Service"]> = Effect.sync(() => build())

/**
 * A journal holding one exported execution (see `JournalExport`), as it was stored: to replay it
 * (`WorkflowTest.replay`) or to resume it in a test.
 */
export const fromExport = (journal: ExecutionJournal): Effect.Effect<DurableExecutionJournal["Service"]> =>
  Effect.sync(() => build(journal))

const attemptKey = (attempt: AttemptRecord) =>
  `${attempt.executionId}\u0000${attempt.stepKey}\u0000${attempt.attempt}`

const build = (initial?: ExecutionJournal): DurableExecutionJournal["Service"] => {
  const executions = new Map<string, ExecutionRecord>()
  const steps = new Map<string, Map<string, StepRecord>>()
  const signals = new Map<string, string>()
  const attempts = new Map<string, AttemptRecord>()
  if (initial !== undefined) {
    executions.set(initial.execution.executionId, initial.execution)
    steps.set(initial.execution.executionId, new Map(initial.steps.map((step) => [step.stepKey, step])))
    for (const attempt of initial.attempts) attempts.set(attemptKey(attempt), attempt)
  }
  const listeners = new Set<(wakeAt: number) => void>()
  /** Tells the engines on this journal that an execution will be due at `wakeAt`. */
  const announce = (row: ExecutionRecord | undefined) => {
    if (row?.status !== "sleeping" || row.wakeAt === null) return
    for (const listener of listeners) listener(row.wakeAt)
  }
  const stepsOf = (executionId: string) => {
    let map = steps.get(executionId)
    if (map === undefined) {
      map = new Map()
      steps.set(executionId, map)
    }
    return map
  }
  return DurableExecutionJournal.of({
    start: (execution) =>
      Effect.sync(() => {
        const existing = executions.get(execution.executionId)
        if (existing !== undefined) return { created: false, execution: existing }
        const row = newExecutionRecord(execution)
        executions.set(row.executionId, row)
        return { created: true, execution: row }
      }),
    get: (executionId) => Effect.sync(() => Option.fromNullishOr(executions.get(executionId))),
    steps: (executionId) =>
      Effect.sync(() => [...stepsOf(executionId).values()].sort((a, b) => a.seq - b.seq)),
    write: (write) =>
      Effect.sync(() => {
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
            completedAt: write.now
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
              completedAt: null
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
      }),
    listRunning: Effect.sync(() =>
      [...executions.values()]
        .filter((row) => row.status === "running")
        .sort((a, b) => a.createdAt - b.createdAt)
    ),
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
        return true
      }),
    attempts: (executionId) =>
      Effect.sync(() =>
        [...attempts.values()]
          .filter((a) => a.executionId === executionId)
          .sort((a, b) => (a.stepKey < b.stepKey ? -1 : a.stepKey > b.stepKey ? 1 : a.attempt - b.attempt))
      ),
    list: (query) =>
      Effect.sync(() =>
        [...executions.values()]
          .filter(
            (row) =>
              (query.workflow === undefined || row.workflow === query.workflow) &&
              (query.status === undefined || row.status === query.status) &&
              (query.after === undefined || row.executionId > query.after)
          )
          .sort((a, b) => (a.executionId < b.executionId ? -1 : a.executionId > b.executionId ? 1 : 0))
          .slice(0, query.limit)
      ),
    heartbeat: (heartbeat) =>
      Effect.sync(() => {
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
    listDue: (now, limit) =>
      Effect.sync(() => {
        const sleeping = [...executions.values()]
          .filter((row) => row.status === "sleeping" && row.wakeAt !== null)
          .sort((a, b) => (a.wakeAt ?? 0) - (b.wakeAt ?? 0))
        return {
          due: sleeping.filter((row) => (row.wakeAt ?? 0) <= now).slice(0, limit),
          nextWakeAt: sleeping[0]?.wakeAt ?? null
        }
      })
  })
}

/** A fresh in-memory journal per layer build. */
export const layer: Layer.Layer<DurableExecutionJournal> = Layer.effect(DurableExecutionJournal, make)
