/**
 * Wraps a journal so that retryable storage faults (a database restarting, a busy file) are
 * retried with capped exponential backoff instead of failing executions. Terminal journal errors
 * pass through.
 */
import { Effect } from "effect"
import type { DurableExecutionJournal } from "../DurableExecutionJournal.ts"
import type { JournalError } from "../WorkflowErrors.ts"

const FIRST_DELAY_MILLIS = 50
const MAX_DELAY_MILLIS = 5_000

const retrying = <A>(
  operation: string,
  effect: Effect.Effect<A, JournalError>
): Effect.Effect<A, JournalError> => {
  const loop = (attempt: number): Effect.Effect<A, JournalError> =>
    Effect.catch(effect, (error) => {
      if (!error.retryable) return Effect.fail(error)
      const delay = Math.min(MAX_DELAY_MILLIS, FIRST_DELAY_MILLIS * 2 ** attempt)
      return Effect.logWarning(
        `journal ${operation} failed (${error.message}); retrying in ${delay} ms`
      ).pipe(Effect.andThen(Effect.sleep(delay)), Effect.andThen(loop(attempt + 1)))
    })
  return loop(0)
}

export const reliable = (
  journal: DurableExecutionJournal["Service"]
): DurableExecutionJournal["Service"] => ({
  start: (execution) => retrying("start", journal.start(execution)),
  get: (executionId) => retrying("get", journal.get(executionId)),
  steps: (executionId) => retrying("steps", journal.steps(executionId)),
  write: (write) => retrying("write", journal.write(write)),
  listRunning: retrying("listRunning", journal.listRunning),
  listDue: (now, limit) => retrying("listDue", journal.listDue(now, limit)),
  signal: (signal) => retrying("signal", journal.signal(signal)),
  getSignal: (executionId, name) => retrying("getSignal", journal.getSignal(executionId, name)),
  heartbeat: (heartbeat) => retrying("heartbeat", journal.heartbeat(heartbeat)),
  list: (query) => retrying("list", journal.list(query)),
  attempts: (executionId) => retrying("attempts", journal.attempts(executionId))
})
