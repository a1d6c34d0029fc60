/**
 * Sharding (the talk's second half): entities addressed by id, each running on exactly one pod of
 * the cluster, the one that owns its shard. Register a behaviour per entity type on every pod, and
 * send messages from anywhere with a messenger; where the entity lives is the cluster's business.
 *
 * Delivery: a sender on the owning pod hands the message to the entity directly; a sender elsewhere
 * stores it, and the owner reads it from the store (every `deliveryPollInterval`) and stores the
 * reply, which the sender reads back. Messages of a persisted type are stored before `sendDiscard`
 * returns, processed exactly once by message id, and their reply and the entity's state are stored
 * in one transaction, fenced by the shard's epoch (invariants I3, I5).
 *
 * @example
 * ```ts
 * import { Effect, Layer, Option, Ref } from "effect"
 * import { MemoryJournal, MessageState, RecipientBehaviour, Sharding } from "effect-cluster"
 *
 * const registered = Layer.effectDiscard(
 *   Sharding.registerEntity(CounterEntity)(
 *     RecipientBehaviour.fromFunctionEffectStateful(
 *       () => Effect.succeed(0),
 *       (_, message, stateRef) => Ref.update(stateRef, (n) => n + 1).pipe(Effect.as(MessageState.Processed(Option.none())))
 *     )
 *   )
 * )
 * const program = Effect.gen(function* () {
 *   const counter = yield* Sharding.messenger(CounterEntity)
 *   yield* counter.sendDiscard("counter-1")(new Increment({ messageId: "m-1" }))
 *   return yield* counter.send("counter-1")(new GetCurrent({ messageId: "m-2" }))
 * })
 * program.pipe(Effect.provide(registered), Effect.provide(Sharding.layer()), Effect.provide(MemoryJournal.layer))
 * ```
 */
import { Clock, Context, Duration, Effect, Layer, Option, Result, type Scope } from "effect"
import { decodeJsonResult, encodeJsonRoundTrip } from "../internal/codec.ts"
import {
  type EntityStateDecodeError,
  InvalidEntityIdError,
  MalformedMessageError,
  MessageDeadLetteredError,
  MessageTimeoutError,
  MessageTooLargeError,
  UnknownEntityTypeError
} from "./EntityErrors.ts"
import {
  type DeadLetter,
  type EntityFence,
  EntityStore,
  type EntityStoreError,
  type MessageKey,
  type StoredMessage
} from "./EntityStore.ts"
import * as Batcher from "./internal/Batcher.ts"
import * as Deadlines from "./internal/Deadlines.ts"
import * as EntityRuntime from "./internal/EntityRuntime.ts"
import * as Pickup from "./internal/Pickup.ts"
import * as ReplyWaiters from "./internal/ReplyWaiters.ts"
import { Membership } from "./Membership.ts"
import type { FailureOf, ReplyTypes, SuccessOf } from "./Message.ts"
import type { RecipientBehaviour } from "./RecipientBehaviour.ts"
import type { AnyEntityType, MessageOf, StateOf } from "./RecipientType.ts"

/** Every error a messenger call can fail with besides a request's own failure. */
export type MessengerError =
  | MalformedMessageError
  | MessageTooLargeError
  | InvalidEntityIdError
  | UnknownEntityTypeError
  | MessageTimeoutError
  | MessageDeadLetteredError
  | EntityStateDecodeError
  | EntityStoreError

/** The reply of `send`: a request's success; nothing for a plain message. */
// biome-ignore lint/suspicious/noConfusingVoidType: a plain message's send returns nothing
export type ReplyOf<M> = typeof ReplyTypes extends keyof M ? SuccessOf<M> : void

/** Sends messages to the entities of one type, wherever they run. */
export interface Messenger<Msg> {
  /**
   * Sends `message` and returns once it is accepted: for a persisted type, durably stored (I5);
   * for a volatile one, handed to its entity or stored for its owner.
   */
  readonly sendDiscard: (entityId: string) => (message: Msg) => Effect.Effect<void, MessengerError>
  /**
   * Sends `message` and waits for its reply: a request's success, or its failure. Sending a
   * message id again returns the first reply without handling it again (persisted types).
   */
  readonly send: (
    entityId: string
  ) => <M extends Msg>(message: M) => Effect.Effect<ReplyOf<M>, FailureOf<M> | MessengerError>
}

