/**
 * A messenger sends messages to the entities of one type by id, wherever they run (the talk's
 * `Sharding.messenger(type)`): `sendDiscard` for fire-and-forget (accepted once stored, for a
 * persisted type), `send` for a request's typed reply.
 *
 * @example
 * ```ts
 * const counter = yield* Sharding.messenger(CounterEntity)
 * yield* counter.sendDiscard("counter-1")(new Increment({ messageId: "m-1" }))
 * const count = yield* counter.send("counter-1")(new GetCurrent({ messageId: "m-2" }))
 * ```
 */
import type { Duration, Effect } from "effect"
import type {
  EntityStateDecodeError,
  InvalidEntityIdError,
  MalformedMessageError,
  MessageDeadLetteredError,
  MessageTimeoutError,
  MessageTooLargeError,
  UnknownEntityTypeError
} from "./EntityErrors.ts"
import type { EntityStoreError } from "./EntityStore.ts"
import type { FailureOf, ReplyTypes, SuccessOf } from "./Message.ts"

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

/** Options of a messenger. */
export interface MessengerOptions {
  /** How long `send` waits for a reply (default: the layer's `sendTimeout`). */
  readonly timeout?: Duration.Input | undefined
}
