/**
 * The engine's durable timer: wakes the sleeping executions (of the shards this engine runs)
 * whose time has come, then waits for the next `wakeAt`, or until poked by a park, a signal or an
 * acquired shard. It polls the journal at `pollMillis` for sleeps it was not told about.
 */
import { Cause, Deferred, Effect, Exit } from "effect"
import type { ExecutionRecord } from "../DurableExecutionJournal.ts"
import type { RunJournal } from "./FencedJournal.ts"

/** Due executions woken per journal query. */
const BATCH = 256

/** The pause before looking again at due executions that could not be woken (at most the poll). */
const STUCK_PAUSE_MILLIS = 1_000

export interface DurableTimer {
  /** An execution will be due at `wakeAt` (epoch ms): look again by then. */
  readonly poke: (wakeAt: number) => void
  /** The timer's loop; it never ends on its own. */
  readonly loop: Effect.Effect<never>
}

export const make = (options: {
  readonly journal: RunJournal
  readonly now: () => number
  /** How long to wait at most between two looks (Infinity: only when poked or due). */
  readonly pollMillis: number
  /** The shards to look at (undefined: all). */
  readonly shards: () => ReadonlyArray<number> | undefined
  /** Wakes one due execution. */
  readonly wake: (row: ExecutionRecord) => Effect.Effect<unknown, unknown>
}): DurableTimer => {
  const { journal, now, pollMillis } = options
  /** When the loop will look again (epoch ms); an earlier poke wakes it. */
  let timerAt = Number.POSITIVE_INFINITY
  let poked: Deferred.Deferred<void> | undefined
  /** A poke arrived while the loop was listing or waking: it lists again before waiting. */
  let pokedWhileBusy = false

  const poke = (wakeAt: number) => {
    const waiting = poked
    if (waiting === undefined) {
      pokedWhileBusy = true
      return
    }
    if (wakeAt >= timerAt) return
    poked = undefined
    Deferred.doneUnsafe(waiting, Exit.void)
  }

  const loop = Effect.gen(function* () {
    while (true) {
      pokedWhileBusy = false
      const at = now()
      const shards = options.shards()
      // A failure (a row that no longer decodes, the journal down for good) is logged and the
      // timer looks again after a poll interval: it never stops for good.
      const found =
        shards !== undefined && shards.length === 0
          ? { due: [], nextWakeAt: null }
          : yield* journal.listDue(at, BATCH, shards).pipe(
              Effect.catchCause((cause) =>
                Effect.as(Effect.logError("the durable timer could not list due executions", cause), {
                  due: [],
                  nextWakeAt: at + pollMillis
                })
              )
            )
      const { due, nextWakeAt } = found
      let failed = 0
      yield* Effect.forEach(
        due,
        (row) =>
          options.wake(row).pipe(
            Effect.catchCause((cause) => {
              if (Cause.hasInterruptsOnly(cause)) return Effect.interrupt
              failed++
              return Effect.logError(`the durable timer could not wake ${row.executionId}`, cause)
            })
          ),
        { concurrency: "unbounded", discard: true }
      )
      if (due.length === BATCH || pokedWhileBusy) continue
      // Something due that this look could not wake (a row the journal left out because it does
      // not decode, a wake that failed) is looked at again after a pause, not at once: at once,
      // the timer would spin on it, listing and logging as fast as the journal answers.
      const stuck = failed === due.length && nextWakeAt !== null && nextWakeAt <= at
      const next = stuck ? at + Math.min(pollMillis, STUCK_PAUSE_MILLIS) : nextWakeAt
      const wait = Math.max(0, Math.min(pollMillis, (next ?? Number.POSITIVE_INFINITY) - at))
      timerAt = at + wait
      poked = Deferred.makeUnsafe<void>()
      yield* Number.isFinite(wait)
        ? Effect.raceFirst(Effect.sleep(wait), Deferred.await(poked))
        : Deferred.await(poked)
      poked = undefined
      timerAt = Number.POSITIVE_INFINITY
    }
  })
  return { poke, loop }
}
