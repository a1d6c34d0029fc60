/**
 * Group commit: concurrent journal writes share one transaction.
 *
 * Writers submit an item and wait for its commit. With an asynchronous driver, when no commit is
 * in progress the writer commits its item itself, at once (`inlineWhenIdle`): a lone writer is not
 * delayed, not even by a hand-off to another fiber. Otherwise items queue; one writer fiber takes
 * what is queued (at most `MAX_BATCH` items) and hands the batch to `flush`, which turns it into as few statements as it
 * can (multi-row upserts, one transaction). Under load, every item that arrives during a commit
 * rides on the next one, so one fsync and a handful of statements serve many executions.
 *
 * A batch whose items are all advisory (attempt markers) is committed without waiting for the
 * disk (`flush` is told whether the batch is durable).
 *
 * One bad item cannot fail its neighbours: when a batch of several items fails with an error that
 * is not retryable (a value the database rejects), each item is committed again on its own, so
 * only the culprit's writer sees the error.
 */
import { Cause, Deferred, Effect, Exit, Option, type Scope } from "effect"
import type { SqlError } from "effect/sql/SqlError"
import * as Instrument from "../../observability/internal/instrument.ts"
import { isTransient } from "./transient.ts"

/** See the writer loop: how often a run of lone batches yields to let a burst join. */
const PROBE = 8

/**
 * The most items one transaction takes. A batch is one synchronous stretch on SQLite (its
 * statements and fsync) and completes its items' waiters at once, so a flood of writes is cut into
 * transactions of this size, with a turn of the event loop (timers, sockets, lease renewals)
 * between them. 512 items commit in a few milliseconds and still share one fsync.
 */
export const MAX_BATCH = 512

interface Pending<I, A> {
  readonly item: I
  readonly done: Deferred.Deferred<A, SqlError>
}

/** Counters exposed for benchmarks and tests. */
export interface GroupCommitStats {
  transactions: number
  durableTransactions: number
  items: number
}

export interface GroupCommitOptions<I, A> {
  /**
   * Commits a batch; returns one result per item, in order. `durable` is false when every item is
   * advisory: the backend may then commit without waiting for the disk.
   */
  readonly flush: (items: ReadonlyArray<I>, durable: boolean) => Effect.Effect<ReadonlyArray<A>, SqlError>
  /** Whether an item must be on disk before its submitter continues. */
  readonly durable: (item: I) => boolean
  /**
   * false: no batching, every item is flushed alone by its submitter (for comparison in
   * benchmarks, or when the backend must not hold a connection). Default true.
   */
  readonly enabled?: boolean | undefined
  /**
   * When no commit is in progress, the submitter commits its item itself instead of handing it to
   * the writer fiber (one scheduler hop less each way). Only for an asynchronous driver: with a
   * synchronous one (SQLite) every commit would finish before the next submitter runs, so nothing
   * would ever batch. Default false.
   */
  readonly inlineWhenIdle?: boolean | undefined
  /** What the batches hold, on their telemetry (`effect-cluster.journal.store`). Default "journal". */
  readonly label?: string | undefined
}

export interface GroupCommit<I, A> {
  /** Queues `item` for the next commit and waits for it. */
  readonly submit: (item: I) => Effect.Effect<A, SqlError>
  readonly stats: GroupCommitStats
}

/** A failure that would fail again: a retryable one (connection lost) is not worth splitting for. */
const isPermanentFailure = (exit: Exit.Exit<unknown, SqlError>): boolean =>
  Exit.isFailure(exit) &&
  !Cause.hasInterrupts(exit.cause) &&
  Exit.findErrorOption(exit).pipe(
    Option.match({ onNone: () => true, onSome: (error) => !isTransient(error) })
  )

