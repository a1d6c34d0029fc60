/**
 * Taking a shard over: its `running` executions are read a page at a time and each gets a run;
 * the next page is read once the runs of this one have loaded their journals (a shared limit
 * bounds how many load at once). It runs in the background: the engine accepts new work meanwhile.
 */
import { Deferred, Effect } from "effect"
import type { ExecutionRecord } from "../DurableExecutionJournal.ts"
import type { RunHandle } from "./ExecutionRunner.ts"
import type { RunJournal } from "./FencedJournal.ts"

/** Executions read per page. */
export const PAGE = 256

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
      const page = yield* options.journal.listUnfinished({ shard: options.shard, after, limit: PAGE })
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
