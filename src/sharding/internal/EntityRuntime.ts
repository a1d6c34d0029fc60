/**
 * The entities of one type on this pod: each active entity has a mailbox and a fiber that handles
 * its messages one at a time, in arrival order. An entity starts on its first message (loading its
 * stored state, for a persisted type), and stops when it has been idle for `passivateMillis`, when
 * its shard leaves the pod, or when the store refuses its write (another pod owns the shard now).
 *
 * For each message: skip it if it was processed already (exactly-once by message id), run the
 * handler with retries, then record the reply and the state after it in one write, fenced by the
 * shard's epoch, before answering the sender. A handler that keeps failing gets its message
 * dead-lettered; the entity goes on.
 *
 * A persisted entity processes its messages in store order: the read that tells whether a message
 * was processed also returns the entity's pending messages stored before it (`outcomesAhead`), and
 * the entity handles those first, by `seq`. So a message whose push is late or lost, or that
 * waits for the pickup, is not overtaken by one sent after it was stored (a local ask, a later
 * push); when its own delivery comes, it is a duplicate, answered from `recent` or the store.
 *
 * A sender in this process waits on the envelope's `answer`: `Reroute` tells it that this pod
 * cannot process the message after all (the shard moved, the write was refused) and that it must
 * store the message for the shard's owner instead.
 */
import { Cause, Context, Effect, Exit, Fiber, MutableRef, Option, Ref, Result, Scope } from "effect"
import { decodeJsonResult, encodeJsonResult, exitSchema } from "../../internal/codec.ts"
import * as LeaseGuard from "../../internal/LeaseGuard.ts"
import * as Instrument from "../../observability/internal/instrument.ts"
import { EntityStateDecodeError, MalformedMessageError } from "../EntityErrors.ts"
import type {
  EntityFence,
  EntityStore,
  EntityStoreError,
  MessageKey,
  MessageOutcome,
  OutcomeAhead,
  OwnerWriteResult,
  StoredMessage
} from "../EntityStore.ts"
import { requestClassOf } from "../Message.ts"
import type { MessageState } from "../MessageState.ts"
import type { RecipientBehaviour } from "../RecipientBehaviour.ts"
import type { AnyEntityType } from "../RecipientType.ts"
import type * as Inbound from "./Inbound.ts"
import { Mailbox } from "./Mailbox.ts"

/** What the sender of a message in this process learns. */
export type Answer =
  /**
   * Processed; `reply` is the request's `Exit`, or undefined for a message without a reply;
   * `json` is the same `Exit` encoded (what is stored, and what the network carries back).
   */
  | {
      readonly _tag: "Reply"
      readonly reply: Exit.Exit<unknown, unknown> | undefined
      readonly json: string | null
    }
  | { readonly _tag: "Dead"; readonly error: string }
  | {
      readonly _tag: "Failed"
      readonly error: EntityStateDecodeError | EntityStoreError | MalformedMessageError | Inbound.Refusal
    }
  /** Not processed here: store it for the shard's owner. */
  | { readonly _tag: "Reroute" }

/** A message delivered to an entity. */
export interface Envelope {
  readonly messageId: string
  /** The message as the handler sees it (decoded from `payload`). */
  readonly message: unknown
  readonly payload: string
  /** Stored pending in the entity store (else: held only by the waiting sender). */
  readonly stored: boolean
  /** Called once with the answer (undefined: nobody waits). */
  readonly answer: ((answer: Answer) => void) | undefined
}

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

interface Instance {
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

/** The handler ran: what it answered, and the state before the message. */
interface Handled {
  readonly _tag: "Handled"
  readonly state: MessageState<unknown>
  readonly before: unknown
}

/** Every attempt failed; `error` is the last cause, for people. */
interface GaveUp {
  readonly _tag: "GaveUp"
  readonly error: string
}

const RECENT = 256
/**
 * How many pending messages ahead of one the store returns per read; when it returns this many,
 * the entity reads again once it handled them.
 */
export const AHEAD = 100
const MAX_RETRY_DELAY = 30_000

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
  const instances = new Map<string, Instance>()
  const stateful = behaviour.initialState !== undefined
  const storesState = type.persisted && type.state !== undefined && stateful

  const answer = (envelope: Envelope, value: Answer) => {
    envelope.answer?.(value)
  }
  const keyOf = (instance: Instance, messageId: string): MessageKey => ({
    entityType: type.name,
    entityId: instance.entityId,
    messageId
  })