/** Options of `Sharding.layer`. */
export interface ShardingOptions {
  /** How often owners read stored messages and senders read replies from other pods. Default 100 ms. */
  readonly deliveryPollInterval?: Duration.Input | undefined
  /** How long `send` waits for a reply. Default 30 seconds. */
  readonly sendTimeout?: Duration.Input | undefined
  /**
   * How long replies (and the records that make a resent message id a duplicate) are kept after
   * processing. Default 1 day.
   */
  readonly replyRetention?: Duration.Input | undefined
}

/** Options of `registerEntity`. */
export interface RegisterOptions {
  /** An entity idle this long stops (its next message starts it again). Default 60 seconds. */
  readonly passivateAfter?: Duration.Input | undefined
  /** Attempts of a failing handler before its message is dead-lettered. Default 5. */
  readonly maxAttempts?: number | undefined
  /** The wait before the first retry, doubled each time (at most 30 s). Default 100 ms. */
  readonly retryDelay?: Duration.Input | undefined
  /** When a handler answers `Processing`, the wait before its message is delivered again. Default 1 second. */
  readonly redeliverAfter?: Duration.Input | undefined
}

/** Options of a messenger. */
export interface MessengerOptions {
  /** How long `send` waits for a reply (default: the layer's `sendTimeout`). */
  readonly timeout?: Duration.Input | undefined
}

/** The sharding of this process. */
export class Sharding extends Context.Service<
  Sharding,
  {
    /** Registers `behaviour` for the entities of `type` on this pod, until the sharding stops. */
    readonly register: <T extends AnyEntityType, R>(
      type: T,
      behaviour: RecipientBehaviour<MessageOf<T>, StateOf<T>, R>,
      options?: RegisterOptions
    ) => Effect.Effect<void, never, R>
    /** A messenger for `type`. */
    readonly messenger: <T extends AnyEntityType>(
      type: T,
      options?: MessengerOptions
    ) => Messenger<MessageOf<T>>
    /** Dead letters, oldest first (of one type if given). */
    readonly deadLetters: (query?: {
      readonly entityType?: string | undefined
      readonly limit?: number | undefined
    }) => Effect.Effect<ReadonlyArray<DeadLetter>, EntityStoreError>
    /** Makes a dead letter pending again: its entity handles it anew. False if it is not a dead letter. */
    readonly replayDeadLetter: (key: MessageKey) => Effect.Effect<boolean, EntityStoreError>
    /** How many entities of `type` run on this pod now. */
    readonly activeEntities: (type: AnyEntityType) => number
  }
>()("effect-cluster/sharding/Sharding") {}

const millis = (input: Duration.Input | undefined, fallback: Duration.Input): number =>
  Duration.toMillis(Duration.fromInputUnsafe(input ?? fallback))

const validId = (id: string) => id.length > 0 && id.length <= 512 && !id.includes("\u0000")

interface Registered {
  readonly type: AnyEntityType
  readonly runtime: EntityRuntime.EntityRuntime
}

