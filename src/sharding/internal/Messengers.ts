/**
 * The messenger of one entity type (see `Messenger`): validates and encodes a message, hands it to
 * the entity when this pod runs its shard, else stores it for the owner and waits for the reply.
 */
import { Deferred, Duration, Effect, Option, Result } from "effect"
import { encodeJsonRoundTrip } from "../../internal/codec.ts"
import {
  InvalidEntityIdError,
  MalformedMessageError,
  MessageDeadLetteredError,
  MessageTimeoutError,
  MessageTooLargeError,
  UnknownEntityTypeError
} from "../EntityErrors.ts"
import type { EntityFence, EntityStore, EntityStoreError, MessageKey } from "../EntityStore.ts"
import type { Messenger, MessengerError, MessengerOptions } from "../Messenger.ts"
import type { AnyEntityType, MessageOf } from "../RecipientType.ts"
import * as EntityRuntime from "./EntityRuntime.ts"
import type { Pickup } from "./Pickup.ts"
import type * as ReplyWaiters from "./ReplyWaiters.ts"

/** What a messenger needs from `Sharding`. */
export interface MessengerEnv {
  readonly store: EntityStore["Service"]
  readonly shardOf: (entityId: string) => number
  readonly fenceOf: (shard: number) => EntityFence | null | undefined
  /** The runtime of a type registered on this pod. */
  readonly runtimeOf: (typeName: string) => EntityRuntime.EntityRuntime | undefined
  readonly pickup: Pickup
  readonly waiters: ReplyWaiters.ReplyWaiters
  readonly now: () => number
  readonly defaultTimeoutMillis: number
}

const validId = (id: string) => id.length > 0 && id.length <= 512 && !id.includes("\u0000")

/** A message ready to send: validated, encoded, with its id and shard. */
interface Prepared {
  readonly entityId: string
  readonly messageId: string
  readonly shard: number
  readonly payload: string
  /** The message as its handler will see it (decoded from `payload`). */
  readonly value: unknown
}

