/**
 * What a behaviour answers for each message (the talk's `MessageState`):
 * - `Processed(reply)`: the message is done; `reply` is `Option.some(value)` for a request (the
 *   talk replies with an `Exit`: `Effect.exit(effect)`, so a request can succeed or fail), or
 *   `Option.none()`. For a persisted entity, the reply and the entity's state are stored in one
 *   transaction with the processed mark.
 * - `Processing`: not done yet (the behaviour started work that answers later, such as a workflow):
 *   nothing is recorded, the entity goes on with its next message, and this one is delivered again
 *   after the type's `redeliverAfter`, until a delivery answers `Processed`.
 *
 * @example
 * ```ts
 * import { Effect, Option } from "effect"
 * import { MessageState } from "effect-cluster"
 *
 * const done = Effect.succeed(MessageState.Processed(Option.none()))
 * ```
 */
import type { Option } from "effect"

/** The message is done, with its reply (if any). */
export interface Processed<A> {
  readonly _tag: "Processed"
  readonly reply: Option.Option<A>
}

/** The message is not done yet: deliver it again later. */
export interface Processing {
  readonly _tag: "Processing"
}

/** What a behaviour answers for a message. */
export type MessageState<A> = Processed<A> | Processing

/** The message is done, with `reply`. */
export const Processed = <A>(reply: Option.Option<A>): MessageState<A> => ({ _tag: "Processed", reply })

/** The message is not done yet: deliver it again later. */
export const Processing: MessageState<never> = { _tag: "Processing" }

/** Whether the state is `Processed`. */
export const isProcessed = <A>(state: MessageState<A>): state is Processed<A> => state._tag === "Processed"
