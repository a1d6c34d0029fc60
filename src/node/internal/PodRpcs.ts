/**
 * The protocol between pods, as an `effect/rpc` group: every message has a schema, decoded on
 * arrival (I6).
 *
 * Entity messages travel in batches one way and their answers in batches the other way, on the
 * same connection: `Deliver` (sent without waiting) carries every push a peer queued while the
 * previous batch was being written, each with an id; `Answers`, a stream the client opens once per
 * connection, carries the answers back as their entities give them, several per chunk under load
 * (effect/rpc waits for the client's acknowledgement of a chunk before the next: while it waits,
 * answers gather). A slow entity holds back no other answer, and a busy connection carries tens
 * of messages per frame. Wake-ups, settlements and new ownership (`Owns`) are hints, batched the
 * same way. `StandDown` asks a pod that another sees as suspect to stop its runs, and waits for it.
 */
import { Schema } from "effect"
import { Rpc, RpcGroup } from "effect/rpc"
import { EntityPush, EntityPushAnswer, Route } from "../../sharding/PodNetwork.ts"

/** The connection did not prove that it knows the cluster's secret: nothing was processed. */
export class Unauthenticated extends Schema.TaggedError<Unauthenticated>()("Unauthenticated", {
  message: Schema.String
}) {}

/** A push with the id its answer comes back with. */
export const NumberedPush = Schema.Struct({ id: Schema.Int, message: EntityPush })

/** The answer to the push `id` of this connection. */
export const NumberedAnswer = Schema.Struct({ id: Schema.Int, answer: EntityPushAnswer })

/** @see NumberedAnswer */
export type NumberedAnswer = typeof NumberedAnswer.Type

export class PodRpcs extends RpcGroup.make(
  Rpc.make("Deliver", { payload: { pushes: Schema.Array(NumberedPush) }, error: Unauthenticated }),
  Rpc.make("Answers", { success: NumberedAnswer, error: Unauthenticated, stream: true }),
  Rpc.make("Wake", { payload: { shards: Schema.Array(Schema.Int) }, error: Unauthenticated }),
  Rpc.make("Owns", { payload: { owner: Route, shards: Schema.Array(Schema.Int) }, error: Unauthenticated }),
  // Answers true once the runs of that registration stopped (see `InboundHandlers.standDown`).
  Rpc.make("StandDown", {
    payload: { podId: Schema.String, registeredAt: Schema.Number },
    success: Schema.Boolean,
    error: Unauthenticated
  }),
  Rpc.make("Settled", {
    payload: {
      settled: Schema.Array(Schema.Struct({ executionId: Schema.String, row: Schema.NullOr(Schema.String) }))
    },
    error: Unauthenticated
  })
) {}

/** The header that carries a connection's proof of the secret (see `Handshake`). */
export const AUTH_HEADER = "x-effect-cluster-auth"