export const make = <T extends AnyEntityType>(
  env: MessengerEnv,
  type: T,
  messengerOptions?: MessengerOptions
): Messenger<MessageOf<T>> => {
  const { store, fenceOf, pickup, waiters, now } = env
  const timeoutMillis =
    messengerOptions?.timeout === undefined
      ? env.defaultTimeoutMillis
      : Duration.toMillis(Duration.fromInputUnsafe(messengerOptions.timeout))

  /** Validates and encodes a message: its id, its JSON, and the value its handler will see. */
  const prepare = (
    entityId: string,
    message: unknown
  ): Effect.Effect<Prepared, MalformedMessageError | InvalidEntityIdError | MessageTooLargeError> =>
    Effect.suspend(
      (): Effect.Effect<Prepared, MalformedMessageError | InvalidEntityIdError | MessageTooLargeError> => {
        if (!validId(entityId))
          return Effect.fail(new InvalidEntityIdError({ entityType: type.name, entityId }))
        const encoded = encodeJsonRoundTrip(type.schema, message)
        if (Result.isFailure(encoded)) {
          return Effect.fail(
            new MalformedMessageError({
              entityType: type.name,
              entityId,
              path: encoded.failure.path,
              detail: encoded.failure.message
            })
          )
        }
        const bytes = Buffer.byteLength(encoded.success.json)
        if (bytes > type.maxMessageBytes) {
          return Effect.fail(
            new MessageTooLargeError({
              entityType: type.name,
              entityId,
              bytes,
              limit: type.maxMessageBytes
            })
          )
        }
        const messageId = type.messageId(message)
        if (typeof messageId !== "string" || !validId(messageId)) {
          return Effect.fail(
            new MalformedMessageError({
              entityType: type.name,
              entityId,
              path: "<messageId>",
              detail: `the message id ${JSON.stringify(messageId)} must be 1 to 512 characters without NUL`
            })
          )
        }
        const shard = env.shardOf(entityId)
        return Effect.succeed({
          entityId,
          messageId,
          shard,
          payload: encoded.success.json,
          value: encoded.success.value
        })
      }
    )

  /** The runtime that handles the entity here, or why not: elsewhere (undefined) or unknown type. */
  const local = (
    prepared: Prepared
  ): Effect.Effect<EntityRuntime.EntityRuntime | undefined, UnknownEntityTypeError> =>
    Effect.suspend(() => {
      if (fenceOf(prepared.shard) === undefined) return Effect.succeed(undefined)
      const runtime = env.runtimeOf(type.name)
      return runtime === undefined
        ? Effect.fail(new UnknownEntityTypeError({ entityType: type.name, entityId: prepared.entityId }))
        : Effect.succeed(runtime)
    })

  const keyOf = (prepared: Prepared): MessageKey => ({
    entityType: type.name,
    entityId: prepared.entityId,
    messageId: prepared.messageId
  })

  /** Stores the message for the owner: its outcome if it was stored before. */
  const enqueue = (prepared: Prepared) =>
    Effect.map(
      store.enqueue([{ ...keyOf(prepared), shard: prepared.shard, payload: prepared.payload, now: now() }]),
      (results) => results[0]!
    )

  const toAnswer = (prepared: Prepared, outcome: ReplyWaiters.FinalOutcome): EntityRuntime.Answer =>
    outcome.status === "dead"
      ? { _tag: "Dead", error: outcome.error }
      : EntityRuntime.decodeReply(type.name, prepared.entityId, prepared.value, outcome.reply)

  /** Through the store: enqueue, then wait for the owner's reply (this pod's pickup, if it owns it). */
  const viaStore = (prepared: Prepared): Effect.Effect<EntityRuntime.Answer, EntityStoreError> =>
    Effect.gen(function* () {
      const enqueued = yield* enqueue(prepared)
      if (enqueued._tag === "Known" && enqueued.outcome.status !== "pending") {
        return toAnswer(prepared, enqueued.outcome)
      }
      return toAnswer(prepared, yield* waiters.await(keyOf(prepared)))
    })

  const answerOf = (prepared: Prepared): Effect.Effect<EntityRuntime.Answer, MessengerError> =>
    Effect.gen(function* () {
      const runtime = yield* local(prepared)
      if (runtime !== undefined) {
        const answer = Deferred.makeUnsafe<EntityRuntime.Answer>()
        const delivered = runtime.deliver(prepared.entityId, {
          messageId: prepared.messageId,
          message: prepared.value,
          payload: prepared.payload,
          stored: false,
          answer
        })
        if (delivered) {
          const given = yield* Deferred.await(answer)
          if (given._tag !== "Reroute") return given
        }
      }
      return yield* viaStore(prepared)
    })

  const fromAnswer = (prepared: Prepared, answer: EntityRuntime.Answer): Effect.Effect<any, any> => {
    switch (answer._tag) {
      case "Reply":
        return answer.reply === undefined ? Effect.void : answer.reply
      case "Dead":
        return Effect.fail(new MessageDeadLetteredError({ ...keyOf(prepared), error: answer.error }))
      case "Failed":
        return Effect.fail(answer.error)
      case "Reroute":
        return Effect.die(new Error("unreachable: a rerouted message is sent through the store"))
    }
  }

  return {
    sendDiscard: (entityId) => (message) =>
      Effect.gen(function* () {
        const prepared = yield* prepare(entityId, message)
        const runtime = yield* local(prepared)
        if (!type.persisted && runtime !== undefined) {
          if (
            runtime.deliver(entityId, {
              messageId: prepared.messageId,
              message: prepared.value,
              payload: prepared.payload,
              stored: false,
              answer: undefined
            })
          )
            return
        }
        const enqueued = yield* enqueue(prepared)
        if (enqueued._tag !== "Stored" || runtime === undefined) return
        // This pod owns the entity: hand it over now rather than at the next read of the store.
        const key = keyOf(prepared)
        pickup.hold(key)
        const delivered = runtime.deliver(entityId, {
          messageId: prepared.messageId,
          message: prepared.value,
          payload: prepared.payload,
          stored: true,
          answer: undefined
        })
        if (!delivered) pickup.release(key)
      }),
    send: (entityId) => (message) =>
      Effect.gen(function* () {
        const prepared = yield* prepare(entityId, message)
        const answer = yield* answerOf(prepared).pipe(
          Effect.timeoutOption(timeoutMillis),
          Effect.flatMap((result) =>
            Option.isSome(result)
              ? Effect.succeed(result.value)
              : Effect.fail(new MessageTimeoutError({ ...keyOf(prepared), timeoutMillis }))
          )
        )
        return yield* fromAnswer(prepared, answer)
      })
  } as Messenger<MessageOf<T>>
}
