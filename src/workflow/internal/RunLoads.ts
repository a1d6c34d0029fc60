/**
 * What a run reads before it replays: its steps and its row again (the row may have changed since
 * the caller read it). Runs that load at about the same time (a page of a shard taken over, a
 * batch of due timers) share two queries, `stepsMany` and `getMany`, instead of two each: on
 * SQLite a resumed execution's two reads cost more than its own statements' share of a batch.
 *
 * A batch is an optimization only: an execution the batch could not settle (a query failed, its
 * row is missing or did not decode) is loaded alone, as it would have been without the batch, so
 * one bad row or a timed-out read never decides the outcome of the others.
 */
import { Effect, Exit, Option, Result } from "effect"
import * as Batcher from "../../internal/Batcher.ts"
import type { DurableExecutionJournal, ExecutionRecord, StepRecord } from "../DurableExecutionJournal.ts"
import type { JournalError } from "../WorkflowErrors.ts"

/** A run's journal as loaded: its steps (or why they could not be read) and its current row. */
export interface Loaded {
  readonly steps: Result.Result<ReadonlyArray<StepRecord>, JournalError>
  /** The row read again; a failure here is the run's defect, as a failed `get` always was. */
  readonly row: Exit.Exit<Option.Option<ExecutionRecord>>
}

/** The reads a load needs from the journal. */
export type LoadJournal = Pick<DurableExecutionJournal["Service"], "get" | "steps" | "getMany" | "stepsMany">

/** Executions loaded per batch (the engine's loading permits keep batches smaller). */
const MAX_BATCH = 256

/** One execution's journal, read alone. */
export const loadOne = (journal: LoadJournal, executionId: string): Effect.Effect<Loaded> =>
  Effect.map(
    Effect.all([
      Effect.result(journal.steps(executionId)),
      Effect.exit(Effect.orDie(journal.get(executionId)))
    ]),
    ([steps, row]) => ({ steps, row })
  )

/** The journals of `executionIds` (distinct), in their order: two reads, and one alone per miss. */
export const loadMany = (
  journal: LoadJournal,
  executionIds: ReadonlyArray<string>
): Effect.Effect<ReadonlyArray<Loaded>> => {
  const stepsMany = journal.stepsMany
  if (stepsMany === undefined) {
    return Effect.forEach(executionIds, (id) => loadOne(journal, id))
  }
  return Effect.gen(function* () {
    const [steps, rows] = yield* Effect.all([
      Effect.result(stepsMany(executionIds)),
      Effect.result(journal.getMany(executionIds))
    ])
    if (Result.isFailure(steps) || Result.isFailure(rows)) {
      return yield* Effect.forEach(executionIds, (id) => loadOne(journal, id))
    }
    const stepsOf = new Map<string, Array<StepRecord>>()
    for (const step of steps.success) {
      const list = stepsOf.get(step.executionId)
      if (list === undefined) stepsOf.set(step.executionId, [step])
      else list.push(step)
    }
    const rowOf = new Map(rows.success.map((row) => [row.executionId, row]))
    return yield* Effect.forEach(executionIds, (id): Effect.Effect<Loaded> => {
      const row = rowOf.get(id)
      // No row: gone, or left out because it does not decode; `get` alone says which, loudly.
      if (row === undefined) return loadOne(journal, id)
      return Effect.succeed({
        steps: Result.succeed(stepsOf.get(id) ?? []),
        row: Exit.succeed(Option.some(row))
      })
    })
  })
}

/**
 * A loader whose calls made before the scheduler yields share one `loadMany`. Made in the
 * engine's context: its reads run there, never in a run's fiber (whose lease may lapse).
 */
export const make = (journal: LoadJournal): Effect.Effect<(executionId: string) => Effect.Effect<Loaded>> =>
  Batcher.make((ids: ReadonlyArray<string>) => {
    const distinct = [...new Set(ids)]
    if (distinct.length === ids.length) return loadMany(journal, ids)
    return Effect.map(loadMany(journal, distinct), (loaded) => {
      const byId = new Map(distinct.map((id, i) => [id, loaded[i]!]))
      return ids.map((id) => byId.get(id)!)
    })
  }, MAX_BATCH)
