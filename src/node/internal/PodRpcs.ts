/**
 * The protocol between pods, as an `effect/rpc` group: every message has a schema, decoded on
 * arrival (I6). Entity messages travel in batches (`Deliver`: every push a peer queued while the
 * previous batch was on the wire) and their answers come back one by one as a stream, so a slow
 * entity never holds back the answers of the others in its batch. Wake-ups and settlements are
 * hints, sent without waiting for an answer.
 */
import { Schema } from "effect"
import { Rpc, RpcGroup } from "effect/rpc"
import { EntityPush, EntityPushAnswer } from "../../sharding/PodNetwork.ts"

/** The connection did not prove that it knows the cluster's secret: nothing was processed. */
export class Unauthenticated extends Schema.TaggedError<Unauthenticated>()("Unauthenticated", {
  message: Schema.String
}) {}

/** One answer of a `Deliver` batch, with the index of its push in the batch. */
export const IndexedAnswer = Schema.Struct({ index: Schema.Int, answer: EntityPushAnswer })

/** @see IndexedAnswer */
export type IndexedAnswer = typeof IndexedAnswer.Type

export class PodRpcs extends RpcGroup.make(
  Rpc.make("Deliver", {
    payload: { messages: Schema.Array(EntityPush) },
    success: IndexedAnswer,
    error: Unauthenticated,
    stream: true
  }),
  Rpc.make("Wake", { payload: { shards: Schema.Array(Schema.Int) }, error: Unauthenticated }),
  Rpc.make("Settled", { payload: { executionIds: Schema.Array(Schema.String) }, error: Unauthenticated })
) {}

/** The header that carries a connection's proof of the secret (see `Handshake`). */
export const AUTH_HEADER = "x-effect-cluster-auth"
