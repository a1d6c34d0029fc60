/**
 * A message's reply as stored and as answered. A request's reply is its `Exit`, stored as JSON with
 * the request's success and failure schemas; a message without a reply stores nothing. A stored
 * reply (or dead letter) decodes back into the `Answer` its sender gets: the same whether the entity
 * answers a duplicate from the store, or a sender reads the outcome of a message processed on
 * another pod.
 */
import { Exit, Option, Result } from "effect"
import { decodeJsonResult, encodeJsonResult, exitSchema } from "../../internal/codec.ts"
import { MalformedMessageError } from "../EntityErrors.ts"
import type { MessageOutcome } from "../EntityStore.ts"
import { requestClassOf } from "../Message.ts"
import type { Answer } from "./Envelope.ts"

/** The outcome of a message without reply: nothing stored, nothing to answer with. */
const NoReply = Result.succeed({ json: null, exit: undefined })

/** The reply to store for `message` and the `Exit` to answer with (none for a message without reply). */
export const encodeOutcome = (
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

/** The answer a stored outcome gives the sender of `message`; undefined while it is pending. */
export const fromOutcome = (
  entityType: string,
  entityId: string,
  message: unknown,
  outcome: MessageOutcome
): Answer | undefined => {
  if (outcome.status === "pending") return undefined
  if (outcome.status === "dead") return { _tag: "Dead", error: outcome.error }
  return decodeReply(entityType, entityId, message, outcome.reply)
}
