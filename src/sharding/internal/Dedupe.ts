/**
 * Each message processed once, and a persisted entity's messages in store order. A message the
 * entity answered since it started is answered again from `recent`; otherwise a persisted or stored
 * one is looked up in the store, and a processed or dead one is answered from there.
 *
 * For a persisted type the same read returns the entity's pending messages stored before this one
 * (`outcomesAhead`, at most `AHEAD`), and the entity handles those first, by `seq`. So a message
 * whose push is late or lost, or that waits for the pickup, is not overtaken by one sent after it
 * was stored (a local ask, a later push); when its own delivery comes, it is a duplicate. A message
 * whose handler answered `Processing` waits for its redelivery instead (`deferred`).
 */
import { Effect, Result } from "effect"
import { decodeJsonResult } from "../../internal/codec.ts"
import * as Instrument from "../../observability/internal/instrument.ts"
import type { EntityStoreError, MessageKey, OutcomeAhead, StoredMessage } from "../EntityStore.ts"
import type { AnyEntityType } from "../RecipientType.ts"
import { answer, type Envelope } from "./Envelope.ts"
import type { HandlerAttempts } from "./HandlerAttempts.ts"
import type { Instance, Instances } from "./Instances.ts"
import type { Outcomes } from "./Outcomes.ts"
import type { OwnerWrites } from "./OwnerWrites.ts"
import { fromOutcome } from "./Replies.ts"

/**
 * How many pending messages ahead of one the store returns per read; when it returns this many,
 * the entity reads again once it handled them.
 */
export const AHEAD = 100

export interface Dedupe {
  /**
   * One message: skip it if processed already, handle the entity's stored messages ahead of it
   * (persisted types), run the handler, record its outcome, answer.
   */
  readonly process: (instance: Instance, envelope: Envelope) => Effect.Effect<void, EntityStoreError>
}

export const make = (env: {
  readonly type: AnyEntityType
  readonly instances: Instances
  /**
   * The message's outcome and the entity's pending messages ahead of it (at most `AHEAD` of them),
   * batched with the other entities' reads.
   */
  readonly outcome: (key: MessageKey) => Effect.Effect<OutcomeAhead, EntityStoreError>
  readonly attempt: HandlerAttempts["attempt"]
  readonly record: Outcomes["record"]
  readonly deadLettered: OwnerWrites["deadLettered"]
}): Dedupe => {
  const { type, instances, attempt, record, deadLettered } = env
  const { keyOf, giveBack } = instances

  const process = (instance: Instance, envelope: Envelope): Effect.Effect<void, EntityStoreError> => {
    const seen = instance.recent.get(envelope.messageId)
    if (seen !== undefined) {
      answer(envelope, seen)
      return Effect.void
    }
    if (type.persisted || envelope.stored) {
      instance.deferred.delete(envelope.messageId)
      return Effect.flatMap(env.outcome(keyOf(instance, envelope.messageId)), (read) => {
        const given =
          read.outcome === undefined
            ? undefined
            : fromOutcome(type.name, instance.entityId, envelope.message, read.outcome)
        if (given !== undefined) {
          answer(envelope, given)
          return Effect.void
        }
        if (!type.persisted || read.ahead.length === 0) return handle(instance, envelope)
        return inOrder(instance, envelope, read.ahead)
      })
    }
    return handle(instance, envelope)
  }

  /** The stored messages ahead of `envelope` first, in store order, then `envelope`. */
  const inOrder = (
    instance: Instance,
    envelope: Envelope,
    ahead: ReadonlyArray<StoredMessage>
  ): Effect.Effect<void, EntityStoreError> => {
    const waiting = ahead.filter((stored) => !instance.deferred.has(stored.messageId))
    return Effect.andThen(
      Effect.forEach(waiting, (stored) => handleAhead(instance, stored), { discard: true }),
      Effect.suspend(() => {
        // Stopped meanwhile (its shard is handed over, a write was refused): the sender goes elsewhere.
        if (instance.stopping) {
          giveBack(instance, envelope)
          return Effect.void
        }
        // The store may hold more behind the ones it returned: read again (each pass handles some).
        const more = ahead.length >= AHEAD && waiting.length > 0 && instance.broken === undefined
        return more ? process(instance, envelope) : handle(instance, envelope)
      })
    )
  }

  /** A stored message ahead of the one in hand: decoded, handled and recorded; nobody waits here. */
  const handleAhead = (instance: Instance, stored: StoredMessage): Effect.Effect<void, EntityStoreError> =>
    Effect.suspend(() => {
      if (instance.stopping || instance.broken !== undefined) return Effect.void
      const decoded = decodeJsonResult(type.schema, stored.payload)
      const envelope: Envelope = {
        messageId: stored.messageId,
        message: Result.isSuccess(decoded) ? decoded.success : undefined,
        payload: stored.payload,
        stored: true,
        answer: undefined
      }
      return Instrument.entityMessage(type.name, instance.entityId, stored.messageId, undefined, () => {
        if (Result.isSuccess(decoded)) return handle(instance, envelope)
        // A stored message that no longer decodes: set aside with the reason, nothing deleted.
        const error = `the stored message does not decode with the type's schema at ${decoded.failure.path}: ${decoded.failure.message}`
        return Effect.andThen(
          Effect.logWarning(
            `entity ${type.name}/${instance.entityId}: message ${stored.messageId}: ${error}`
          ),
          deadLettered(instance, envelope, error)
        )
      })
    })

  const handle = (instance: Instance, envelope: Envelope): Effect.Effect<void, EntityStoreError> =>
    Effect.flatMap(attempt(instance, envelope), (handled) => record(instance, envelope, handled))

  return { process }
}
