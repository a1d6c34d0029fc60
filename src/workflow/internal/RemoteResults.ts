/**
 * Waiting for executions that run in another pod: the caller's pod stored the start (or the
 * resume, the interruption), the owner runs it and records the result, and this pod learns of it
 * through the store. One fiber polls the rows of every execution waited for, in one query per
 * interval, and releases the waiters of each execution that is final or suspended. An execution
 * announced as settled (a `PodTransport`) is read at once, alone with the others announced
 * meanwhile: not every execution waited for at every announcement.
 */
import { Clock, Deferred, Effect, Exit, Result, type Scope, Stream } from "effect"
import type { Settlement } from "../../sharding/PodTransport.ts"
import { ExecutionRecord, isFinal } from "../DurableExecutionJournal.ts"
import type { JournalError } from "../WorkflowErrors.ts"
import { decodeJsonResult } from "./codec.ts"
import type { RunJournal } from "./FencedJournal.ts"

/** Rows per poll query. */
const PAGE = 500

/** Settlements remembered for callers that start waiting just after them. */
const RECENT = 1_024

export interface RemoteResults {
  /** Waits until `executionId` is final or suspended, wherever it runs; its row then. */
  readonly settled: (executionId: string) => Effect.Effect<ExecutionRecord, JournalError>
}

/** Whether a row is as far as a caller waiting for a result can wait. */
export const isSettled = (row: ExecutionRecord): boolean => isFinal(row.status) || row.status === "suspended"

export const make = (
  journal: RunJournal,
  intervalMillis: number,
  /**
   * Executions announced as settled (a `PodTransport`): look at once instead of at the interval;
   * one announced with its final row is taken from it, without a read.
   */
  settlements?: Stream.Stream<string | Settlement> | undefined
): Effect.Effect<RemoteResults, never, Scope.Scope> =>
  Effect.gen(function* () {
    const waiters = new Map<string, Deferred.Deferred<ExecutionRecord, JournalError>>()
    let wake = Deferred.makeUnsafe<void>()
    /** Announced settlements nobody waited for yet, with their row (null: without one). */
    const recent = new Map<string, ExecutionRecord | null>()
    /** Executions announced as settled since the last read. */
    const announced = new Set<string>()
    /** A waiter was added: the next read covers every execution (it may have settled already). */
    let readAll = false
    const clock = yield* Clock.Clock
    let lastFullRead = clock.currentTimeMillisUnsafe()

    const poll = (ids: ReadonlyArray<string>) =>
      Effect.gen(function* () {
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
          const woken = yield* Effect.raceFirst(
            Effect.as(Effect.sleep(intervalMillis), false),
            Effect.as(Deferred.await(wake), true)
          )
          wake = Deferred.makeUnsafe<void>()
          // Every interval at least, all of them (an announcement may be lost), however many come.
          const at = clock.currentTimeMillisUnsafe()
          const all = !woken || readAll || at - lastFullRead >= intervalMillis
          if (all) lastFullRead = at
          const ids = all ? [...waiters.keys()] : [...announced]
          readAll = false
          announced.clear()
          yield* poll(ids).pipe(
            Effect.catchCause((cause) => Effect.logWarning("results of other pods could not be read", cause))
          )
        })
      )
    )

    if (settlements !== undefined) {
      yield* Effect.forkScoped(
        Stream.runForEach(settlements, (settlement) =>
          Effect.sync(() => {
            const executionId = typeof settlement === "string" ? settlement : settlement.executionId
            // A row that decodes (I6), is the one announced and is settled can end a wait at once.
            const decoded =
              typeof settlement === "string" || settlement.row === undefined
                ? undefined
                : decodeJsonResult(ExecutionRecord, settlement.row)
            const row =
              decoded !== undefined &&
              Result.isSuccess(decoded) &&
              decoded.success.executionId === executionId &&
              isSettled(decoded.success)
                ? decoded.success
                : null
            const waiter = waiters.get(executionId)
            if (waiter === undefined) {
              // It may have settled before its caller started waiting (a fast execution).
              recent.set(executionId, row)
              if (recent.size > RECENT) recent.delete(recent.keys().next().value!)
              return
            }
            if (row !== null) {
              waiters.delete(executionId)
              Deferred.doneUnsafe(waiter, Exit.succeed(row))
              return
            }
            announced.add(executionId)
            Deferred.doneUnsafe(wake, Exit.void)
          })
        )
      )
    }

    return {
      settled: (executionId) =>
        Effect.suspend(() => {
          const early = recent.get(executionId)
          if (early !== undefined) {
            recent.delete(executionId)
            if (early !== null) return Effect.succeed(early)
          }
          let waiter = waiters.get(executionId)
          if (waiter === undefined) {
            waiter = Deferred.makeUnsafe<ExecutionRecord, JournalError>()
            waiters.set(executionId, waiter)
            if (early === null) {
              // Announced before we waited, without its row: read it now.
              announced.add(executionId)
              Deferred.doneUnsafe(wake, Exit.void)
            }
            if (waiters.size === 1) {
              // The loop sleeps while nobody waits: start its interval now. Without announcements,
              // read at once too (it may have settled already); with them, an announcement (kept
              // in `recent` if it came first) ends the wait, and the interval's read backs it up.
              if (settlements === undefined) readAll = true
              Deferred.doneUnsafe(wake, Exit.void)
            }
          }
          return Deferred.await(waiter)
        })
    }
  })
