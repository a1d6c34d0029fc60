/**
 * Wraps a journal so that retryable storage faults (a database restarting, a busy file) are
 * retried with capped exponential backoff instead of failing executions. Terminal journal errors
 * pass through.
 *
 * An outage is reported once, not once per operation per retry: when an operation fails a second
 * time in a row, one warning says how many operations are waiting; when an operation succeeds
 * again, one line says the journal recovered, and every operation still waiting retries at once
 * instead of finishing its backoff. Each retry is logged at debug level only.
 *
 * A statement the database cancelled at its statement timeout is not an outage: the database
 * answers, the statement takes too long (or waits for a lock held too long). It is retried with the
 * same backoff at most `STATEMENT_TIMEOUT_ATTEMPTS` times in all, then fails with the same
 * `JournalError`, no longer transient (naming its purpose, the timeout and the attempts), so the run
 * stops and the caller's call fails instead of retrying forever.
 *
 * `stopRetrying` ends retrying for good (the engine's shutdown deadline passed): operations
 * waiting for a retry, and later ones that fail, fail with their error at once.
 */
import { Clock, Deferred, Effect, Exit } from "effect"
import * as Instrument from "../../observability/internal/instrument.ts"
import type { StaleEpochError } from "../../sharding/ShardingErrors.ts"
import type { DurableExecutionJournal } from "../DurableExecutionJournal.ts"
import { JournalError } from "../WorkflowErrors.ts"

const FIRST_DELAY_MILLIS = 50
const MAX_DELAY_MILLIS = 5_000

/**
 * The retry budget of a statement that times out: this many attempts in a row, the first one
 * included (with the backoff between them, ~350 ms plus the timeouts themselves).
 */
export const STATEMENT_TIMEOUT_ATTEMPTS = 4

/** A journal that retries transient faults, and the switch that stops it retrying. */
export interface Reliable {
  readonly journal: DurableExecutionJournal["Service"]
  /** From now on, transient faults fail at once; operations waiting for a retry fail now. */
  readonly stopRetrying: Effect.Effect<void>
}

