/**
 * What both sides of `bench/network.ts` share: the echo RPC of the plain `effect/rpc` anchor, and
 * the cluster's entities (`Echo`, volatile; `Tally`, persisted: each replies with the message id)
 * and workflow (`bench/workload.ts`'s three activities).
 */
import { Effect, Option, Schema } from "effect"
import { Rpc, RpcGroup } from "effect/rpc"
import { Message, MessageState, RecipientBehaviour, RecipientType, Sharding } from "effect-cluster"

export { Bench, workflow } from "../workload.ts"

export const SHARDS = 60

export class EchoRpcs extends RpcGroup.make(
  Rpc.make("Echo", { payload: { value: Schema.String }, success: Schema.String })
) {}

export class Ping extends Message.TaggedRequest<Ping>()("Ping", {
  success: Schema.String,
  failure: Schema.Never,
  payload: { messageId: Schema.String }
}) {}

export const Echo = RecipientType.makeEntityType("BenchEcho", Ping, (message) => message.messageId)
export const Tally = RecipientType.makeEntityType("BenchTally", Ping, (message) => message.messageId, {
  persisted: true
})

const reply = (_: string, message: Ping) =>
  Effect.succeed(MessageState.Processed(Option.some(message.messageId)))

/** Registers both entity types on the sharding in context. */
export const registerTypes = Effect.gen(function* () {
  yield* Sharding.registerEntity(Echo)(RecipientBehaviour.fromFunctionEffect(reply))
  yield* Sharding.registerEntity(Tally)(RecipientBehaviour.fromFunctionEffect(reply))
})
