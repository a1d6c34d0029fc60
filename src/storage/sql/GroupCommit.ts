/**
 * Group commit: concurrent journal writes share one transaction.
 *
 * Writers submit a unit of SQL work and wait for its commit. One writer fiber takes everything
 * pending, runs it in a single transaction and completes every waiter. A lone writer is never
 * delayed (the commit starts as soon as the writer fiber is scheduled); under load, every write
 * that arrives during a commit rides on the next one, so one fsync serves many executions.
 *
 * A batch whose writes are all advisory (attempt markers) is committed without waiting for the
 * disk (see `SqlDialect.setDurability`).
 */
import { Deferred, Effect, Exit, type Scope } from "effect"
import type { SqlClient } from "effect/sql/SqlClient"
import type { SqlError } from "effect/sql/SqlError"

interface PendingWrite {
  readonly work: Effect.Effect<unknown, SqlError>
  readonly durable: boolean
  readonly done: Deferred.Deferred<unknown, SqlError>
}

/** Runs `work` in the next group transaction; resolves once it is committed. */
export type Submit = <A>(work: Effect.Effect<A, SqlError>, durable: boolean) => Effect.Effect<A, SqlError>

/** Counters exposed for benchmarks and tests. */
export interface GroupCommitStats {
  transactions: number
  durableTransactions: number
  writes: number
}

export const make = (
  sql: SqlClient,
  setDurability: (durable: boolean) => Effect.Effect<void, SqlError>
): Effect.Effect<{ readonly submit: Submit; readonly stats: GroupCommitStats }, never, Scope.Scope> =>
  Effect.gen(function* () {
    let pending: Array<PendingWrite> = []
    let wake: Deferred.Deferred<void> | undefined
    const stats: GroupCommitStats = { transactions: 0, durableTransactions: 0, writes: 0 }

    const commit = (batch: ReadonlyArray<PendingWrite>) =>
      Effect.gen(function* () {
        const durable = batch.some((write) => write.durable)
        const results: Array<unknown> = []
        const exit = yield* Effect.exit(
          Effect.andThen(
            setDurability(durable),
            sql.withTransaction(
              Effect.forEach(batch, (write) => Effect.map(write.work, (value) => results.push(value)), {
                discard: true
              })
            )
          )
        )
        stats.transactions++
        if (durable) stats.durableTransactions++
        stats.writes += batch.length
        batch.forEach((write, index) => {
          Deferred.doneUnsafe(write.done, Exit.isSuccess(exit) ? Exit.succeed(results[index]) : exit)
        })
      })

    yield* Effect.gen(function* () {
      while (true) {
        if (pending.length === 0) {
          wake = Deferred.makeUnsafe<void>()
          yield* Deferred.await(wake)
        }
        // Let writers that became ready in the same tick join this batch.
        yield* Effect.yieldNow
        const batch = pending
        pending = []
        yield* commit(batch)
      }
    }).pipe(Effect.forkScoped)

    const submit: Submit = <A>(work: Effect.Effect<A, SqlError>, durable: boolean) =>
      Effect.suspend(() => {
        const done = Deferred.makeUnsafe<unknown, SqlError>()
        pending.push({ work, durable, done })
        if (wake !== undefined) {
          Deferred.doneUnsafe(wake, Exit.void)
          wake = undefined
        }
        // `done` receives the value produced by `work`.
        return Deferred.await(done) as Effect.Effect<A, SqlError>
      })
    return { submit, stats }
  })
