/**
 * The protocol between pods, as an `effect/rpc` group: every message has a schema, decoded on
 * arrival (I6). Each entity message is one request (`Deliver`) multiplexed on the peer's
 * connection, answered on it as soon as its entity has answered, so a slow entity never holds back
 * the others (a batch answered as a stream would: effect/rpc's streams wait for the client's
 * acknowledgement of each chunk). Wake-ups and settlements are hints, batched and sent without
 * waiting for an answer.
 */
import { Schema } from "effect"
import { Rpc, RpcGroup } from "effect/rpc"
import { EntityPush, EntityPushAnswer } from "../../sharding/PodNetwork.ts"

/** The connection did not prove that it knows the cluster's secret: nothing was processed. */
export class Unauthenticated extends Schema.TaggedError<Unauthenticated>()("Unauthenticated", {
  message: Schema.String
}) {}

export class PodRpcs extends RpcGroup.make(
  Rpc.make("Deliver", {
    payload: { message: EntityPush },
    success: EntityPushAnswer,
    error: Unauthenticated
  }),
  Rpc.make("Wake", { payload: { shards: Schema.Array(Schema.Int) }, error: Unauthenticated }),
  Rpc.make("Settled", { payload: { executionIds: Schema.Array(Schema.String) }, error: Unauthenticated })
) {}

/** The header that carries a connection's proof of the secret (see `Handshake`). */
export const AUTH_HEADER = "x-effect-cluster-auth"
