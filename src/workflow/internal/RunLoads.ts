/**
 * What a run reads before it replays: its steps and its row again (the row may have changed since
 * the caller read it). Runs that load at about the same time (a page of a shard taken over, a
 * batch of due timers) share two queries, `stepsMany` and `getMany`, instead of two each: on
 * SQLite a resumed execution's two reads cost more than its own statements' share of a batch.
 *
 * A batch is an optimization only: the executions it could not settle (a read failed or died,
 * a row is missing or did not decode) are loaded alone, all at once, as they would have been
 * without the batch, so one bad row or a timed-out read never decides the outcome of the others,
 * nor holds them back one after another.
 */
import { Effect, Exit, Option, type Scope } from "effect"
import * as Batcher from "../../internal/Batcher.ts"
import type { DurableExecutionJournal, ExecutionRecord, StepRecord } from "../DurableExecutionJournal.ts"
import type { JournalError } from "../WorkflowErrors.ts"

/**
 * A run's journal as loaded: its steps (or why they could not be read) and its current row, each
 * as the read ended; the run raises a defect of either itself, so it stays the run's own.
 */
export interface Loaded {
  readonly steps: Exit.Exit<ReadonlyArray<StepRecord>, JournalError>
  /** The row read again; a failure here is the run's defect, as a failed `get` always was. */
  readonly row: Exit.Exit<Option.Option<ExecutionRecord>>
}

/** The reads a load needs from the journal. */
export type LoadJournal = Pick<DurableExecutionJournal["Service"], "get" | "steps" | "getMany" | "stepsMany">

/** Executions loaded per batch (the engine's loading permits keep batches smaller). */
const MAX_BATCH = 256

/** One execution's journal, read alone; never fails. */
export const loadOne = (journal: LoadJournal, executionId: string): Effect.Effect<Loaded> =>
  Effect.map(
    Effect.all([
      Effect.exit(journal.steps(executionId)),
      Effect.exit(Effect.orDie(journal.get(executionId)))
    ]),
    ([steps, row]) => ({ steps, row })
  )

/** Each of `executionIds` read alone, all at once (the loading permits bound how many). */
const eachAlone = (journal: LoadJournal, executionIds: ReadonlyArray<string>) =>
  Effect.forEach(executionIds, (id) => loadOne(journal, id), { concurrency: "unbounded" })

/**
 * The journals of `executionIds`, in their order, with `stepsMany`: two reads, and one alone for
 * each execution they did not settle (an id given twice gets the same journal twice). Never fails: a failed or dying batch read sends
 * every execution of the batch to be read alone, where each meets its own outcome.
 */
export const loadMany = (
  journal: LoadJournal & { readonly stepsMany: NonNullable<LoadJournal["stepsMany"]> },
  executionIds: ReadonlyArray<string>
): Effect.Effect<ReadonlyArray<Loaded>> =>
  Effect.gen(function* () {
    const steps = yield* Effect.exit(journal.stepsMany(executionIds))
    const rows = yield* Effect.exit(journal.getMany(executionIds))
    if (Exit.isFailure(steps) || Exit.isFailure(rows)) return yield* eachAlone(journal, executionIds)
    const stepsOf = new Map<string, Array<StepRecord>>()
    for (const step of steps.value) {
      const list = stepsOf.get(step.executionId)
      if (list === undefined) stepsOf.set(step.executionId, [step])
      else list.push(step)
    }
    const rowOf = new Map(rows.value.map((row) => [row.executionId, row]))
    const loaded = new Array<Loaded | undefined>(executionIds.length)
    // No row: gone, or left out because it does not decode; `get` alone says which, loudly.
    const alone: Array<number> = []
    executionIds.forEach((id, i) => {
      const row = rowOf.get(id)
      if (row === undefined) alone.push(i)
      else loaded[i] = { steps: Exit.succeed(stepsOf.get(id) ?? []), row: Exit.succeed(Option.some(row)) }
    })
    if (alone.length > 0) {
      const read = yield* eachAlone(
        journal,
        alone.map((i) => executionIds[i]!)
      )
      alone.forEach((i, n) => {
        loaded[i] = read[n]
      })
    }
    return loaded as ReadonlyArray<Loaded>
  })

/**
 * A loader whose calls made before the scheduler yields share one `loadMany`; undefined when the
 * journal has no `stepsMany` (each run then reads its own, concurrently, as before). Made in the
 * engine's context and scope: its reads run there, never in a run's fiber (whose lease may lapse),
 * and end with the engine.
 */
export const make = (
  journal: LoadJournal
): Effect.Effect<((executionId: string) => Effect.Effect<Loaded>) | undefined, never, Scope.Scope> => {
  const stepsMany = journal.stepsMany
  if (stepsMany === undefined) return Effect.succeed(undefined)
  const batched = { ...journal, stepsMany }
  return Batcher.make((ids: ReadonlyArray<string>) => loadMany(batched, ids), MAX_BATCH)
}
