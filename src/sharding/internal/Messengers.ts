/**
 * The messenger of one entity type (see `Messenger`): validates and encodes a message, hands it to
 * the entity when this pod runs its shard, else stores it for the owner and waits for the reply.
 */
import { Duration, Effect, Option, Result } from "effect"
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
import type { EntityPush, PodNetwork, Route } from "../PodNetwork.ts"
import type { AnyEntityType, MessageOf } from "../RecipientType.ts"
import type * as Deadlines from "./Deadlines.ts"
import * as EntityRuntime from "./EntityRuntime.ts"
import { bytesOver, validId } from "./Inbound.ts"
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
  /** The deadlines of local sends (see `Deadlines`). */
  readonly deadlines: Deadlines.Deadlines
  readonly now: () => number
  readonly defaultTimeoutMillis: number
  /** The direct path to the owners on other pods; undefined: the store is the only path. */
  readonly remote: Remote | undefined
}

/** What a messenger needs of the pods' network (see `PodNetwork`). */
export interface Remote {
  /** The owner of `shard` and its address, as this pod knows it. */
  readonly route: (shard: number) => Route | undefined
  readonly refresh: Effect.Effect<void>
  readonly learn: (shard: number, route: Route | null) => void
  readonly push: PodNetwork["push"]
  /** Runs `effect` in the background, until the sharding stops. */
  readonly background: (effect: Effect.Effect<void>) => Effect.Effect<void>
}

/** Sends to a pod that answered `NotOwner`, following its hint, at most this many times. */
const NOT_OWNER_RETRIES = 4

