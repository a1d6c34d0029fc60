/**
 * Running an entity's handler on one message, with retries. The entity's state is loaded before
 * its first message runs (its stored state for a type that stores one, else `initialState`); a
 * stored state that no longer decodes marks the instance `broken`, and its messages are not run.
 * After a failed attempt the state goes back to its value before the message, and the handler runs
 * again after an exponential backoff (at most 30 s); after `maxAttempts` failures it gives up, and
 * the caller dead-letters the message.
 */
import { Cause, type Context, Effect, MutableRef, Ref, Result } from "effect"
import { decodeJsonResult } from "../../internal/codec.ts"
import { EntityStateDecodeError } from "../EntityErrors.ts"
import type { EntityStore } from "../EntityStore.ts"
import type { MessageState } from "../MessageState.ts"
import type { RecipientBehaviour } from "../RecipientBehaviour.ts"
import type { AnyEntityType } from "../RecipientType.ts"
import type { Envelope } from "./Envelope.ts"
import type { Instance } from "./Instances.ts"

/** The handler ran: what it answered, and the state before the message. */
export interface Handled {
  readonly _tag: "Handled"
  readonly state: MessageState<unknown>
  readonly before: unknown
}

/** Every attempt failed; `error` is the last cause, for people. */
export interface GaveUp {
  readonly _tag: "GaveUp"
  readonly error: string
}

const MAX_RETRY_DELAY = 30_000

export interface HandlerAttempts {
  /** Runs the handler on `envelope`'s message until it succeeds or every attempt failed. */
  readonly attempt: (instance: Instance, envelope: Envelope) => Effect.Effect<Handled | GaveUp>
}

export const make = (env: {
  readonly type: AnyEntityType
  readonly behaviour: RecipientBehaviour<any, any, any>
  readonly services: Context.Context<never>
  readonly store: EntityStore["Service"]
  /** The type stores its entities' state (persisted, with a state schema and an initial state). */
  readonly storesState: boolean
  readonly maxAttempts: number
  readonly retryDelayMillis: number
}): HandlerAttempts => {
  const { type, behaviour, store, storesState } = env
  const stateful = behaviour.initialState !== undefined

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
   * fiber, whose context is the registration's services (see `EntityLifecycle.start`).
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
        if (n >= env.maxAttempts) return Effect.succeed({ _tag: "GaveUp", error: Cause.pretty(cause) })
        return Effect.andThen(
          Effect.sleep(Math.min(MAX_RETRY_DELAY, env.retryDelayMillis * 2 ** (n - 1))),
          Effect.suspend(() => attempt(instance, envelope, n + 1))
        )
      }
    })
  }

  return { attempt }
}
