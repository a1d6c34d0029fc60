/**
 * An entity's life on this pod. It starts on its first message: an instance and a fiber that takes
 * its mailbox one message at a time, in arrival order, in the registration's services. It stops when
 * it has been idle for the passivation time or its shard leaves the pod (`stop`: the handler is
 * interrupted), when its shard is handed over (`handOver`: the message in hand may finish first),
 * when the store refuses its write or fails, or when the pod's lease lapses under it (`LeaseGuard`).
 * Whatever it holds when it stops goes back to its senders (`Reroute`).
 */
import { Cause, Context, Effect, Fiber, Option, Scope } from "effect"
import * as LeaseGuard from "../../internal/LeaseGuard.ts"
import * as Instrument from "../../observability/internal/instrument.ts"
import type { EntityFence, MessageKey } from "../EntityStore.ts"
import type { Dedupe } from "./Dedupe.ts"
import { answer, type Envelope } from "./Envelope.ts"
import type { Instance, Instances } from "./Instances.ts"

export interface EntityLifecycle {
  /** Starts an entity of `shard`: its instance, and its fiber. */
  readonly start: (entityId: string, shard: number, fence: EntityFence | undefined) => Instance
  /** Stops `instance`, interrupting its handler; returns once it stopped. */
  readonly stop: (instance: Instance) => Effect.Effect<void>
  /** Lets `instance` finish the message in hand (at most `deadlineMillis`), then stops it. */
  readonly handOver: (instance: Instance, deadlineMillis: number) => Effect.Effect<void>
}

export const make = (env: {
  readonly entityType: string
  /** The registration's services: the context of every entity fiber. */
  readonly services: Context.Context<never>
  readonly scope: Scope.Scope
  readonly instances: Instances
  readonly mayWrite: (fence: EntityFence) => boolean
  readonly now: () => number
  /** A stored message was handled (or given up on here): the pickup may hand it out again. */
  readonly release: (key: MessageKey) => void
  readonly process: Dedupe["process"]
}): EntityLifecycle => {
  const { entityType, instances, process } = env
  const { giveBack } = instances

  /** The entity's fiber: its messages one at a time, in arrival order, until it stops. */
  const loop = (instance: Instance): Effect.Effect<void> => {
    const next = Effect.flatMap(instance.mailbox.take, (envelope) => {
      instance.current = envelope
      const handled = Instrument.entityMessage(
        entityType,
        instance.entityId,
        envelope.messageId,
        envelope.answer,
        (answer) => process(instance, answer === envelope.answer ? envelope : { ...envelope, answer })
      )
      return Effect.matchCauseEffect(handled, {
        onSuccess: () => {
          done(instance, envelope)
          return Effect.void
        },
        onFailure: (cause) => {
          done(instance, envelope)
          if (Cause.hasInterruptsOnly(cause)) return Effect.interrupt
          // The store failed: we cannot tell whether the outcome was recorded. Start afresh from
          // the store (the next activation reloads the state); the sender re-sends through it.
          answer(envelope, { _tag: "Reroute" })
          instances.retire(instance)
          return Effect.logWarning(
            `entity ${entityType}/${instance.entityId}: the entity store failed while handling message ${envelope.messageId}; restarting the entity`,
            cause
          )
        }
      })
    })
    return Effect.whileLoop({ while: () => !instance.stopping, body: () => next, step: () => {} }).pipe(
      Effect.ensuring(Effect.sync(() => drain(instance)))
    )
  }

  /** After a message, handled or not. */
  const done = (instance: Instance, envelope: Envelope) => {
    instance.current = undefined
    instance.lastActive = env.now()
    if (envelope.stored && instance.broken === undefined)
      env.release(instances.keyOf(instance, envelope.messageId))
  }

  /** Answers everything the entity still holds with `Reroute`. */
  const drain = (instance: Instance) => {
    instances.retire(instance)
    if (instance.current !== undefined) giveBack(instance, instance.current)
    instance.current = undefined
    for (const envelope of instance.mailbox.clear()) giveBack(instance, envelope)
  }

  const start = (entityId: string, shard: number, fence: EntityFence | undefined): Instance => {
    const instance = instances.add(entityId, shard, fence)
    // After a stall past the pod's lease, the entity stops before its handler takes another step
    // (see `LeaseGuard`); its messages go back to their senders.
    const entity =
      fence === undefined
        ? loop(instance)
        : LeaseGuard.guard(loop(instance), {
            holds: () => env.mayWrite(fence),
            lapsed: () => {
              instance.stopping = true
            }
          })
    instance.fiber = Effect.runForkWith(Context.add(env.services, Scope.Scope, env.scope))(entity)
    return instance
  }

  const stop = (instance: Instance): Effect.Effect<void> =>
    Effect.suspend(() => {
      instances.retire(instance)
      return instance.fiber === undefined ? Effect.void : Fiber.interrupt(instance.fiber)
    })

  const handOver = (instance: Instance, deadlineMillis: number): Effect.Effect<void> =>
    Effect.gen(function* () {
      // No new message starts; the one in hand may finish and record its outcome.
      for (const envelope of instance.mailbox.clear()) giveBack(instance, envelope)
      instances.retire(instance)
      if (instance.fiber === undefined) return
      const ended = yield* Effect.timeoutOption(Fiber.await(instance.fiber), deadlineMillis)
      if (Option.isNone(ended)) yield* Fiber.interrupt(instance.fiber)
    })

  return { start, stop, handOver }
}
