/**
 * What an owner accepts, whoever sent it: the checks a message passes before its entity sees it,
 * on the network path (`PushHandler`) and on the store path (the pickup of `Sharding`). A sender of
 * this library made them already (`Messengers`); a peer of another version, a hostile sender on
 * the pods' network or a hand-edited row may not have, and its message must not reach the entity
 * (I6): an id no sender could have used, a payload over the type's `maxMessageBytes`, a payload
 * that does not decode, or one whose own message id is not the id it came under (it would be
 * processed once more under another key).
 */
import { Result } from "effect"
import { decodeJsonResult } from "../../internal/codec.ts"
import { InvalidEntityIdError, MalformedMessageError, MessageTooLargeError } from "../EntityErrors.ts"
import type { AnyEntityType } from "../RecipientType.ts"

/** Why an owner refuses a message. */
export type Refusal = InvalidEntityIdError | MalformedMessageError | MessageTooLargeError

/** Whether `id` can name an entity or a message: 1 to 512 characters, no NUL. */
export const validId = (id: string): boolean => id.length > 0 && id.length <= 512 && !id.includes("\u0000")

/** An id as messages show it: a hostile one may be megabytes long. */
export const shownId = (id: string) =>
  id.length > 520 ? `${id.slice(0, 512)}… (${id.length} characters)` : id

/** The UTF-8 size of `json` when it is over `limit` bytes; undefined otherwise. */
export const bytesOver = (json: string, limit: number): number | undefined => {
  // A UTF-16 code unit is at most 3 bytes of UTF-8: count the bytes only near the limit.
  if (json.length * 3 <= limit) return undefined
  const bytes = Buffer.byteLength(json)
  return bytes > limit ? bytes : undefined
}

/** A message as it reaches its owner: its key and its encoded payload. */
export interface Arrival {
  readonly entityId: string
  readonly messageId: string
  readonly payload: string
}

/** The message decoded with its type's schema, or why the owner refuses it. */
export const check = (type: AnyEntityType, arrival: Arrival): Result.Result<unknown, Refusal> => {
  const { entityId, messageId, payload } = arrival
  if (!validId(entityId)) {
    return Result.fail(new InvalidEntityIdError({ entityType: type.name, entityId: shownId(entityId) }))
  }
  const malformed = (path: string, detail: string) =>
    Result.fail(new MalformedMessageError({ entityType: type.name, entityId, path, detail }))
  if (!validId(messageId)) {
    return malformed(
      "<messageId>",
      `the message id ${JSON.stringify(shownId(messageId))} is not 1 to 512 characters without NUL`
    )
  }
  const bytes = bytesOver(payload, type.maxMessageBytes)
  if (bytes !== undefined) {
    return Result.fail(
      new MessageTooLargeError({
        entityType: type.name,
        entityId,
        bytes,
        limit: type.maxMessageBytes,
        message: `a message to entity ${type.name}/${entityId} is ${bytes} bytes encoded, over the type's limit of ${type.maxMessageBytes} (maxMessageBytes): its owner refuses it`
      })
    )
  }
  const decoded = decodeJsonResult(type.schema, payload)
  if (Result.isFailure(decoded)) return malformed(decoded.failure.path, decoded.failure.message)
  let own: unknown
  try {
    own = type.messageId(decoded.success)
  } catch (error) {
    own = `<the type's messageId function threw: ${String(error)}>`
  }
  if (own !== messageId) {
    return malformed(
      "<messageId>",
      `the message's own id is ${JSON.stringify(own)}, but it came as message ${JSON.stringify(messageId)}`
    )
  }
  return Result.succeed(decoded.success)
}
