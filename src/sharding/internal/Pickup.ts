/**
 * The owner's side of stored messages: every interval, read the pending messages of the shards
 * this pod runs and hand each to its entity. A cursor (the last `seq` seen) keeps each read small;
 * a full pass from the start, every few rounds and whenever a shard arrives, catches messages whose
 * `seq` was taken before a later one committed (PostgreSQL sequences are not commit-ordered).
 * Messages handed out and not yet handled are `known` and skipped.
 */
import { Effect } from "effect"
import type { EntityStore, MessageKey, StoredMessage } from "../EntityStore.ts"

const PAGE = 500
/** A full pass every this many rounds. */
const FULL_PASS_EVERY = 20

const keyString = (key: MessageKey) => `${key.entityType}\u0000${key.entityId}\u0000${key.messageId}`

export interface Pickup {
  /** One round: reads new pending messages and delivers them. */
  readonly round: Effect.Effect<void, unknown>
  /** The next round reads from the start (a shard arrived). */
  readonly rescan: () => void
  /** The message was handled (or given back): it may be handed out again if still pending. */
  readonly release: (key: MessageKey) => void
  /** Marks a message as held by an entity here (delivered without the pickup). */
  readonly hold: (key: MessageKey) => void
}

export const make = (options: {
  readonly store: EntityStore["Service"]
  readonly shards: () => ReadonlyArray<number>
  /** Hands a message to its entity; false when it cannot be taken now (left pending). */
  readonly deliver: (message: StoredMessage) => Effect.Effect<boolean>
}): Pickup => {
  const known = new Set<string>()
  let cursor = 0
  let rounds = 0
  let full = true

  const round = Effect.gen(function* () {
    const shards = options.shards()
    if (shards.length === 0) return
    const fromStart = full || ++rounds % FULL_PASS_EVERY === 0
    full = false
    let after = fromStart ? 0 : cursor
    while (true) {
      const page = yield* options.store.pending({ shards, afterSeq: after, limit: PAGE })
      for (const message of page) {
        if (message.seq > cursor) cursor = message.seq
        const key = keyString(message)
        if (known.has(key)) continue
        known.add(key)
        if (!(yield* options.deliver(message))) known.delete(key)
      }
      if (page.length < PAGE) return
      after = page[page.length - 1]!.seq
    }
  })

  return {
    round,
    rescan: () => {
      full = true
    },
    release: (key) => {
      known.delete(keyString(key))
    },
    hold: (key) => {
      known.add(keyString(key))
    }
  }
}