/** Builds the sharding of this process on the `Membership` and `EntityStore` in context. */
export const make = (
  options?: ShardingOptions
): Effect.Effect<Sharding["Service"], never, Scope.Scope | Membership | EntityStore> =>
  Effect.gen(function* () {
    const membership = yield* Membership
    const store = yield* EntityStore
    const clock = yield* Clock.Clock
    const now = () => clock.currentTimeMillisUnsafe()
    const scope = yield* Effect.scope
    const pollMillis = millis(options?.deliveryPollInterval, "100 millis")
    const defaultTimeout = millis(options?.sendTimeout, "30 seconds")
    const retentionMillis = millis(options?.replyRetention, "1 day")
    const pod = membership.pod
    const types = new Map<string, Registered>()
    /** The shards this pod runs, with their epoch (null: every shard, unfenced). */
    const owned = new Map<number, number | null>()
    const waiters = yield* ReplyWaiters.make(store, pollMillis)
    const outcome = Batcher.make(store.outcomes)
    const deadlines = yield* Deadlines.make

    const fenceOf = (shard: number): EntityFence | null | undefined => {
      if (!owned.has(shard)) return undefined
      if (pod === undefined) return null
      const epoch = pod.epochOf(shard)
      return epoch === undefined || epoch !== owned.get(shard) ? undefined : { shard, epoch }
    }

    const pickup = Pickup.make({
      store,
      shards: () => [...owned.keys()].filter((shard) => fenceOf(shard) !== undefined),
      deliver: (message) => deliverStored(message)
    })

    const warnedTypes = new Set<string>()
    /** A stored message, to its entity here. */
    const deliverStored = (message: StoredMessage): Effect.Effect<boolean> =>
      Effect.gen(function* () {
        const registered = types.get(message.entityType)
        if (registered === undefined) {
          if (!warnedTypes.has(message.entityType)) {
            warnedTypes.add(message.entityType)
            yield* Effect.logWarning(
              `a message to entity type ${message.entityType} (entity ${message.entityId}) is stored for this pod, but no behaviour is registered for that type here: it stays pending`
            )
          }
          return false
        }
        const { type, runtime } = registered
        const decoded = decodeStored(type, message.payload)
        if (Result.isFailure(decoded)) {
          // A stored message that no longer decodes: set aside with the reason, nothing deleted.
          const fence = fenceOf(message.shard)
          if (fence === undefined) return false
          const error = `the stored message does not decode with the type's schema at ${decoded.failure.path}: ${decoded.failure.message}`
          yield* Effect.logWarning(
            `entity ${type.name}/${message.entityId}: message ${message.messageId}: ${error}`
          )
          yield* store
            .deadLetter([{ ...message, fence: fence ?? undefined, error, now: now() }])
            .pipe(
              Effect.catchCause((cause) =>
                Effect.logWarning("could not dead-letter a malformed message", cause)
              )
            )
          return true
        }
        return runtime.deliver(message.entityId, {
          messageId: message.messageId,
          message: decoded.success,
          payload: message.payload,
          stored: true,
          answer: undefined
        })
      })

    yield* membership.subscribe({
      acquired: (shard, epoch) =>
        Effect.sync(() => {
          owned.set(shard, pod === undefined ? null : epoch)
          pickup.rescan()
        }),
      lost: (shard) =>
        Effect.suspend(() => {
          owned.delete(shard)
          return Effect.forEach([...types.values()], ({ runtime }) => runtime.stopShard(shard), {
            discard: true
          })
        }),
      handOver: (shard, deadline) =>
        Effect.suspend(() =>
          Effect.forEach([...types.values()], ({ runtime }) => runtime.drainShard(shard, deadline), {
            concurrency: "unbounded",
            discard: true
          }).pipe(Effect.ensuring(Effect.sync(() => owned.delete(shard))))
        )
    })
    yield* Effect.addFinalizer(() =>
      Effect.forEach([...types.values()], ({ runtime }) => runtime.stopAll, { discard: true })
    )

    const logged = (what: string, effect: Effect.Effect<void, unknown>) =>
      Effect.catchCause(effect, (cause) => Effect.logWarning(`sharding: ${what} failed`, cause))
    yield* Effect.forkScoped(
      Effect.forever(
        Effect.andThen(Effect.sleep(pollMillis), logged("reading stored messages", pickup.round))
      )
    )
    const purgeEvery = Math.min(3_600_000, Math.max(1_000, retentionMillis / 10))
    yield* Effect.forkScoped(
      Effect.forever(
        Effect.andThen(
          Effect.sleep(purgeEvery),
          logged(
            "purging old replies",
            Effect.suspend(() => store.purge(now() - retentionMillis))
          )
        )
      )
    )

    const register = <T extends AnyEntityType, R>(
      type: T,
      behaviour: RecipientBehaviour<MessageOf<T>, StateOf<T>, R>,
      registerOptions?: RegisterOptions
    ): Effect.Effect<void, never, R> =>
      Effect.gen(function* () {
        if (types.has(type.name)) {
          return yield* Effect.die(new TypeError(`entity type ${type.name} is registered twice on this pod`))
        }
        const services = yield* Effect.context<R>()
        const settings: EntityRuntime.RuntimeSettings = {
          passivateMillis: millis(registerOptions?.passivateAfter, "60 seconds"),
          maxAttempts: Math.max(1, registerOptions?.maxAttempts ?? 5),
          retryDelayMillis: millis(registerOptions?.retryDelay, "100 millis"),
          redeliverMillis: millis(registerOptions?.redeliverAfter, "1 second")
        }
        const runtime = EntityRuntime.make(
          {
            type,
            behaviour: behaviour as RecipientBehaviour<any, any, any>,
            services: services as Context.Context<never>,
            settings,
            store,
            fenceOf,
            mayWrite: (fence) => pod?.mayWrite(fence.shard, fence.epoch) ?? true,
            fenced: (fence) => pod?.fenced(fence.shard, fence.epoch),
            withheld: (fence) => pod?.withheld(fence.shard, fence.epoch),
            shardOf: membership.shardOf,
            now,
            outcome,
            release: pickup.release
          },
          scope
        )
        types.set(type.name, { type, runtime })
        const sweep = Math.max(10, Math.min(settings.passivateMillis / 4, 5_000))
        yield* Effect.forkIn(
          Effect.forever(Effect.andThen(Effect.sleep(sweep), runtime.passivateIdle)),
          scope
        )
        pickup.rescan()
      })

    const messenger = <T extends AnyEntityType>(
      type: T,
      messengerOptions?: MessengerOptions
    ): Messenger<MessageOf<T>> => {
      const timeoutMillis =
        messengerOptions?.timeout === undefined
          ? defaultTimeout
          : millis(messengerOptions.timeout, "30 seconds")

      /** Validates and encodes a message: its id, its JSON, and the value its handler will see. */
      const prepare = (
        entityId: string,
        message: unknown
      ): Result.Result<Prepared, MalformedMessageError | InvalidEntityIdError | MessageTooLargeError> => {
        if (!validId(entityId))
          return Result.fail(new InvalidEntityIdError({ entityType: type.name, entityId }))
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
        // A UTF-16 code unit is at most 3 bytes of UTF-8: count the bytes only near the limit.
        if (json.length * 3 > type.maxMessageBytes) {
          const bytes = Buffer.byteLength(json)
          if (bytes > type.maxMessageBytes) {
            return Result.fail(
              new MessageTooLargeError({
                entityType: type.name,
                entityId,
                bytes,
                limit: type.maxMessageBytes
              })
            )
          }
        }
        const messageId = type.messageId(message)
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
          shard: membership.shardOf(entityId),
          payload: json,
          value: encoded.success.value
        })
      }

      /** The runtime that handles the entity here, or why not: elsewhere (undefined) or unknown type. */
      const local = (
        prepared: Prepared
      ): EntityRuntime.EntityRuntime | undefined | UnknownEntityTypeError => {
        if (fenceOf(prepared.shard) === undefined) return undefined
        const registered = types.get(type.name)
        return registered === undefined
          ? new UnknownEntityTypeError({ entityType: type.name, entityId: prepared.entityId })
          : registered.runtime
      }

      const keyOf = (prepared: Prepared): MessageKey => ({
        entityType: type.name,
        entityId: prepared.entityId,
        messageId: prepared.messageId
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

      /** Stores the message for the owner: its outcome if it was stored before. */
      const enqueue = (prepared: Prepared) =>
        Effect.map(
          store.enqueue([
            { ...keyOf(prepared), shard: prepared.shard, payload: prepared.payload, now: now() }
          ]),
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

      const timedOut = (prepared: Prepared) =>
        Effect.fail(new MessageTimeoutError({ ...keyOf(prepared), timeoutMillis }))

      /** `send` through the store, at most `remainingMillis`. */
      const sendViaStore = (prepared: Prepared, remainingMillis: number): Effect.Effect<any, any> =>
        remainingMillis <= 0
          ? timedOut(prepared)
          : Effect.flatMap(Effect.timeoutOption(viaStore(prepared), remainingMillis), (answer) =>
              Option.isSome(answer) ? fromAnswer(prepared, answer.value) : timedOut(prepared)
            )

      /**
       * Hands the message to its entity here and waits for the answer, at most `timeoutMillis` (a
       * lane deadline rather than a timer and two racing fibers per call). `NotDelivered` when the
       * runtime does not run the entity's shard now.
       */
      const askHere = (runtime: EntityRuntime.EntityRuntime, prepared: Prepared) =>
        Effect.callback<LocalAnswer>((resume) => {
          const deadline = deadlines.add(timeoutMillis, () => resume(Effect.succeed(TimedOut)))
          const delivered = runtime.deliver(
            prepared.entityId,
            envelopeOf(prepared, false, (answer) => {
              deadlines.cancel(deadline)
              resume(Effect.succeed(answer))
            })
          )
          if (!delivered) {
            deadlines.cancel(deadline)
            resume(Effect.succeed(NotDelivered))
            return
          }
          return Effect.sync(() => deadlines.cancel(deadline))
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

      /** `sendDiscard` past the volatile local case: stored first, then handed to the entity if it is here. */
      const discardViaStore = (prepared: Prepared, runtime: EntityRuntime.EntityRuntime | undefined) =>
        Effect.map(enqueue(prepared), (enqueued) => {
          if (enqueued._tag !== "Stored" || runtime === undefined) return
          // This pod owns the entity: hand it over now rather than at the next read of the store.
          const key = keyOf(prepared)
          pickup.hold(key)
          if (!runtime.deliver(prepared.entityId, envelopeOf(prepared, true, undefined))) pickup.release(key)
        })

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
            return discardViaStore(prepared.success, runtime)
          }),
        send: (entityId) => (message) =>
          Effect.suspend(() => {
            const result = prepare(entityId, message)
            if (Result.isFailure(result)) return Effect.fail(result.failure)
            const prepared = result.success
            const runtime = local(prepared)
            if (runtime instanceof UnknownEntityTypeError) return Effect.fail(runtime)
            if (runtime === undefined) return sendViaStore(prepared, timeoutMillis)
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

    return Sharding.of({
      register,
      messenger,
      deadLetters: (query) =>
        store.deadLetters({ entityType: query?.entityType, limit: query?.limit ?? 100 }),
      replayDeadLetter: (key) =>
        Effect.map(store.replay(key, now()), (replayed) => {
          if (replayed) pickup.rescan()
          return replayed
        }),
      activeEntities: (type) => types.get(type.name)?.runtime.active() ?? 0
    })
  })

/** What a sender here learns besides an `Answer`: no reply in time, or the entity is not here after all. */
const TimedOut = { _tag: "TimedOut" } as const
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

/** Decodes a stored payload with the type's schema. */
const decodeStored = (type: AnyEntityType, payload: string) => decodeJsonResult(type.schema, payload)

/**
 * The sharding of this process, on the `Membership` (this process's pod) and the `EntityStore` in
 * context.
 */
export const layer = (options?: ShardingOptions): Layer.Layer<Sharding, never, Membership | EntityStore> =>
  Layer.effect(Sharding, make(options))

/**
 * Registers a behaviour for the entities of `type` on this pod (the talk's
 * `Sharding.registerEntity(type)(behaviour)`).
 */
export const registerEntity =
  <T extends AnyEntityType>(type: T, options?: RegisterOptions) =>
  <R>(behaviour: RecipientBehaviour<MessageOf<T>, StateOf<T>, R>): Effect.Effect<void, never, Sharding | R> =>
    Effect.flatMap(Sharding, (sharding) => sharding.register(type, behaviour, options))

/** A messenger for the entities of `type` (the talk's `Sharding.messenger(type)`). */
export const messenger = <T extends AnyEntityType>(
  type: T,
  options?: MessengerOptions
): Effect.Effect<Messenger<MessageOf<T>>, never, Sharding> =>
  Effect.map(Sharding, (sharding) => sharding.messenger(type, options))
