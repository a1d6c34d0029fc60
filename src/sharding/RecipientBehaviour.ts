/**
 * Behaviours (the talk's `RecipientBehaviour`): what an entity does with each message. An entity
 * handles one message at a time, in arrival order; different entities run concurrently.
 *
 * - `fromFunctionEffect(handler)`: stateless.
 * - `fromFunctionEffectStateful(initialState, handler)`: the handler gets a `Ref` with the entity's
 *   state. On a persisted type the state after each `Processed` message is stored with it (and
 *   loaded when the entity starts again); when the handler fails, the state goes back to what it
 *   was before the message.
 *
 * A handler that fails (or dies) is retried with backoff; after the last attempt the message is
 * dead-lettered and the entity goes on (see `Sharding.registerEntity`'s options).
 *
 * @example
 * ```ts
 * import { Effect, Option, Ref } from "effect"
 * import { MessageState, RecipientBehaviour } from "effect-cluster"
 *
 * const counter = RecipientBehaviour.fromFunctionEffectStateful(
 *   () => Effect.succeed(0),
 *   (_, message: { readonly _tag: "Increment" }, stateRef: Ref.Ref<number>) =>
 *     Ref.update(stateRef, (n) => n + 1).pipe(Effect.as(MessageState.Processed(Option.none())))
 * )
 * ```
 */
import type { Effect, Ref } from "effect"
import type { MessageState } from "./MessageState.ts"

/** A behaviour for messages `Msg` with state `State`, needing services `R`. */
export interface RecipientBehaviour<Msg, State, R> {
  readonly _tag: "RecipientBehaviour"
  /** The state of an entity that has none stored yet; undefined for a stateless behaviour. */
  readonly initialState: ((entityId: string) => Effect.Effect<State, unknown, R>) | undefined
  readonly handle: (
    entityId: string,
    message: Msg,
    state: Ref.Ref<State>
  ) => Effect.Effect<MessageState<unknown>, unknown, R>
}

/** A stateless behaviour. */
export const fromFunctionEffect = <Msg, R>(
  handler: (entityId: string, message: Msg) => Effect.Effect<MessageState<unknown>, unknown, R>
): RecipientBehaviour<Msg, any, R> => ({
  _tag: "RecipientBehaviour",
  initialState: undefined,
  handle: (entityId, message) => handler(entityId, message)
})

/** A behaviour with state, starting from `initialState` (unless a persisted state is stored). */
export const fromFunctionEffectStateful = <State, Msg, R, R2 = never>(
  initialState: (entityId: string) => Effect.Effect<State, unknown, R2>,
  handler: (
    entityId: string,
    message: Msg,
    stateRef: Ref.Ref<State>
  ) => Effect.Effect<MessageState<unknown>, unknown, R>
): RecipientBehaviour<Msg, State, R | R2> => ({
  _tag: "RecipientBehaviour",
  initialState,
  handle: handler
})
