/**
 * Reads batched per tick: callers that ask at about the same time share one query (the reads an
 * entity makes before handling a message, to skip one processed already).
 */
import { Deferred, Effect, Exit } from "effect"

/** Batches calls of `run` made before the scheduler yields into one call (at most `max` items). */
export const make = <I, A, E>(
  run: (items: ReadonlyArray<I>) => Effect.Effect<ReadonlyArray<A>, E>,
  max = 500
): ((item: I) => Effect.Effect<A, E>) => {
  let queued: Array<{ readonly item: I; readonly done: Deferred.Deferred<A, E> }> = []
  const flush = Effect.gen(function* () {
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
  })
  return (item) =>
    Effect.suspend(() => {
      const done = Deferred.makeUnsafe<A, E>()
      queued.push({ item, done })
      return queued.length === 1
        ? Effect.andThen(Effect.forkDetach(flush), Deferred.await(done))
        : Deferred.await(done)
    })
}
