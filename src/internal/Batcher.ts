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
import { Deferred, Effect, Exit, type Fiber, type Scope } from "effect"

/**
 * Batches calls of `run` made before the scheduler yields into one call (at most `max` items).
 * Made in the context its flushes run in (the sharding's, the engine's). When the scope closes,
 * a flush in progress is told to stop (a read retried through an outage does not outlive its
 * owner; the close does not wait for it), and its callers, and those still queued, are interrupted.
 */
export const make = <I, A, E>(
  run: (items: ReadonlyArray<I>) => Effect.Effect<ReadonlyArray<A>, E>,
  max = 500
): Effect.Effect<(item: I) => Effect.Effect<A, E>, never, Scope.Scope> =>
  Effect.gen(function* () {
    const context = yield* Effect.context<never>()
    type Entry = { readonly item: I; readonly done: Deferred.Deferred<A, E> }
    let queued: Array<Entry> = []
    let inFlight: ReadonlyArray<Entry> = []
    /** A flush is running (set before its fiber starts, cleared by its end). */
    let flushing = false
    let fiber: Fiber.Fiber<void> | undefined
    let closed = false
    const flush: Effect.Effect<void> = Effect.gen(function* () {
      yield* Effect.yieldNow
      while (queued.length > 0) {
        const batch = queued.slice(0, max)
        queued = queued.slice(batch.length)
        inFlight = batch
        const exit = yield* Effect.exit(run(batch.map((entry) => entry.item)))
        inFlight = []
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
          fiber = undefined
          // Pushed after the loop's last look (the fiber may yield before this runs): nobody else
          // would start a flush for them (`test/internal/Batcher.test.ts`).
          if (queued.length > 0) start()
        })
      )
    )
    function start() {
      if (closed) return
      // A fiber of its own, never the caller's (see the module comment).
      flushing = true
      const started = Effect.runForkWith(context)(flush)
      if (flushing) fiber = started
    }
    yield* Effect.addFinalizer(() =>
      Effect.suspend(() => {
        closed = true
        const left = [...inFlight, ...queued]
        queued = []
        inFlight = []
        for (const entry of left) Deferred.doneUnsafe(entry.done, Exit.interrupt())
        // Told to stop, not waited for: a shutdown never waits on a read that does not answer.
        fiber?.interruptUnsafe()
        return Effect.void
      })
    )
    return (item: I): Effect.Effect<A, E> =>
      Effect.suspend(() => {
        if (closed) return Effect.interrupt
        const done = Deferred.makeUnsafe<A, E>()
        queued.push({ item, done })
        if (!flushing) start()
        return Deferred.await(done)
      })
  })
