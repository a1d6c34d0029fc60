/**
 * The journal as one run of a clustered engine sees it: every write and heartbeat carries the
 * run's fence (its shard's epoch). Before writing, the pod's own view is checked (its lease may have
 * run out by its own clock); the store checks the epoch again in the write's transaction. A refused
 * write stops the run at once: `stop` halts it without recording anything, the run fiber is
 * interrupted, and the pod stops the shard's other runs. The new owner resumes them.
 */
import { Effect } from "effect"
import type { DurableExecutionJournal, Fence, JournalWrite } from "../DurableExecutionJournal.ts"
import type { JournalError } from "../WorkflowErrors.ts"
import type { Ownership } from "./Ownership.ts"

/** The journal a run writes to: a refused write never reaches the run as an error. */
export type RunJournal = Omit<DurableExecutionJournal["Service"], "write"> & {
  readonly write: (write: JournalWrite) => Effect.Effect<void, JournalError>
}

/** The journal of a run that writes without a fence (one process runs every shard). */
export const unfenced = (journal: DurableExecutionJournal["Service"]): RunJournal => ({
  ...journal,
  write: (write) => Effect.catchTag(journal.write(write), "StaleEpochError", (error) => Effect.die(error))
})

/** `journal` with `fence` on the writes of one run; `stop` halts that run. */
export const fenced = (
  journal: DurableExecutionJournal["Service"],
  fence: Fence,
  ownership: Ownership,
  stop: () => void
): RunJournal => {
  const refuse = Effect.suspend(() => {
    stop()
    return Effect.interrupt
  })
  const withhold = Effect.suspend(() => {
    ownership.withheld(fence)
    return refuse
  })
  return {
    ...journal,
    write: (write) =>
      ownership.mayWrite(fence)
        ? journal.write({ ...write, fence }).pipe(
            Effect.catchTag(
              "StaleEpochError",
              (): Effect.Effect<never> =>
                Effect.suspend(() => {
                  ownership.fenced(fence)
                  return refuse
                })
            )
          )
        : withhold,
    heartbeat: (heartbeat) =>
      ownership.mayWrite(fence)
        ? journal.heartbeat({ ...heartbeat, fence })
        : (refuse as Effect.Effect<never, JournalError>)
  }
}
