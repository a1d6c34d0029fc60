/**
 * After the handler: the message's outcome recorded, then its sender answered. A volatile message
 * is answered at once. A message of a persisted type, or a stored one, is answered once its owner
 * write is done (`OwnerWrites`): the reply and the state after it, in one write. A reply or a state
 * the type's schemas refuse, or a handler that gave up, dead-letters the message. A handler that
 * answered `Processing` gets its message back after `redeliverMillis`.
 */
import { Effect, MutableRef, Ref, Result, type Scope } from "effect"
import { encodeJsonResult } from "../../internal/codec.ts"
import * as LeaseGuard from "../../internal/LeaseGuard.ts"
import type { EntityStore, EntityStoreError } from "../EntityStore.ts"
import type { AnyEntityType } from "../RecipientType.ts"
import { answer, type Envelope } from "./Envelope.ts"
import type { GaveUp, Handled } from "./HandlerAttempts.ts"
import { type Instance, type Instances, remember } from "./Instances.ts"
import type { OwnerWrites } from "./OwnerWrites.ts"
import { encodeOutcome } from "./Replies.ts"

export interface Outcomes {
  /** After the handler: the outcome written (persisted or stored messages), then the answer. */
  readonly record: (
    instance: Instance,
    envelope: Envelope,
    handled: Handled | GaveUp
  ) => Effect.Effect<void, EntityStoreError>
}

export const make = (env: {
  readonly type: AnyEntityType
  readonly store: EntityStore["Service"]
  /** The type stores its entities' state along with each reply. */
  readonly storesState: boolean
  readonly maxAttempts: number
  readonly redeliverMillis: number
  readonly instances: Instances
  readonly ownerWrites: OwnerWrites
  readonly now: () => number
  /** Where the redelivery timers of `Processing` messages run. */
  readonly scope: Scope.Scope
}): Outcomes => {
  const { type, store, storesState, instances } = env
  const { keyOf } = instances
  const { ownerWrite, settle, deadLettered } = env.ownerWrites

  const record = (
    instance: Instance,
    envelope: Envelope,
    handled: Handled | GaveUp
  ): Effect.Effect<void, EntityStoreError> => {
    if (instance.broken !== undefined) {
      answer(envelope, { _tag: "Failed", error: instance.broken })
      return Effect.void
    }
    if (handled._tag === "GaveUp") {
      return Effect.andThen(
        Effect.logWarning(
          `entity ${type.name}/${instance.entityId}: message ${envelope.messageId} failed ${env.maxAttempts} time(s); dead-lettered`,
          handled.error
        ),
        deadLettered(instance, envelope, handled.error)
      )
    }
    const state = handled.state
    if (state._tag === "Processing") return redeliverLater(instance, envelope)
    const encoded = encodeOutcome(envelope.message, state.reply)
    const stateJson =
      storesState && instance.state !== undefined
        ? encodeJsonResult(type.state!, Ref.getUnsafe(instance.state))
        : undefined
    if (Result.isFailure(encoded) || (stateJson !== undefined && Result.isFailure(stateJson))) {
      // A reply or state the schemas refuse: a bug of the handler, not worth retrying.
      const failure = Result.isFailure(encoded)
        ? encoded.failure
        : (stateJson as Result.Failure<never, any>).failure
      if (instance.state !== undefined) MutableRef.set(instance.state.ref, handled.before)
      const error = `the ${Result.isFailure(encoded) ? "reply" : "state"} does not match its schema at ${failure.path}: ${failure.message}`
      return deadLettered(instance, envelope, error)
    }
    const { json, exit } = encoded.success
    if (!(type.persisted || envelope.stored)) {
      answer(envelope, remember(instance, envelope, { _tag: "Reply", reply: exit, json }))
      return Effect.void
    }
    const write = ownerWrite(instance, (fence) =>
      store.complete([
        {
          ...keyOf(instance, envelope.messageId),
          fence,
          shard: instance.shard,
          payload: envelope.payload,
          reply: json,
          state: stateJson === undefined ? undefined : (stateJson as Result.Success<string, never>).success,
          now: env.now()
        }
      ])
    )
    return Effect.flatMap(write, (result) => {
      if (result?._tag !== "Written") return Effect.asVoid(settle(instance, envelope, result, handled.before))
      answer(envelope, remember(instance, envelope, { _tag: "Reply", reply: exit, json }))
      return Effect.void
    })
  }

  /**
   * `Processing`: the message goes back to the mailbox after `redeliverMillis`, or to its sender if
   * the entity stopped meanwhile. The wait is the message's, not the entity's: forked outside the
   * entity's lease (`LeaseGuard`), which would interrupt it after a lapse and lose the message
   * (held by this pod, so never picked up again here). A wait that never ran its end (interrupted,
   * or forked into a scope already closing: such a fiber never starts) gives the message back.
   */
  const redeliverLater = (instance: Instance, envelope: Envelope) => {
    instance.deferred.add(envelope.messageId)
    let settled = false
    const back = Effect.sync(() => {
      settled = true
      if (instances.isCurrent(instance)) {
        instance.mailbox.offer(envelope)
      } else {
        instances.giveBack(instance, envelope)
      }
    })
    return LeaseGuard.unguarded(
      Effect.forkIn(Effect.andThen(Effect.sleep(env.redeliverMillis), back), env.scope)
    ).pipe(
      Effect.flatMap((fiber) =>
        Effect.sync(() => {
          fiber.addObserver(() => {
            if (!settled) {
              settled = true
              instances.giveBack(instance, envelope)
            }
          })
        })
      )
    )
  }

  return { record }
}
