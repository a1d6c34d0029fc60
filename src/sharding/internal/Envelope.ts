/**
 * A message handed to an entity of this pod, and what its sender learns. The `Envelope` carries the
 * message twice (decoded, as the handler sees it; and as stored), whether it is stored pending in
 * the entity store, and a callback for the answer. A sender in this process waits on that callback:
 * `Reroute` tells it that this pod cannot process the message after all (the shard moved, the write
 * was refused) and that it must store the message for the shard's owner instead.
 */
import type { Exit } from "effect"
import type { EntityStateDecodeError, MalformedMessageError } from "../EntityErrors.ts"
import type { EntityStoreError } from "../EntityStore.ts"
import type * as Inbound from "./Inbound.ts"

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

/** Gives the sender of `envelope` its answer, if it waits for one. */
export const answer = (envelope: Envelope, value: Answer): void => {
  envelope.answer?.(value)
}
