/**
 * Waiting for executions that run in another pod: the caller's pod stored the start (or the
 * resume, the interruption), the owner runs it and records the result, and this pod learns of it
 * through the store. One fiber polls the rows of every execution waited for, in one query per
 * interval, and releases the waiters of each execution that is final or suspended.
 */
import { Deferred, Effect, Exit, type Scope, Stream } from "effect"
import { type ExecutionRecord, isFinal } from "../DurableExecutionJournal.ts"
import type { JournalError } from "../WorkflowErrors.ts"
import type { RunJournal } from "./FencedJournal.ts"

/** Rows per poll query. */
const PAGE = 500

export interface RemoteResults {
  /** Waits until `executionId` is final or suspended, wherever it runs; its row then. */
  readonly settled: (executionId: string) => Effect.Effect<ExecutionRecord, JournalError>
}

/** Whether a row is as far as a caller waiting for a result can wait. */
export const isSettled = (row: ExecutionRecord): boolean => isFinal(row.status) || row.status === "suspended"

export const make = (
  journal: RunJournal,
  intervalMillis: number,
  /** Executions announced as settled (a `PodTransport`): look at once instead of at the interval. */
  settlements?: Stream.Stream<string> | undefined
): Effect.Effect<RemoteResults, never, Scope.Scope> =>
  Effect.gen(function* () {
    const waiters = new Map<string, Deferred.Deferred<ExecutionRecord, JournalError>>()
    let wake = Deferred.makeUnsafe<void>()

    const poll = Effect.gen(function* () {
      const ids = [...waiters.keys()]
      for (let i = 0; i < ids.length; i += PAGE) {
        const rows = yield* journal.getMany(ids.slice(i, i + PAGE))
        for (const row of rows) {
          if (!isSettled(row)) continue
          const waiter = waiters.get(row.executionId)
          waiters.delete(row.executionId)
          if (waiter !== undefined) Deferred.doneUnsafe(waiter, Exit.succeed(row))
        }
      }
    })

    yield* Effect.forkScoped(
      Effect.forever(
        Effect.gen(function* () {
          if (waiters.size === 0) {
            yield* Deferred.await(wake)
            wake = Deferred.makeUnsafe<void>()
          }
          yield* Effect.raceFirst(Effect.sleep(intervalMillis), Deferred.await(wake))
          wake = Deferred.makeUnsafe<void>()
          yield* poll.pipe(
            Effect.catchCause((cause) => Effect.logWarning("results of other pods could not be read", cause))
          )
        })
      )
    )

    if (settlements !== undefined) {
      yield* Effect.forkScoped(
        Stream.runForEach(settlements, (executionId) =>
          Effect.sync(() => {
            if (waiters.has(executionId)) Deferred.doneUnsafe(wake, Exit.void)
          })
        )
      )
    }

    return {
      settled: (executionId) =>
        Effect.suspend(() => {
          let waiter = waiters.get(executionId)
          if (waiter === undefined) {
            waiter = Deferred.makeUnsafe<ExecutionRecord, JournalError>()
            waiters.set(executionId, waiter)
            if (waiters.size === 1) Deferred.doneUnsafe(wake, Exit.void)
          }
          return Deferred.await(waiter)
        })
    }
  })
