/**
 * Calls batched per tick: callers that ask at about the same time share one query (the reads an
 * entity makes before handling a message, to skip one processed already; the journal loads of the
 * runs an engine resumes).
 *
 * The queue is the pod's, not a caller's: its flushes run in a fiber of the context the batcher was
 * made in, never in a caller's. A caller is an entity's or a run's fiber, guarded by its shard's lease
 * (`LeaseGuard`), and a fiber it forked would answer to that lease too: after a pause past the
 * lease, the flush was interrupted at its first step with the queue still full, no later caller
 * started another, and every persisted message of the pod waited for good.
 */
import { Deferred, Effect, Exit } from "effect"

/**
 * Batches calls of `run` made before the scheduler yields into one call (at most `max` items).
 * Made in the context its flushes run in (the sharding's, the engine's).
 */
export const make = <I, A, E>(
  run: (items: ReadonlyArray<I>) => Effect.Effect<ReadonlyArray<A>, E>,
  max = 500
): Effect.Effect<(item: I) => Effect.Effect<A, E>> =>
  Effect.map(Effect.context<never>(), (context) => {
    let queued: Array<{ readonly item: I; readonly done: Deferred.Deferred<A, E> }> = []
    let flushing = false
    const flush: Effect.Effect<void> = Effect.gen(function* () {
      yield* Effect.yieldNow
      while (queued.length > 0) {
        const batch = queued.slice(0, max)
        queued = queued.slice(batch.length)
        const exit = yield* Effect.exit(run(batch.map((entry) => entry.item)))
        batch.forEach((entry, index) => {
          Deferred.doneUnsafe(
            entry.done,
            Exit.isSuccess(exit) ? Exit.succeed(exit.value[index] as A) : (exit as Exit.Exit<never, E>)
          )
        })
      }
    }).pipe(
      Effect.ensuring(
        Effect.sync(() => {
          flushing = false
          // Pushed after the loop's last look (the fiber may yield before this runs): nobody else
          // would start a flush for them (`test/internal/Batcher.test.ts`).
          if (queued.length > 0) start()
        })
      )
    )
    function start() {
      flushing = true
      Effect.runForkWith(context)(flush)
    }
    return (item) =>
      Effect.suspend(() => {
        const done = Deferred.makeUnsafe<A, E>()
        queued.push({ item, done })
        if (!flushing) start()
        return Deferred.await(done)
      })
  })