/** Starts the writer fiber (in the scope) and returns the submit side. */
export const make = <I, A>(
  options: GroupCommitOptions<I, A>
): Effect.Effect<GroupCommit<I, A>, never, Scope.Scope> =>
  Effect.gen(function* () {
    let pending: Array<Pending<I, A>> = []
    let wake: Deferred.Deferred<void> | undefined
    let lastBatchSize = 0
    /** Lone batches in a row: every PROBE-th one yields first, to notice a burst that began. */
    let lone = 0
    const stats: GroupCommitStats = { transactions: 0, durableTransactions: 0, items: 0 }
    const label = options.label ?? "journal"

    const commit = (batch: ReadonlyArray<Pending<I, A>>): Effect.Effect<void> => {
      const durable = batch.some((entry) => options.durable(entry.item))
      const items = batch.map((entry) => entry.item)
      return Instrument.commit(options.flush(items, durable), label, items.length, durable).pipe(
        Effect.exit,
        Effect.flatMap((exit) => {
          stats.transactions++
          if (durable) stats.durableTransactions++
          if (batch.length > 1 && isPermanentFailure(exit)) {
            return Effect.forEach(batch, (entry) => commit([entry]), { discard: true })
          }
          return Effect.sync(() => {
            stats.items += batch.length
            batch.forEach((entry, index) => {
              // flush returns one result per item, so `index` is in range.
              Deferred.doneUnsafe(
                entry.done,
                Exit.isSuccess(exit) ? Exit.succeed(exit.value[index] as A) : Exit.failCause(exit.cause)
              )
            })
          })
        })
      )
    }

    /** A commit is in progress (inline or by the writer fiber): at most one at a time. */
    let busy = false

    /** Wakes the writer fiber if work is waiting and no commit is in progress. */
    const kick = () => {
      const sleeping = wake
      if (sleeping === undefined || busy || pending.length === 0) return
      // Cleared first: completing it may run the writer inline, which may set a new one.
      wake = undefined
      Deferred.doneUnsafe(sleeping, Exit.void)
    }

    yield* Effect.gen(function* () {
      while (true) {
        if (pending.length === 0 || busy) {
          wake = Deferred.makeUnsafe<void>()
          yield* Deferred.await(wake)
          continue
        }
        busy = true
        // Under load, let writers that became ready in the same tick join this batch. After lone
        // batches, every PROBE-th one yields too: with a synchronous driver (SQLite) a lone write
        // commits before anyone else runs, so without it an engine that was idle for a moment
        // would commit every write of the next burst alone (10x slower), for good.
        if (lastBatchSize > 1 || ++lone % PROBE === 0) yield* Effect.yieldNow
        const batch = pending.length <= MAX_BATCH ? pending : pending.slice(0, MAX_BATCH)
        pending = batch === pending ? [] : pending.slice(MAX_BATCH)
        lastBatchSize = batch.length
        yield* commit(batch)
        busy = false
      }
    }).pipe(Effect.forkScoped)

    /** Commits one item in the submitter's own fiber: no hand-off to the writer and back. */
    const commitInline = (item: I): Effect.Effect<A, SqlError> =>
      Effect.suspend(() => {
        const done = Deferred.makeUnsafe<A, SqlError>()
        return Effect.andThen(commit([{ item, done }]), Deferred.await(done))
      })

    if (options.enabled === false) return { submit: commitInline, stats }

    const submit = (item: I): Effect.Effect<A, SqlError> =>
      // Uninterruptible from the check to the release of `busy`: an interruption in between would
      // leave `busy` set and every later write waiting. A queued item commits whatever happens
      // to its submitter (who may stop waiting), and so does an inline one.
      Effect.uninterruptibleMask((restore) =>
        Effect.suspend(() => {
          if (options.inlineWhenIdle === true && !busy && pending.length === 0) {
            // A lone writer commits at once, itself; writers arriving meanwhile queue for the
            // writer fiber, which takes them all in the next batch.
            busy = true
            lastBatchSize = 1
            return commitInline(item).pipe(
              Effect.ensuring(
                Effect.sync(() => {
                  busy = false
                  kick()
                })
              )
            )
          }
          return restore(enqueue(item))
        })
      )

    const enqueue = (item: I): Effect.Effect<A, SqlError> =>
      Effect.suspend(() => {
        const done = Deferred.makeUnsafe<A, SqlError>()
        pending.push({ item, done })
        kick()
        return Deferred.await(done)
      })
    return { submit, stats }
  })
