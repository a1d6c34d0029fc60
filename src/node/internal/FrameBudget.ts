/**
 * Keeping the frames a pod sends under `maxFrameBytes`, the limit its peers read with (every pod
 * of a cluster is given the same). A peer closes a connection that sends a larger frame, and with
 * it every push in flight on it; so a batch (pushes in one `Deliver`, answers in one chunk of the
 * `Answers` stream, settlements in one `Settled`) is split into frames that fit, and what cannot
 * fit in any frame takes the store path instead.
 *
 * Sizes are estimated without encoding: the JSON text a message carries (a payload, a reply, a
 * row) at most doubles when it is escaped into the frame, and the rest of a message is small.
 */
import { Array as Arr } from "effect"
import type { EntityPush, EntityPushAnswer } from "../../sharding/PodNetwork.ts"

/** What a frame may hold: half the limit, for the estimate's slack. */
export const budgetOf = (maxFrameBytes: number): number => Math.floor(maxFrameBytes / 2)

/** Room for the fields of a message besides the JSON text it carries. */
const ENVELOPE = 256

/** A push's size in a frame, at most. */
export const pushSize = (push: EntityPush): number =>
  ENVELOPE + 2 * (push.payload.length + push.entityType.length + push.entityId.length + push.messageId.length)

/** An answer's size in a frame, at most. */
export const answerSize = (answer: EntityPushAnswer): number => {
  switch (answer._tag) {
    case "Reply":
      return ENVELOPE + 2 * (answer.reply?.length ?? 0)
    case "Dead":
      return ENVELOPE + 2 * answer.error.length
    case "Failed":
      // Its fields besides the message are ids (at most 520 characters as errors show them).
      return ENVELOPE + 2 * answer.error.message.length + 4 * 520
    case "NotOwner":
      return ENVELOPE + 2 * ((answer.owner?.podId.length ?? 0) + (answer.owner?.address.length ?? 0))
    default:
      return ENVELOPE
  }
}

/** `items` in order, in groups whose sizes add up to at most `budget` (an item over it alone). */
export const groups = <A>(
  items: ReadonlyArray<A>,
  size: (item: A) => number,
  budget: number
): Array<Arr.NonEmptyArray<A>> => {
  const result: Array<Arr.NonEmptyArray<A>> = []
  let current: Array<A> = []
  let used = 0
  for (const item of items) {
    const bytes = size(item)
    if (Arr.isArrayNonEmpty(current) && used + bytes > budget) {
      result.push(current)
      current = []
      used = 0
    }
    current.push(item)
    used += bytes
  }
  if (Arr.isArrayNonEmpty(current)) result.push(current)
  return result
}
