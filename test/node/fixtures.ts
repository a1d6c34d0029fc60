/**
 * The entities of the network tests: `Ping`, a request whose reply is a string, and `Echo`, a
 * volatile entity type of it (its behaviour, given by each test, answers with the pod's id);
 * `Tally` the same, persisted; `Blob`, volatile, whose `Chunk` requests carry `data` of any size
 * up to 4 MiB and ask for a reply of `replyBytes` characters.
 */
import { Schema } from "effect"
import { Message, RecipientType } from "../../src/index.ts"

export class Ping extends Message.TaggedRequest<Ping>()("Ping", {
  success: Schema.String,
  failure: Schema.Never,
  payload: { messageId: Schema.String }
}) {}

export const Echo = RecipientType.makeEntityType("Echo", Ping, (message) => message.messageId)

export const Tally = RecipientType.makeEntityType("Tally", Ping, (message) => message.messageId, {
  persisted: true,
  state: Schema.Number
})

export class Chunk extends Message.TaggedRequest<Chunk>()("Chunk", {
  success: Schema.String,
  failure: Schema.Never,
  payload: { messageId: Schema.String, data: Schema.String, replyBytes: Schema.Number }
}) {}

export const Blob = RecipientType.makeEntityType("Blob", Chunk, (message) => message.messageId, {
  maxMessageBytes: 4 * 1024 * 1024
})
