/**
 * The engine's backstop for liveness: every interval it looks, in the shards it has owned and
 * resumed for a whole interval, for `running` executions that have no run here, and starts them,
 * with a warning that names them. A shard whose resumption has not ended (it waits its turn among
 * hundreds taken over at once, and that can take minutes) is not looked at: its executions are
 * not orphans, only not resumed yet.
 *
 * None should ever be found: an execution gets a run when it starts, when its shard is taken (see
 * `Resumption`), when it wakes, or when an inbox entry tells its owner. One found here slipped
 * through one of those (a run that ended without its execution being resumed, a delivery lost):
 * a bug, which the warning reports, and which no longer leaves the execution stuck until its
 * shard moves. An execution is started only when two looks in a row found it so, and its row was
 * written an interval or more before the first: a start, a resumption or a delivery on its way (a
 * store that answered slowly for a while) has a whole interval to arrive.
 */
import { Clock, Effect } from "effect"
import type { ExecutionRecord } from "../DurableExecutionJournal.ts"
import type { RunHandle } from "./ExecutionRunner.ts"
import type { RunJournal } from "./FencedJournal.ts"
import { PAGE } from "./Resumption.ts"

/** At most this many orphans are named in one warning. */
const NAMED = 10

export interface RecoveryOptions {
  readonly journal: RunJournal
  readonly intervalMillis: number
  /** The shards this engine has owned (without a break), and finished resuming, since at least `since`. */
  readonly shardsHeldSince: (since: number) => ReadonlyArray<number>
  /** Whether the shard is still this engine's (it stops looking at one that moved). */
  readonly stillOwned: (shard: number) => boolean
  /** Whether the execution has a run here (running or being started). */
  readonly hasRun: (executionId: string) => boolean
  /** Starts a run of the row (or none, when another pod owns its shard now). */
  readonly start: (row: ExecutionRecord) => Effect.Effect<RunHandle | undefined, unknown>
  readonly now: () => number
}

/**
 * One look at every shard held for an interval: the executions found without a run that the look
 * before found so too (`suspects`) are started; returns their ids, and the ids found this time.
 */
export const recoverOnce = (
  options: RecoveryOptions,
  suspects: ReadonlySet<string>
): Effect.Effect<{ readonly started: ReadonlyArray<string>; readonly found: ReadonlySet<string> }, unknown> =>
  Effect.gen(function* () {
    const since = options.now() - options.intervalMillis
    const started: Array<string> = []
    const found = new Set<string>()
    for (const shard of options.shardsHeldSince(since)) {
      let after: string | undefined
      while (options.stillOwned(shard)) {
        const page = yield* options.journal.listUnfinished({ shard, after, limit: PAGE })
        for (const listed of page) {
          if (listed.status !== "running" || listed.updatedAt > since || options.hasRun(listed.executionId))
            continue
          found.add(listed.executionId)
          if (!suspects.has(listed.executionId)) continue
          // Read again: a run may have completed it since the page was read.
          const row = yield* options.journal.get(listed.executionId)
          if (row._tag === "None" || row.value.status !== "running" || options.hasRun(listed.executionId))
            continue
          if ((yield* options.start(row.value)) !== undefined) started.push(listed.executionId)
        }
        // Read until a page comes back empty: a short page may only lack a row that does not decode.
        if (page.length === 0) break
        after = page[page.length - 1]!.executionId
      }
    }
    for (const id of started) found.delete(id)
    return { started, found }
  })

/**
 * Looks every interval of real time, for good; a look that fails is logged and the next one tries
 * again.
 */
export const loop = (options: RecoveryOptions): Effect.Effect<never> => {
  let suspects: ReadonlySet<string> = new Set()
  const report = (started: ReadonlyArray<string>) =>
    started.length === 0
      ? Effect.void
      : Effect.logWarning(
          `recovery: ${started.length} execution(s) were running with no run on this pod, which owns their shards; started them: ${started.slice(0, NAMED).join(", ")}${started.length > NAMED ? ", ..." : ""} (a bug: an execution should never be left so; please report it)`
        )
  return Effect.forever(
    Effect.andThen(
      // On the host's clock, not the program's: a test that skips a month on a `TestClock` must
      // not make it look 90,000 times (the durable timer wakes once for such a skip; so does this).
      Effect.sleep(options.intervalMillis).pipe(
        Effect.provideService(Clock.Clock, Clock.Clock.defaultValue())
      ),
      Effect.suspend(() => recoverOnce(options, suspects)).pipe(
        Effect.flatMap(({ started, found }) => {
          suspects = found
          return report(started)
        }),
        Effect.catchCause((cause) =>
          Effect.logWarning("the look for executions left without a run failed; trying again", cause)
        )
      )
    )
  )
}
