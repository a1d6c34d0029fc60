/**
 * Waiting for replies of messages processed on another pod: the sender stored the message, the
 * owner processes it and stores the reply, and this pod reads it back. One fiber polls the
 * outcomes of every message waited for, in one query per interval (per 500), and releases the
 * waiters of each message that is processed or dead.
 */
import { Deferred, Effect, Exit, type Scope } from "effect"
import type { EntityStore, EntityStoreError, MessageKey, MessageOutcome } from "../EntityStore.ts"

const PAGE = 500

/** A final outcome: processed or dead. */
export type FinalOutcome = Exclude<MessageOutcome, { readonly status: "pending" }>

export interface ReplyWaiters {
  /** Waits until the message is processed or dead. */
  readonly await: (key: MessageKey) => Effect.Effect<FinalOutcome, EntityStoreError>
}

const keyString = (key: MessageKey) => `${key.entityType}\u0000${key.entityId}\u0000${key.messageId}`

export const make = (
  store: EntityStore["Service"],
  intervalMillis: number
): Effect.Effect<ReplyWaiters, never, Scope.Scope> =>
  Effect.gen(function* () {
    const waiters = new Map<
      string,
      { readonly key: MessageKey; readonly done: Array<Deferred.Deferred<FinalOutcome, EntityStoreError>> }
    >()
    let wake = Deferred.makeUnsafe<void>()

    const poll = Effect.gen(function* () {
      const entries = [...waiters]
      for (let i = 0; i < entries.length; i += PAGE) {
        const page = entries.slice(i, i + PAGE)
        const outcomes = yield* store.outcomes(page.map(([, waiter]) => waiter.key))
        page.forEach(([key, waiter], index) => {
          const outcome = outcomes[index]
          if (outcome === undefined || outcome.status === "pending") return
          if (waiters.get(key) === waiter) waiters.delete(key)
          for (const done of waiter.done) Deferred.doneUnsafe(done, Exit.succeed(outcome))
        })
      }
    })

    yield* Effect.forkScoped(
      Effect.forever(
        Effect.gen(function* () {
          if (waiters.size === 0) {
            yield* Deferred.await(wake)
            wake = Deferred.makeUnsafe<void>()
          }
          yield* Effect.sleep(intervalMillis)
          yield* poll.pipe(
            Effect.catchCause((cause) =>
              Effect.logWarning("replies of entities on other pods could not be read", cause)
            )
          )
        })
      )
    )

    return {
      await: (key) =>
        Effect.suspend(() => {
          const done = Deferred.makeUnsafe<FinalOutcome, EntityStoreError>()
          const id = keyString(key)
          const waiter = waiters.get(id)
          if (waiter === undefined) waiters.set(id, { key, done: [done] })
          else waiter.done.push(done)
          Deferred.doneUnsafe(wake, Exit.void)
          return Deferred.await(done).pipe(
            Effect.onInterrupt(() =>
              Effect.sync(() => {
                const current = waiters.get(id)
                if (current === undefined) return
                const rest = current.done.filter((d) => d !== done)
                if (rest.length === 0) waiters.delete(id)
                else waiters.set(id, { key, done: rest })
              })
            )
          )
        })
    }
  })