/** The outage in progress, shared by every operation of one journal. */
class Outage {
  /** Operations that failed transiently and wait to be retried. */
  waiting = 0
  /** Operations delayed by the current outage (for the recovered line). */
  delayed = 0
  /** When the current outage began (epoch ms); undefined when the journal answers. */
  since: number | undefined = undefined
  /** Whether the current outage was reported (the recovered line is logged only then). */
  announced = false
  /** Completed when the journal answers again: waiting operations retry at once. */
  recovered = Deferred.makeUnsafe<void>()
  /** Completed by `stopRetrying`. */
  readonly stopped = Deferred.makeUnsafe<void>()
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`

/** The first success after failures ends the outage; logged if it was reported. */
const endOutage = (outage: Outage): Effect.Effect<void> =>
  Effect.flatMap(Clock.currentTimeMillis, (now) => {
    const { since, announced, delayed, recovered } = outage
    if (since === undefined) return Effect.void
    outage.since = undefined
    outage.announced = false
    outage.delayed = 0
    outage.recovered = Deferred.makeUnsafe<void>()
    Deferred.doneUnsafe(recovered, Exit.void)
    return announced
      ? Effect.logInfo(
          `the journal recovered after ${now - since} ms: ${plural(delayed, "operation")} waited for it and carry on`
        )
      : Effect.void
  })

/** What an operation fails with: a journal fault, or (writes) a refused fence, never retried. */
type Failure = JournalError | StaleEpochError

/** Whether `error` is retried: a transient fault, while retrying has not been stopped. */
const retries = (outage: Outage, error: Failure): boolean =>
  error.retryable && !Deferred.isDoneUnsafe(outage.stopped)

/** Whether `error` is a statement the database cancelled at its statement timeout. */
const timedOut = (error: Failure): error is JournalError =>
  error._tag === "JournalError" && error.timeoutMillis !== undefined

/** `error` after `attempts` timeouts in a row: no longer retried. */
const gaveUp = (error: JournalError, attempts: number): JournalError =>
  new JournalError({
    operation: error.operation,
    transient: false,
    ...(error.timeoutMillis === undefined ? {} : { timeoutMillis: error.timeoutMillis }),
    detail: `it was cancelled on ${attempts} attempts in a row`
  })

/** Runs `effect`; the common case (it succeeds, no outage) costs one `matchEffect`. */
const retrying = <A, E extends Failure>(
  outage: Outage,
  operation: string,
  effect: Effect.Effect<A, E>
): Effect.Effect<A, E> =>
  Effect.matchEffect(effect, {
    onSuccess: (value) =>
      outage.since === undefined ? Effect.succeed(value) : Effect.as(endOutage(outage), value),
    onFailure: (error) =>
      retries(outage, error) ? retryAfter(outage, operation, effect, error) : Effect.fail(error)
  })

/** Retries `effect`, which just failed with the transient `first`, counting it as waiting. */
const retryAfter = <A, E extends Failure>(
  outage: Outage,
  operation: string,
  effect: Effect.Effect<A, E>,
  first: E
): Effect.Effect<A, E> =>
  Effect.suspend(() => {
    outage.waiting++
    outage.delayed++
    let left = false
    const leave = Effect.sync(() => {
      if (left) return
      left = true
      outage.waiting--
    })
    /** `timeouts`: statement timeouts in a row so far, `error` not included. */
    const backoff = (attempt: number, error: E, timeouts: number): Effect.Effect<A, E> =>
      Effect.gen(function* () {
        const timeout = timedOut(error)
        // The budget is spent: the same error, terminal (`gaveUp` keeps it a JournalError, in E).
        if (timeout && timeouts + 1 >= STATEMENT_TIMEOUT_ATTEMPTS)
          return yield* Effect.fail(gaveUp(error, timeouts + 1) as E)
        const delay = Math.min(MAX_DELAY_MILLIS, FIRST_DELAY_MILLIS * 2 ** attempt)
        if (timeout) {
          // Not an outage: the database answers, this statement is too slow or waits for a lock.
          yield* Effect.logWarning(
            `${error.message} Attempt ${timeouts + 1} of ${STATEMENT_TIMEOUT_ATTEMPTS}; retrying in ${delay} ms.`
          )
        } else {
          outage.since ??= yield* Clock.currentTimeMillis
          // Reported when an operation fails twice in a row: a blip that one retry absorbs is not
          // an outage, and by then the other operations caught by it are counted too.
          if (attempt >= 1 && !outage.announced) {
            outage.announced = true
            yield* Effect.logWarning(
              `the journal is unavailable (${operation} failed: ${error.message}); ${plural(outage.waiting, "operation")} waiting, retried with backoff up to ${MAX_DELAY_MILLIS} ms until it answers. Executions pause meanwhile; a line follows when it recovers.`
            )
          } else {
            yield* Effect.logDebug(`journal ${operation} failed (${error.message}); retrying in ${delay} ms`)
          }
        }
        yield* Effect.raceFirst(
          Effect.sleep(delay),
          Effect.raceFirst(Deferred.await(outage.recovered), Deferred.await(outage.stopped))
        )
        if (Deferred.isDoneUnsafe(outage.stopped)) return yield* Effect.fail(error)
        return yield* Effect.matchEffect(effect, {
          onSuccess: (value) => Effect.as(Effect.andThen(leave, endOutage(outage)), value),
          onFailure: (next) =>
            retries(outage, next) ? backoff(attempt + 1, next, timeout ? timeouts + 1 : 0) : Effect.fail(next)
        })
      })
    return Effect.ensuring(backoff(0, first, 0), leave)
  })

/** `journal`, retrying transient faults with backoff and reporting outages once. */
export const reliable = (journal: DurableExecutionJournal["Service"]): Reliable => {
  const outage = new Outage()
  const r = <A, E extends Failure>(operation: string, effect: Effect.Effect<A, E>) =>
    retrying(outage, operation, effect)
  return {
    stopRetrying: Effect.sync(() => {
      Deferred.doneUnsafe(outage.stopped, Exit.void)
    }),
    journal: {
      start: (execution) => r("start", journal.start(execution)),
      get: (executionId) => r("get", journal.get(executionId)),
      steps: (executionId) => r("steps", journal.steps(executionId)),
      stepsMany:
        journal.stepsMany === undefined
          ? undefined
          : (executionIds) => r("stepsMany", journal.stepsMany!(executionIds)),
      write: (write) => Instrument.journalWrite(r("write", journal.write(write)), write),
      listRunning: r("listRunning", journal.listRunning),
      listUnfinished: (query) => r("listUnfinished", journal.listUnfinished(query)),
      listDue: (now, limit, shards) => r("listDue", journal.listDue(now, limit, shards)),
      getMany: (executionIds) => r("getMany", journal.getMany(executionIds)),
      takeInbox: (shards, limit) => r("takeInbox", journal.takeInbox(shards, limit)),
      inboxArrivals: journal.inboxArrivals,
      signal: (signal) => r("signal", journal.signal(signal)),
      getSignal: (executionId, name) => r("getSignal", journal.getSignal(executionId, name)),
      heartbeat: (heartbeat) => r("heartbeat", journal.heartbeat(heartbeat)),
      list: (query) => r("list", journal.list(query)),
      count: (query) => r("count", journal.count(query)),
      attempts: (executionId) => r("attempts", journal.attempts(executionId))
    }
  }
}
