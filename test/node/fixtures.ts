/**
 * The entities of the network tests: `Ping`, a request whose reply is a string, and `Echo`, a
 * volatile entity type of it (its behaviour, given by each test, answers with the pod's id);
 * `Tally` the same, persisted.
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
