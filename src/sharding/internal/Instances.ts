/**
 * The entities of one type running on this pod, by id. An `Instance` is one running entity: its
 * mailbox and fiber, its state (loaded on its first message), the message in hand, and the answers
 * it gave lately (a duplicate is answered from them without a read).
 *
 * An instance is retired when it stops: marked `stopping` and forgotten, so the next message for its
 * id starts a new instance (which reloads the state from the store). Whatever a stopping instance
 * still holds goes back to its sender (`giveBack`).
 */
import type { Fiber, Ref } from "effect"
import type { EntityStateDecodeError } from "../EntityErrors.ts"
import type { EntityFence, MessageKey } from "../EntityStore.ts"
import { type Answer, answer, type Envelope } from "./Envelope.ts"
import { Mailbox } from "./Mailbox.ts"

/** One running entity. */
export interface Instance {
  readonly entityId: string
  readonly shard: number
  readonly fence: EntityFence | undefined
  readonly mailbox: Mailbox<Envelope>
  fiber: Fiber.Fiber<void> | undefined
  state: Ref.Ref<unknown> | undefined
  broken: EntityStateDecodeError | undefined
  current: Envelope | undefined
  lastActive: number
  stopping: boolean
  /** Answers of the messages handled since the entity started, by id (the last few). */
  readonly recent: Map<string, Answer>
  /** Messages that answered `Processing` and wait for their redelivery: not handled as ahead. */
  readonly deferred: Set<string>
}

/** How many answers an instance remembers. */
const RECENT = 256

export interface Instances {
  /** The instances running now, by entity id. */
  readonly byId: Map<string, Instance>
  /** A new instance, running from now on (its fiber is the caller's to start). */
  readonly add: (entityId: string, shard: number, fence: EntityFence | undefined) => Instance
  /** The store's key of a message of `instance`. */
  readonly keyOf: (instance: Instance, messageId: string) => MessageKey
  /** Stops `instance` taking messages and forgets it (unless a newer instance has its id already). */
  readonly retire: (instance: Instance) => void
  /** `instance` runs still: not stopping, and not replaced by a newer instance. */
  readonly isCurrent: (instance: Instance) => boolean
  /** A message `instance` will not handle: its sender stores it for the owner; the pickup may take it again. */
  readonly giveBack: (instance: Instance, envelope: Envelope) => void
  readonly ofShard: (shard: number) => Array<Instance>
}

export const make = (env: {
  readonly entityType: string
  readonly now: () => number
  readonly release: (key: MessageKey) => void
}): Instances => {
  const byId = new Map<string, Instance>()
  const keyOf = (instance: Instance, messageId: string): MessageKey => ({
    entityType: env.entityType,
    entityId: instance.entityId,
    messageId
  })
  return {
    byId,
    add: (entityId, shard, fence) => {
      const instance: Instance = {
        entityId,
        shard,
        fence,
        mailbox: new Mailbox<Envelope>(),
        fiber: undefined,
        state: undefined,
        broken: undefined,
        current: undefined,
        lastActive: env.now(),
        stopping: false,
        recent: new Map(),
        deferred: new Set()
      }
      byId.set(entityId, instance)
      return instance
    },
    keyOf,
    retire: (instance) => {
      instance.stopping = true
      if (byId.get(instance.entityId) === instance) byId.delete(instance.entityId)
    },
    isCurrent: (instance) => byId.get(instance.entityId) === instance && !instance.stopping,
    giveBack: (instance, envelope) => {
      answer(envelope, { _tag: "Reroute" })
      if (envelope.stored) env.release(keyOf(instance, envelope.messageId))
    },
    ofShard: (shard) => [...byId.values()].filter((instance) => instance.shard === shard)
  }
}

/** Remembers a reply `instance` gave, for a duplicate of its message; returns `value`. */
export const remember = (instance: Instance, envelope: Envelope, value: Answer): Answer => {
  // A dead letter may be replayed: only replies are final.
  if (value._tag !== "Reply") return value
  instance.recent.set(envelope.messageId, value)
  if (instance.recent.size > RECENT) instance.recent.delete(instance.recent.keys().next().value!)
  return value
}