  /** The answer a stored outcome gives the sender. */
  const fromOutcome = (
    instance: Instance,
    envelope: Envelope,
    outcome: MessageOutcome
  ): Answer | undefined => {
    if (outcome.status === "pending") return undefined
    if (outcome.status === "dead") return { _tag: "Dead", error: outcome.error }
    return decodeReply(type.name, instance.entityId, envelope.message, outcome.reply)
  }

  const loadState = (instance: Instance): Effect.Effect<void, unknown> =>
    Effect.gen(function* () {
      if (!stateful || instance.state !== undefined) return
      if (storesState) {
        const stored = yield* store.state({ entityType: type.name, entityId: instance.entityId })
        if (stored !== undefined) {
          const decoded = decodeJsonResult(type.state!, stored)
          if (Result.isFailure(decoded)) {
            instance.broken = new EntityStateDecodeError({
              entityType: type.name,
              entityId: instance.entityId,
              path: decoded.failure.path,
              detail: decoded.failure.message
            })
            return
          }
          instance.state = Ref.makeUnsafe<unknown>(decoded.success)
          return
        }
      }
      const initial = yield* Effect.provideContext(
        behaviour.initialState!(instance.entityId),
        env.services
      ) as Effect.Effect<unknown, unknown>
      instance.state = Ref.makeUnsafe<unknown>(initial)
    })

  /**
   * Runs the handler with retries; the state goes back to its value before the message on failure.
   * Written without generators: this is every message's path. The handler runs in the entity's
   * fiber, whose context is the registration's services (see `start`).
   */
  const attempt = (instance: Instance, envelope: Envelope, n = 1): Effect.Effect<Handled | GaveUp> => {
    const tried: { before: unknown } = { before: undefined }
    const run = (): Effect.Effect<MessageState<unknown> | undefined, unknown> => {
      if (instance.broken !== undefined) return Effect.succeed(undefined)
      // The state before the message, once loaded: what a failure or a refused write goes back to.
      tried.before = instance.state === undefined ? undefined : Ref.getUnsafe(instance.state)
      return behaviour.handle(
        instance.entityId,
        envelope.message,
        instance.state as Ref.Ref<unknown>
      ) as Effect.Effect<MessageState<unknown>, unknown>
    }
    const loaded = stateful && instance.state === undefined ? Effect.andThen(loadState(instance), run) : run()
    return Effect.matchCauseEffect(loaded, {
      onSuccess: (state): Effect.Effect<Handled> =>
        Effect.succeed({ _tag: "Handled", state: state as MessageState<unknown>, before: tried.before }),
      onFailure: (cause) => {
        if (Cause.hasInterruptsOnly(cause)) return Effect.interrupt
        if (instance.state !== undefined && tried.before !== undefined) {
          MutableRef.set(instance.state.ref, tried.before)
        }
        if (n >= settings.maxAttempts) return Effect.succeed({ _tag: "GaveUp", error: Cause.pretty(cause) })
        return Effect.andThen(
          Effect.sleep(Math.min(MAX_RETRY_DELAY, settings.retryDelayMillis * 2 ** (n - 1))),
          Effect.suspend(() => attempt(instance, envelope, n + 1))
        )
      }
    })
  }

  /** The store's write for a message, fenced; undefined when this pod may no longer write. */
  const ownerWrite = (
    instance: Instance,
    write: (
      fence: EntityFence | undefined
    ) => Effect.Effect<ReadonlyArray<OwnerWriteResult>, EntityStoreError>
  ): Effect.Effect<OwnerWriteResult | undefined, EntityStoreError> =>
    Effect.suspend(() => {
      const fence = instance.fence
      if (fence !== undefined && !env.mayWrite(fence)) {
        env.withheld(fence)
        return Effect.succeed(undefined)
      }
      return Effect.map(write(fence), (results) => results[0])
    })

