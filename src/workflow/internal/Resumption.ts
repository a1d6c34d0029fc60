/**
 * Taking a shard over: its `running` executions are read a page at a time and each gets a run;
 * the next page is read once the runs of this one have loaded their journals (a shared limit
 * bounds how many load at once). It runs in the background: the engine accepts new work meanwhile.
 *
 * A page that cannot be read (the journal gave up on it: a statement timeout, a broken table) is
 * logged and read again after a pause, while the shard is still owned: its executions are not left
 * behind until the shard moves.
 */
import { Deferred, Effect } from "effect"
import type { ExecutionRecord } from "../DurableExecutionJournal.ts"
import type { RunHandle } from "./ExecutionRunner.ts"
import type { RunJournal } from "./FencedJournal.ts"

/** Executions read per page. */
export const PAGE = 256

/** The pause before a failed page is read again: doubling from the first, up to the last. */
const FIRST_PAUSE_MILLIS = 1_000
const MAX_PAUSE_MILLIS = 30_000

/**
 * Resumes every `running` execution of `shard`, while `stillOwned()`. `start` gives a run (or none,
 * for a row it suspends or another pod owns).
 */
export const resumeShard = (options: {
  readonly journal: RunJournal
  readonly shard: number
  readonly stillOwned: () => boolean
  readonly start: (row: ExecutionRecord) => Effect.Effect<RunHandle | undefined, unknown>
}): Effect.Effect<number, unknown> =>
  Effect.gen(function* () {
    let after: string | undefined
    let resumed = 0
    while (options.stillOwned()) {
      const page = yield* readPage(options, after)
      if (page === undefined) break
      const handles = yield* Effect.forEach(page, options.start)
      for (const handle of handles) {
        if (handle === undefined) continue
        resumed++
        yield* Deferred.await(handle.state.loaded)
      }
      if (page.length < PAGE) break
      after = page[page.length - 1]!.executionId
    }
    return resumed
  })

/** A page of the shard's unfinished executions, read until it is (undefined: the shard moved). */
const readPage = (
  options: Parameters<typeof resumeShard>[0],
  after: string | undefined
): Effect.Effect<ReadonlyArray<ExecutionRecord> | undefined> => {
  const attempt = (pause: number): Effect.Effect<ReadonlyArray<ExecutionRecord> | undefined> =>
    options.journal.listUnfinished({ shard: options.shard, after, limit: PAGE }).pipe(
      Effect.catch((error) =>
        Effect.gen(function* () {
          yield* Effect.logError(
            `the executions of shard ${options.shard} could not be listed; trying again in ${pause} ms`,
            error
          )
          yield* Effect.sleep(pause)
          return options.stillOwned() ? yield* attempt(Math.min(MAX_PAUSE_MILLIS, pause * 2)) : undefined
        })
      )
    )
  return attempt(FIRST_PAUSE_MILLIS)
}
