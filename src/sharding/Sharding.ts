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
 * import { Membership, MemoryJournal, MessageState, RecipientBehaviour, Sharding } from "effect-cluster"
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
 * // The process's pod (every shard here: the memory journal has no ShardStore), then the sharding.
 * const cluster = Sharding.layer().pipe(
 *   Layer.provideMerge(Membership.layer()),
 *   Layer.provideMerge(MemoryJournal.layer)
 * )
 * program.pipe(Effect.provide(registered), Effect.provide(cluster))
 * ```
 */
import { Clock, Context, Duration, Effect, Layer, Result, type Scope } from "effect"
import * as Batcher from "../internal/Batcher.ts"
import {
  type DeadLetter,
  type EntityFence,
  EntityStore,
  type EntityStoreError,
  type MessageKey,
  type StoredMessage
} from "./EntityStore.ts"
import * as Deadlines from "./internal/Deadlines.ts"
import * as EntityRuntime from "./internal/EntityRuntime.ts"
import * as Inbound from "./internal/Inbound.ts"
import * as Messengers from "./internal/Messengers.ts"
import * as Pickup from "./internal/Pickup.ts"
import * as PushHandler from "./internal/PushHandler.ts"
import * as ReplyWaiters from "./internal/ReplyWaiters.ts"
import { Membership } from "./Membership.ts"
import type { Messenger, MessengerOptions } from "./Messenger.ts"

/** The messenger's types, here too: `Sharding.Messenger`, `Sharding.MessengerError`. */
export type { Messenger, MessengerError, MessengerOptions, ReplyOf } from "./Messenger.ts"

import type { RecipientBehaviour } from "./RecipientBehaviour.ts"
import type { AnyEntityType, MessageOf, StateOf } from "./RecipientType.ts"

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
  /**
   * How long stopping waits for the entities to stop (their handlers interrupted, their last
   * writes ended) before it goes on without them. Default 10 seconds.
   */
  readonly shutdownTimeout?: Duration.Input | undefined
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

interface Registered {
  readonly type: AnyEntityType
  readonly runtime: EntityRuntime.EntityRuntime
}

/**
 * Stops every entity, for at most `timeoutMillis`: a handler that does not end when interrupted
 * (or a write the store never answers) must not keep the process from stopping. The entities left
 * are named by type; their messages stay stored, and the shard's next owner handles them.
 */
const stopEntities = (types: ReadonlyArray<Registered>, timeoutMillis: number): Effect.Effect<void> =>
  Effect.gen(function* () {
    const late: Array<string> = []
    yield* Effect.forEach(
      types,
      ({ type, runtime }) =>
        Effect.map(Effect.timeoutOption(runtime.stopAll, timeoutMillis), (stopped) => {
          if (stopped._tag === "None") late.push(type.name)
        }),
      { concurrency: "unbounded", discard: true }
    )
    if (late.length > 0) {
      yield* Effect.logWarning(
        `shutdown: entities of ${late.join(", ")} had not stopped within ${timeoutMillis} ms; stopping without them (their stored messages are handled by the shards' next owners)`
      )
    }
  })

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
    /** Without a pod: the shards this process runs (every shard, unfenced), once told so. */
    const unfenced = new Set<number>()
    const waiters = yield* ReplyWaiters.make(store, pollMillis)
    // Before an entity handles a persisted message: its outcome and the stored messages ahead of it.
    const outcome = yield* Batcher.make((keys: ReadonlyArray<MessageKey>) =>
      store.outcomesAhead(keys, EntityRuntime.AHEAD)
    )
    const deadlines = yield* Deadlines.make

    /**
     * The fence of the entities of `shard` here: the pod's own view, read at each use (a copy of it
     * kept here from the listener's calls could fall behind it: a handover's end forgot a shard the
     * pod had taken again meanwhile, at a new epoch). Undefined: not run here now.
     */
    const fenceOf = (shard: number): EntityFence | null | undefined => {
      if (pod === undefined) return unfenced.has(shard) ? null : undefined
      const epoch = pod.epochOf(shard)
      return epoch === undefined ? undefined : { shard, epoch }
    }

    const pickup = Pickup.make({
      store,
      // No entity type registered here: nothing to hand out, so no read of the store every interval.
      shards: () => (types.size === 0 ? [] : pod === undefined ? [...unfenced] : pod.ownedShards()),
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
        const checked = Inbound.check(type, message)
        const shard = membership.shardOf(message.entityId)
        if (Result.isSuccess(checked) && message.shard === shard) {
          return runtime.deliver(message.entityId, {
            messageId: message.messageId,
            message: checked.success,
            payload: message.payload,
            stored: true,
            answer: undefined
          })
        }
        // A stored message its entity must not see: set aside with the reason, nothing deleted.
        const fence = fenceOf(message.shard)
        if (fence === undefined) return false
        const refusal = Result.isFailure(checked)
          ? checked.failure.message
          : `the message is stored under shard ${message.shard}, but its entity's shard is ${shard}`
        yield* Effect.logWarning(
          `entity ${type.name}/${Inbound.shownId(message.entityId)}: stored message ${Inbound.shownId(message.messageId)} refused: ${refusal}`
        )
        return yield* store
          .deadLetter([{ ...message, fence: fence ?? undefined, error: refusal, now: now() }])
          .pipe(
            Effect.as(true),
            // Left pending (the store failed): a later round tries again.
            Effect.catchCause((cause) =>
              Effect.as(Effect.logWarning("could not dead-letter a refused message", cause), false)
            )
          )
      })

    yield* membership.subscribe({
      acquired: (shard) =>
        Effect.sync(() => {
          if (pod === undefined) unfenced.add(shard)
          pickup.rescan()
        }),
      // The pod no longer gives the shard an epoch (`fenceOf`) before it calls these.
      lost: (shard) =>
        Effect.forEach([...types.values()], ({ runtime }) => runtime.stopShard(shard), {
          discard: true
        }),
      handOver: (shard, deadline) =>
        Effect.forEach([...types.values()], ({ runtime }) => runtime.drainShard(shard, deadline), {
          concurrency: "unbounded",
          discard: true
        })
    })
    const shutdownMillis = millis(options?.shutdownTimeout, "10 seconds")
    yield* Effect.addFinalizer(() =>
      Effect.andThen(
        // Other pods take this pod's shards over while its entities stop.
        pod?.leave ?? Effect.void,
        stopEntities([...types.values()], shutdownMillis)
      )
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

    // The direct path: other pods push messages for this pod's entities; senders here push theirs.
    const network = membership.network
    const remote: Messengers.Remote | undefined =
      network === undefined
        ? undefined
        : {
            route: network.routes.ownerOf,
            refresh: network.routes.refresh,
            learn: network.routes.learn,
            push: network.network.push,
            background: (effect) => Effect.asVoid(Effect.forkIn(effect, scope))
          }
    if (network !== undefined) {
      yield* network.network.serve({
        push: PushHandler.make({
          typeOf: (name) => types.get(name),
          shardOf: membership.shardOf,
          fenceOf,
          ownerOf: (shard) => {
            const route = network.routes.ownerOf(shard)
            return route?.podId === pod?.podId ? undefined : route
          },
          pickup
        })
      })
    }

    const messenger = <T extends AnyEntityType>(type: T, messengerOptions?: MessengerOptions) =>
      Messengers.make(
        {
          store,
          shardOf: membership.shardOf,
          fenceOf,
          runtimeOf: (name) => types.get(name)?.runtime,
          pickup,
          waiters,
          deadlines,
          now,
          defaultTimeoutMillis: defaultTimeout,
          remote
        },
        type,
        messengerOptions
      )

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