  /**
   * One message: skip it if processed already, handle the entity's stored messages ahead of it
   * (persisted types), run the handler, record its outcome, answer.
   */
  const process = (instance: Instance, envelope: Envelope): Effect.Effect<void, EntityStoreError> => {
    const seen = instance.recent.get(envelope.messageId)
    if (seen !== undefined) {
      answer(envelope, seen)
      return Effect.void
    }
    if (type.persisted || envelope.stored) {
      instance.deferred.delete(envelope.messageId)
      return Effect.flatMap(env.outcome(keyOf(instance, envelope.messageId)), (read) => {
        const given = read.outcome === undefined ? undefined : fromOutcome(instance, envelope, read.outcome)
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

  /** After the handler: the outcome written (persisted or stored messages), then the answer. */
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
          `entity ${type.name}/${instance.entityId}: message ${envelope.messageId} failed ${settings.maxAttempts} time(s); dead-lettered`,
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

  /** The message is set aside with `error` (stored as a dead letter if it is stored or persisted). */
  const deadLettered = (instance: Instance, envelope: Envelope, error: string) =>
    Effect.gen(function* () {
      if (type.persisted || envelope.stored) {
        const result = yield* ownerWrite(instance, (fence) =>
          store.deadLetter([
            {
              ...keyOf(instance, envelope.messageId),
              fence,
              shard: instance.shard,
              payload: envelope.payload,
              error,
              now: env.now()
            }
          ])
        )
        if (!(yield* settle(instance, envelope, result, undefined))) return
      }
      answer(envelope, remember(instance, envelope, { _tag: "Dead", error }))
    })

  /**
   * After an owner write: true when it was written. Otherwise answers the sender (the stored
   * outcome, or `Reroute`), puts the state back, and stops the entity when the write was refused.
   */
  const settle = (
    instance: Instance,
    envelope: Envelope,
    result: OwnerWriteResult | undefined,
    before: unknown
  ): Effect.Effect<boolean> =>
    Effect.gen(function* () {
      if (result?._tag === "Written") return true
      if (instance.state !== undefined && before !== undefined) yield* Ref.set(instance.state, before)
      if (result?._tag === "AlreadyDone") {
        answer(envelope, fromOutcome(instance, envelope, result.outcome) ?? { _tag: "Reroute" })
        return false
      }
      if (result?._tag === "Stale" && instance.fence !== undefined) env.fenced(instance.fence)
      // Refused by the store or by the pod's own clock: another pod owns the shard (or will).
      instance.stopping = true
      if (instances.get(instance.entityId) === instance) instances.delete(instance.entityId)
      answer(envelope, { _tag: "Reroute" })
      return false
    })

  const remember = (instance: Instance, envelope: Envelope, value: Answer): Answer => {
    // A dead letter may be replayed: only replies are final.
    if (value._tag !== "Reply") return value
    instance.recent.set(envelope.messageId, value)
    if (instance.recent.size > RECENT) instance.recent.delete(instance.recent.keys().next().value!)
    return value
  }

  /** `Processing`: the message goes back to the mailbox after `redeliverMillis`. */
  const redeliverLater = (instance: Instance, envelope: Envelope) => {
    instance.deferred.add(envelope.messageId)
    return Effect.forkIn(
      Effect.andThen(
        Effect.sleep(settings.redeliverMillis),
        Effect.sync(() => {
          if (instances.get(instance.entityId) === instance && !instance.stopping) {
            instance.mailbox.offer(envelope)
          } else {
            giveBack(instance, envelope)
          }
        })
      ),
      scope
    ).pipe(Effect.asVoid)
  }

  /** A message this entity will not handle: its sender stores it for the owner; the pickup may take it again. */
  const giveBack = (instance: Instance, envelope: Envelope) => {
    answer(envelope, { _tag: "Reroute" })
    if (envelope.stored) env.release(keyOf(instance, envelope.messageId))
  }

  /** The entity's fiber: its messages one at a time, in arrival order, until it stops. */
  const loop = (instance: Instance): Effect.Effect<void> => {
    const next = Effect.flatMap(instance.mailbox.take, (envelope) => {
      instance.current = envelope
      const handled = Instrument.entityMessage(
        type.name,
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
          instance.stopping = true
          if (instances.get(instance.entityId) === instance) instances.delete(instance.entityId)
          return Effect.logWarning(
            `entity ${type.name}/${instance.entityId}: the entity store failed while handling message ${envelope.messageId}; restarting the entity`,
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
    if (envelope.stored && instance.broken === undefined) env.release(keyOf(instance, envelope.messageId))
  }

  /** Answers everything the entity still holds with `Reroute`. */
  const drain = (instance: Instance) => {
    instance.stopping = true
    if (instances.get(instance.entityId) === instance) instances.delete(instance.entityId)
    if (instance.current !== undefined) giveBack(instance, instance.current)
    instance.current = undefined
    for (const envelope of instance.mailbox.clear()) giveBack(instance, envelope)
  }

  const start = (entityId: string, shard: number, fence: EntityFence | undefined): Instance => {
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
    instances.set(entityId, instance)
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
    instance.fiber = Effect.runForkWith(Context.add(env.services, Scope.Scope, scope))(entity)
    return instance
  }

  const stop = (instance: Instance): Effect.Effect<void> =>
    Effect.suspend(() => {
      instance.stopping = true
      if (instances.get(instance.entityId) === instance) instances.delete(instance.entityId)
      return instance.fiber === undefined ? Effect.void : Fiber.interrupt(instance.fiber)
    })

  const ofShard = (shard: number) => [...instances.values()].filter((instance) => instance.shard === shard)

  return {
    deliver: (entityId, envelope) => {
      let instance = instances.get(entityId)
      if (instance === undefined || instance.stopping) {
        const shard = env.shardOf(entityId)
        const fence = env.fenceOf(shard)
        if (fence === undefined) return false
        instance = start(entityId, shard, fence ?? undefined)
      }
      instance.mailbox.offer(envelope)
      return true
    },
    stopShard: (shard) => Effect.forEach(ofShard(shard), stop, { concurrency: "unbounded", discard: true }),
    drainShard: (shard, deadlineMillis) =>
      Effect.forEach(
        ofShard(shard),
        (instance) =>
          Effect.gen(function* () {
            // No new message starts; the one in hand may finish and record its outcome.
            for (const envelope of instance.mailbox.clear()) giveBack(instance, envelope)
            instance.stopping = true
            if (instances.get(instance.entityId) === instance) instances.delete(instance.entityId)
            if (instance.fiber === undefined) return
            const ended = yield* Effect.timeoutOption(Fiber.await(instance.fiber), deadlineMillis)
            if (Option.isNone(ended)) yield* Fiber.interrupt(instance.fiber)
          }),
        { concurrency: "unbounded", discard: true }
      ),
    passivateIdle: Effect.suspend(() => {
      const now = env.now()
      const idle = [...instances.values()].filter(
        (instance) =>
          instance.current === undefined &&
          instance.mailbox.size === 0 &&
          now - instance.lastActive >= settings.passivateMillis
      )
      return Effect.forEach(idle, stop, { discard: true })
    }),
    stopAll: Effect.suspend(() =>
      Effect.forEach([...instances.values()], stop, { concurrency: "unbounded", discard: true })
    ),
    active: () => instances.size
  }
}

/** The outcome of a message without reply: nothing stored, nothing to answer with. */
const NoReply = Result.succeed({ json: null, exit: undefined })

/** The reply to store for `message` and the `Exit` to answer with (none for a message without reply). */
const encodeOutcome = (
  message: unknown,
  reply: Option.Option<unknown>
): Result.Result<
  { readonly json: string | null; readonly exit: Exit.Exit<unknown, unknown> | undefined },
  { readonly path: string; readonly message: string }
> => {
  const request = requestClassOf(message)
  if (request === undefined) return NoReply
  const value = Option.getOrUndefined(reply)
  const exit: Exit.Exit<unknown, unknown> = Exit.isExit(value) ? value : Exit.succeed(value)
  return Result.map(encodeJsonResult(exitSchema(request.success, request.failure), exit), (json) => ({
    json,
    exit
  }))
}

/** Decodes a stored reply for the sender of `message`. */
export const decodeReply = (
  entityType: string,
  entityId: string,
  message: unknown,
  reply: string | null
): Answer => {
  const request = requestClassOf(message)
  if (request === undefined || reply === null) return { _tag: "Reply", reply: undefined, json: null }
  const decoded = decodeJsonResult(exitSchema(request.success, request.failure), reply)
  return Result.isSuccess(decoded)
    ? { _tag: "Reply", reply: decoded.success as Exit.Exit<unknown, unknown>, json: reply }
    : {
        _tag: "Failed",
        error: new MalformedMessageError({
          entityType,
          entityId,
          path: decoded.failure.path,
          detail: `the stored reply does not decode: ${decoded.failure.message}`
        })
      }
}
