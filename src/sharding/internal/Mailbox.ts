/** An entity's mailbox: messages in arrival order, one taker (the entity's fiber). */
import { Effect } from "effect"

export class Mailbox<A> {
  private items: Array<A> = []
  /** The index of the oldest message in `items` (taken ones before it are dropped in bulk). */
  private head = 0
  private waiter: (() => void) | undefined

  /** Adds a message, waking the taker. */
  offer(item: A): void {
    this.items.push(item)
    const waiter = this.waiter
    if (waiter !== undefined) {
      this.waiter = undefined
      waiter()
    }
  }

  /** The next message, waiting for one. */
  readonly take: Effect.Effect<A> = Effect.suspend(() => {
    if (this.head < this.items.length) return Effect.succeed(this.next())
    // Resumed with `take` itself: a taker interrupted meanwhile leaves the message in the mailbox.
    return Effect.callback<A>((resume) => {
      this.waiter = () => resume(this.take)
    })
  })

  private next(): A {
    const item = this.items[this.head]!
    this.items[this.head] = undefined as A
    this.head++
    if (this.head === this.items.length) {
      this.items.length = 0
      this.head = 0
    } else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head)
      this.head = 0
    }
    return item
  }

  /** Removes and returns every message held. */
  clear(): Array<A> {
    const items = this.items.slice(this.head)
    this.items = []
    this.head = 0
    return items
  }

  get size(): number {
    return this.items.length - this.head
  }
}
