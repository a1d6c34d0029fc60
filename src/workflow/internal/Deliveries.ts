/**
 * How a pod learns of work other pods stored for its shards: starts, resumes, interruptions and
 * signals leave an entry in the shard's inbox (in the same transaction). The owner takes the
 * entries of its shards every `intervalMillis` (the embedded store's polling, 100 ms by default),
 * and at once when the store pushes an arrival (PostgreSQL `LISTEN/NOTIFY`, with the polling as a
 * safety net), reads the rows of the batch's executions in one query, and hands each execution to
 * `deliver` with its row (`null`: not stored; `undefined`: the batch's read failed, a row that no
 * longer decodes among them, so `deliver` reads its own and only that execution is affected).
 */
import { Deferred, Duration, Effect, Exit, Stream } from "effect"
import type { ExecutionRecord, InboxEntry } from "../DurableExecutionJournal.ts"
import type { RunJournal } from "./FencedJournal.ts"

/** Entries taken per query. */
const BATCH = 256

/** Listening again after a lost subscription waits this long at first, doubling up to the max. */
const RELISTEN_FIRST = Duration.millis(100)
const RELISTEN_MAX = Duration.seconds(5)

/**
 * Wakes the loop at each pushed arrival, for as long as the loop runs. A subscription that fails
 * (PostgreSQL: the LISTEN session ended, the server restarted) is taken again with backoff, one
 * warning per outage; meanwhile the polling delivers, and each new subscription first wakes the
 * loop once for what arrived while none listened.
 */
const listen = (arrivals: Stream.Stream<unknown, unknown>, wake: () => void): Effect.Effect<never> =>
  Effect.gen(function* () {
    let lost = false
    let delay = RELISTEN_FIRST
    while (true) {
      const exit = yield* Effect.exit(
        Stream.runForEach(arrivals, () =>
          Effect.gen(function* () {
            delay = RELISTEN_FIRST
            if (lost) {
              lost = false
              yield* Effect.logInfo("inbox notifications resumed")
            }
            wake()
          })
        )
      )
      if (!lost) {
        lost = true
        yield* Effect.logWarning(
          "inbox notifications stopped; polling until they resume",
          Exit.isFailure(exit) ? exit.cause : "the subscription ended"
        )
      }
      yield* Effect.sleep(delay)
      delay = Duration.min(Duration.times(delay, 2), RELISTEN_MAX)
      wake()
    }
  })

export const loop = (options: {
  readonly journal: RunJournal
  /** Other announcements of arrivals (a `PodTransport`), besides the journal's own. */
  readonly arrivals?: Stream.Stream<unknown> | undefined
  readonly intervalMillis: number
  readonly shards: () => ReadonlyArray<number> | undefined
  readonly deliver: (
    entry: InboxEntry,
    row: ExecutionRecord | null | undefined
  ) => Effect.Effect<void, unknown>
}): Effect.Effect<never> =>
  Effect.gen(function* () {
    const { journal } = options
    let arrived = Deferred.makeUnsafe<void>()
    const pushed = [journal.inboxArrivals, options.arrivals].filter((stream) => stream !== undefined)
    for (const arrivals of pushed)
      yield* Effect.forkScoped(listen(arrivals, () => Deferred.doneUnsafe(arrived, Exit.void)))
    const take = Effect.gen(function* () {
      while (true) {
        const shards = options.shards()
        if (shards === undefined || shards.length === 0) return
        const entries = yield* journal.takeInbox(shards, BATCH)
        const seen = new Set<string>()
        const unique = entries.filter((entry) => !seen.has(entry.executionId) && seen.add(entry.executionId))
        // One read for the batch, not one per entry.
        const rows =
          unique.length === 0
            ? new Map<string, ExecutionRecord>()
            : yield* journal.getMany(unique.map((entry) => entry.executionId)).pipe(
                Effect.map((found) => new Map(found.map((row) => [row.executionId, row] as const))),
                Effect.catchCause(() => Effect.succeed(undefined))
              )
        yield* Effect.forEach(
          unique,
          (entry) =>
            options
              .deliver(entry, rows === undefined ? undefined : (rows.get(entry.executionId) ?? null))
              .pipe(
                Effect.catchCause((cause) =>
                  Effect.logWarning(`could not deliver to ${entry.executionId}`, cause)
                )
              ),
          { concurrency: "unbounded", discard: true }
        )
        if (entries.length < BATCH) return
      }
    })
    return yield* Effect.forever(
      Effect.gen(function* () {
        yield* take.pipe(
          Effect.catchCause((cause) => Effect.logWarning("the shard inbox could not be read", cause))
        )
        yield* Effect.raceFirst(Effect.sleep(options.intervalMillis), Deferred.await(arrived))
        arrived = Deferred.makeUnsafe<void>()
      })
    )
  }).pipe(Effect.scoped) as Effect.Effect<never>
