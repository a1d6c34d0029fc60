/**
 * The entities of one type on this pod: each active entity has a mailbox and a fiber that handles
 * its messages one at a time, in arrival order. An entity starts on its first message (loading its
 * stored state, for a persisted type), and stops when it has been idle for `passivateMillis`, when
 * its shard leaves the pod, or when the store refuses its write (another pod owns the shard now).
 *
 * For each message: skip it if it was processed already (exactly-once by message id), run the
 * handler with retries, then record the reply and the state after it in one write, fenced by the
 * shard's epoch, before answering the sender. A handler that keeps failing gets its message
 * dead-lettered; the entity goes on. A persisted entity processes its messages in store order: the
 * pending messages stored before the one in hand are handled first. A sender in this process waits
 * on the envelope's `answer`; `Reroute` sends it to store the message for the shard's owner.
 *
 * This module composes the parts, each in its own module, in the order a message meets them:
 * - `Instances`: the running entities by id, and retiring one when it stops;
 * - `EntityLifecycle`: starting an entity's fiber, its loop over the mailbox, stopping and handover;
 * - `Dedupe`: a message answered from `recent` or the store, the stored messages ahead of it first;
 * - `HandlerAttempts`: the state loaded, the handler run with retries, the state put back on failure;
 * - `Outcomes`: the reply and state encoded and recorded (or the message dead-lettered), then the answer;
 * - `OwnerWrites`: the fenced writes of an outcome, and what a write that did not happen means;
 * - `Envelope` and `Replies`: what a sender hands over and learns, and the reply as stored.
 */
import { type Context, Effect, type Scope } from "effect"
import type { EntityFence, EntityStore, EntityStoreError, MessageKey, OutcomeAhead } from "../EntityStore.ts"
import type { RecipientBehaviour } from "../RecipientBehaviour.ts"
import type { AnyEntityType } from "../RecipientType.ts"
import * as Dedupe from "./Dedupe.ts"
import * as EntityLifecycle from "./EntityLifecycle.ts"
import type { Envelope } from "./Envelope.ts"
import * as HandlerAttempts from "./HandlerAttempts.ts"
import * as Instances from "./Instances.ts"
import * as Outcomes from "./Outcomes.ts"
import * as OwnerWrites from "./OwnerWrites.ts"

export { AHEAD } from "./Dedupe.ts"
export type { Answer, Envelope } from "./Envelope.ts"
export { decodeReply } from "./Replies.ts"

/** Per-type settings. */
export interface RuntimeSettings {
  readonly passivateMillis: number
  readonly maxAttempts: number
  readonly retryDelayMillis: number
  readonly redeliverMillis: number
}

/** What a runtime needs from `Sharding`. */
export interface RuntimeEnv {
  readonly type: AnyEntityType
  readonly behaviour: RecipientBehaviour<any, any, any>
  readonly services: Context.Context<never>
  readonly settings: RuntimeSettings
  readonly store: EntityStore["Service"]
  /** The fence for a new entity of `shard`: undefined when this pod does not run it now, null unfenced. */
  readonly fenceOf: (shard: number) => EntityFence | null | undefined
  readonly mayWrite: (fence: EntityFence) => boolean
  readonly fenced: (fence: EntityFence) => void
  readonly withheld: (fence: EntityFence) => void
  readonly shardOf: (entityId: string) => number
  readonly now: () => number
  /**
   * The message's outcome and the entity's pending messages ahead of it (at most `AHEAD` of them),
   * batched with the other entities' reads.
   */
  readonly outcome: (key: MessageKey) => Effect.Effect<OutcomeAhead, EntityStoreError>
  /** A stored message was handled (or given up on here): the pickup may hand it out again. */
  readonly release: (key: MessageKey) => void
}

export interface EntityRuntime {
  /** Hands `envelope` to its entity; false when this pod does not run the entity's shard now. */
  readonly deliver: (entityId: string, envelope: Envelope) => boolean
  /** Stops the entities of `shard` (interrupting their handlers); returns once they stopped. */
  readonly stopShard: (shard: number) => Effect.Effect<void>
  /** Lets the entities of `shard` finish the message in hand (at most `deadlineMillis`), then stops them. */
  readonly drainShard: (shard: number, deadlineMillis: number) => Effect.Effect<void>
  /** Stops entities idle for the passivation time. */
  readonly passivateIdle: Effect.Effect<void>
  readonly stopAll: Effect.Effect<void>
  readonly active: () => number
}

export const make = (env: RuntimeEnv, scope: Scope.Scope): EntityRuntime => {
  const { type, behaviour, settings, store } = env
  const storesState = type.persisted && type.state !== undefined && behaviour.initialState !== undefined
  const instances = Instances.make({ entityType: type.name, now: env.now, release: env.release })
  const handler = HandlerAttempts.make({
    type,
    behaviour,
    services: env.services,
    store,
    storesState,
    maxAttempts: settings.maxAttempts,
    retryDelayMillis: settings.retryDelayMillis
  })
  const ownerWrites = OwnerWrites.make({
    type,
    store,
    instances,
    mayWrite: env.mayWrite,
    fenced: env.fenced,
    withheld: env.withheld,
    now: env.now
  })
  const outcomes = Outcomes.make({
    type,
    store,
    storesState,
    maxAttempts: settings.maxAttempts,
    redeliverMillis: settings.redeliverMillis,
    instances,
    ownerWrites,
    now: env.now,
    scope
  })
  const dedupe = Dedupe.make({
    type,
    instances,
    outcome: env.outcome,
    attempt: handler.attempt,
    record: outcomes.record,
    deadLettered: ownerWrites.deadLettered
  })
  const lifecycle = EntityLifecycle.make({
    entityType: type.name,
    services: env.services,
    scope,
    instances,
    mayWrite: env.mayWrite,
    now: env.now,
    release: env.release,
    process: dedupe.process
  })
  const running = instances.byId
  const { start, stop } = lifecycle

  return {
    deliver: (entityId, envelope) => {
      let instance = running.get(entityId)
      if (instance === undefined || instance.stopping) {
        const shard = env.shardOf(entityId)
        const fence = env.fenceOf(shard)
        if (fence === undefined) return false
        instance = start(entityId, shard, fence ?? undefined)
      }
      instance.mailbox.offer(envelope)
      return true
    },
    stopShard: (shard) =>
      Effect.forEach(instances.ofShard(shard), stop, { concurrency: "unbounded", discard: true }),
    drainShard: (shard, deadlineMillis) =>
      Effect.forEach(instances.ofShard(shard), (instance) => lifecycle.handOver(instance, deadlineMillis), {
        concurrency: "unbounded",
        discard: true
      }),
    passivateIdle: Effect.suspend(() => {
      const now = env.now()
      const idle = [...running.values()].filter(
        (instance) =>
          instance.current === undefined &&
          instance.mailbox.size === 0 &&
          now - instance.lastActive >= settings.passivateMillis
      )
      return Effect.forEach(idle, stop, { discard: true })
    }),
    stopAll: Effect.suspend(() =>
      Effect.forEach([...running.values()], stop, { concurrency: "unbounded", discard: true })
    ),
    active: () => running.size
  }
}