/** What a sender here learns besides an `Answer`: no reply in time, or the entity is not here after all. */
const TimedOut = { _tag: "TimedOut" } as const
/** A pushed message its owner's entity has (a `sendDiscard` over the network). */
const Accepted = { _tag: "Accepted" } as const
const NotDelivered = { _tag: "NotDelivered" } as const
type LocalAnswer = EntityRuntime.Answer | typeof TimedOut | typeof NotDelivered

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
  ): Result.Result<Prepared, MalformedMessageError | InvalidEntityIdError | MessageTooLargeError> => {
    if (!validId(entityId)) return Result.fail(new InvalidEntityIdError({ entityType: type.name, entityId }))
    const encoded = encodeJsonRoundTrip(type.schema, message)
    if (Result.isFailure(encoded)) {
      return Result.fail(
        new MalformedMessageError({
          entityType: type.name,
          entityId,
          path: encoded.failure.path,
          detail: encoded.failure.message
        })
      )
    }
    const json = encoded.success.json
    const bytes = bytesOver(json, type.maxMessageBytes)
    if (bytes !== undefined) {
      return Result.fail(
        new MessageTooLargeError({ entityType: type.name, entityId, bytes, limit: type.maxMessageBytes })
      )
    }
    // The id of the message as its owner will decode it (see `Inbound`).
    const messageId = type.messageId(encoded.success.value)
    if (typeof messageId !== "string" || !validId(messageId)) {
      return Result.fail(
        new MalformedMessageError({
          entityType: type.name,
          entityId,
          path: "<messageId>",
          detail: `the message id ${JSON.stringify(messageId)} must be 1 to 512 characters without NUL`
        })
      )
    }
    return Result.succeed({
      entityId,
      messageId,
      shard: env.shardOf(entityId),
      payload: json,
      value: encoded.success.value
    })
  }

  /** The runtime that handles the entity here, or why not: elsewhere (undefined) or unknown type. */
  const local = (prepared: Prepared): EntityRuntime.EntityRuntime | undefined | UnknownEntityTypeError => {
    if (fenceOf(prepared.shard) === undefined) return undefined
    const runtime = env.runtimeOf(type.name)
    return runtime === undefined
      ? new UnknownEntityTypeError({ entityType: type.name, entityId: prepared.entityId })
      : runtime
  }

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

  const envelopeOf = (
    prepared: Prepared,
    stored: boolean,
    answer: ((answer: EntityRuntime.Answer) => void) | undefined
  ): EntityRuntime.Envelope => ({
    messageId: prepared.messageId,
    message: prepared.value,
    payload: prepared.payload,
    stored,
    answer
  })

  const timedOut = (prepared: Prepared) =>
    Effect.fail(new MessageTimeoutError({ ...keyOf(prepared), timeoutMillis }))

  /** `send` through the store, at most `remainingMillis`. */
  const sendViaStore = (prepared: Prepared, remainingMillis: number): Effect.Effect<any, any> =>
    within(prepared, remainingMillis, viaStore(prepared))

  /** The reply `answer` gives, if it comes within `remainingMillis`; else `MessageTimeoutError`. */
  const within = (
    prepared: Prepared,
    remainingMillis: number,
    answer: Effect.Effect<EntityRuntime.Answer, EntityStoreError>
  ): Effect.Effect<any, any> =>
    remainingMillis <= 0
      ? timedOut(prepared)
      : Effect.flatMap(Effect.timeoutOption(answer, remainingMillis), (given) =>
          Option.isSome(given) ? fromAnswer(prepared, given.value) : timedOut(prepared)
        )

  /**
   * `send` to an entity of another pod: over the network, the store path as the fallback. A
   * persisted message is stored first (I5); its stored reply stays the truth, so a lost push or
   * reply costs one poll of the store.
   */
  const sendViaNetwork = (remote: Remote, prepared: Prepared): Effect.Effect<any, any> => {
    const deadline = now() + timeoutMillis
    if (!type.persisted) {
      return Effect.flatMap(viaNetwork(remote, prepared, false, true, deadline), (answer) =>
        answer === undefined || answer._tag === "Accepted" || answer._tag === "Reroute"
          ? sendViaStore(prepared, deadline - now())
          : fromAnswer(prepared, answer)
      )
    }
    return Effect.flatMap(enqueue(prepared), (enqueued) => {
      if (enqueued._tag === "Known" && enqueued.outcome.status !== "pending") {
        return fromAnswer(prepared, toAnswer(prepared, enqueued.outcome))
      }
      return Effect.flatMap(viaNetwork(remote, prepared, true, true, deadline), (answer) => {
        if (answer !== undefined && answer._tag !== "Accepted" && answer._tag !== "Reroute") {
          return fromAnswer(prepared, answer)
        }
        // Stored already: the owner finds it in the store; its reply is read from there.
        const stored = Effect.map(waiters.await(keyOf(prepared)), (outcome) => toAnswer(prepared, outcome))
        return within(prepared, deadline - now(), stored)
      })
    })
  }

  /**
   * Hands the message to its entity here and waits for the answer, at most `timeoutMillis` (a
   * lane deadline rather than a timer and two racing fibers per call). `NotDelivered` when the
   * runtime does not run the entity's shard now.
   */
  const askHere = (runtime: EntityRuntime.EntityRuntime, prepared: Prepared) =>
    Effect.callback<LocalAnswer>((resume) => {
      const deadline = env.deadlines.add(timeoutMillis, () => resume(Effect.succeed(TimedOut)))
      const delivered = runtime.deliver(
        prepared.entityId,
        envelopeOf(prepared, false, (answer) => {
          env.deadlines.cancel(deadline)
          resume(Effect.succeed(answer))
        })
      )
      if (!delivered) {
        env.deadlines.cancel(deadline)
        resume(Effect.succeed(NotDelivered))
        return
      }
      return Effect.sync(() => env.deadlines.cancel(deadline))
    })

  /** `sendDiscard` past the volatile local case: stored first, then handed to the entity if it is here. */
  const discardViaStore = (prepared: Prepared, runtime: EntityRuntime.EntityRuntime | undefined) =>
    Effect.map(enqueue(prepared), (enqueued) => {
      if (enqueued._tag !== "Stored" || runtime === undefined) return
      // This pod owns the entity: hand it over now rather than at the next read of the store.
      const key = keyOf(prepared)
      pickup.hold(key)
      if (!runtime.deliver(prepared.entityId, envelopeOf(prepared, true, undefined))) pickup.release(key)
    })

  const wireOf = (prepared: Prepared, stored: boolean, awaitReply: boolean): EntityPush => ({
    ...keyOf(prepared),
    shard: prepared.shard,
    payload: prepared.payload,
    stored,
    awaitReply
  })

  /**
   * Pushes the message to its owner over the network, following `NotOwner` hints, until
   * `deadline`. Undefined: take the store path (no route, the owner cannot be reached, or it
   * keeps saying another pod owns the shard).
   */
  const viaNetwork = (
    remote: Remote,
    prepared: Prepared,
    stored: boolean,
    awaitReply: boolean,
    deadline: number
  ): Effect.Effect<EntityRuntime.Answer | typeof Accepted | undefined> =>
    Effect.gen(function* () {
      const message = wireOf(prepared, stored, awaitReply)
      for (let attempt = 0; attempt < NOT_OWNER_RETRIES; attempt++) {
        let route = remote.route(prepared.shard)
        if (route === undefined) {
          yield* remote.refresh
          route = remote.route(prepared.shard)
        }
        const remaining = deadline - now()
        if (route === undefined || remaining <= 0) return undefined
        const pushed = yield* Effect.result(remote.push(route.address, message, remaining))
        if (Result.isFailure(pushed)) return undefined
        const answer = pushed.success
        switch (answer._tag) {
          case "Reply":
            return EntityRuntime.decodeReply(type.name, prepared.entityId, prepared.value, answer.reply)
          case "Accepted":
            return Accepted
          case "Dead":
            return { _tag: "Dead", error: answer.error }
          case "Failed":
            return { _tag: "Failed", error: answer.error }
          case "UnknownType":
            return undefined
          case "NotOwner":
            // The shard moved (or is moving): follow the hint, else read the routes again (after a
            // pause that grows, for a shard between two owners).
            if (answer.owner !== null && answer.owner.podId !== route.podId) {
              remote.learn(prepared.shard, answer.owner)
            } else {
              yield* Effect.sleep(10 * 2 ** attempt)
              yield* remote.refresh
            }
        }
      }
      return undefined
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
      Effect.suspend((): Effect.Effect<void, MessengerError> => {
        const prepared = prepare(entityId, message)
        if (Result.isFailure(prepared)) return Effect.fail(prepared.failure)
        const runtime = local(prepared.success)
        if (runtime instanceof UnknownEntityTypeError) return Effect.fail(runtime)
        if (
          !type.persisted &&
          runtime !== undefined &&
          runtime.deliver(entityId, envelopeOf(prepared.success, false, undefined))
        ) {
          return Effect.void
        }
        const remote = runtime === undefined ? env.remote : undefined
        if (remote === undefined) return discardViaStore(prepared.success, runtime)
        if (type.persisted) {
          // Stored first (I5), then pushed: the owner has it without reading the store.
          return Effect.flatMap(enqueue(prepared.success), (enqueued) =>
            enqueued._tag === "Stored"
              ? remote.background(
                  Effect.asVoid(viaNetwork(remote, prepared.success, true, false, now() + timeoutMillis))
                )
              : Effect.void
          )
        }
        return Effect.flatMap(
          viaNetwork(remote, prepared.success, false, false, now() + timeoutMillis),
          (answer) => (answer === undefined ? discardViaStore(prepared.success, undefined) : Effect.void)
        )
      }),
    send: (entityId) => (message) =>
      Effect.suspend(() => {
        const result = prepare(entityId, message)
        if (Result.isFailure(result)) return Effect.fail(result.failure)
        const prepared = result.success
        const runtime = local(prepared)
        if (runtime instanceof UnknownEntityTypeError) return Effect.fail(runtime)
        if (runtime === undefined) {
          return env.remote === undefined
            ? sendViaStore(prepared, timeoutMillis)
            : sendViaNetwork(env.remote, prepared)
        }
        const started = now()
        return Effect.flatMap(askHere(runtime, prepared), (answer) => {
          if (answer._tag === "TimedOut") return timedOut(prepared)
          if (answer._tag === "NotDelivered" || answer._tag === "Reroute") {
            return sendViaStore(prepared, timeoutMillis - (now() - started))
          }
          return fromAnswer(prepared, answer)
        })
      })
  } as Messenger<MessageOf<T>>
}
