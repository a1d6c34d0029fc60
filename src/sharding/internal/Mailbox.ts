/** An entity's mailbox: messages in arrival order, one taker (the entity's fiber). */
import { Deferred, Effect, Exit } from "effect"

export class Mailbox<A> {
  private items: Array<A> = []
  private waiter: Deferred.Deferred<void> | undefined

  /** Adds a message, waking the taker. */
  offer(item: A): void {
    this.items.push(item)
    const waiter = this.waiter
    if (waiter !== undefined) {
      this.waiter = undefined
      Deferred.doneUnsafe(waiter, Exit.void)
    }
  }

  /** The next message, waiting for one. */
  readonly take: Effect.Effect<A> = Effect.suspend(() => {
    if (this.items.length > 0) return Effect.succeed(this.items.shift() as A)
    const waiter = Deferred.makeUnsafe<void>()
    this.waiter = waiter
    return Effect.andThen(Deferred.await(waiter), this.take)
  })

  /** Removes and returns every message held. */
  clear(): Array<A> {
    const items = this.items
    this.items = []
    return items
  }

  get size(): number {
    return this.items.length
  }
}
