/**
 * The owner's side of a pushed entity message (see `PodNetwork`): checks that this pod runs the
 * entity's shard now (else `NotOwner`, with this pod's view of the owner), checks the message as
 * `Inbound` does (ids, size, schema: I6; refused with `Failed`), hands it to the entity, and answers with its reply: for a message
 * the sender stored first, the reply the owner stored (I5: the store stays the truth).
 */
import { Effect, Result } from "effect"
import type { EntityFence, MessageKey } from "../EntityStore.ts"
import type { EntityPush, EntityPushAnswer, Route } from "../PodNetwork.ts"
import type { AnyEntityType } from "../RecipientType.ts"
import type * as EntityRuntime from "./EntityRuntime.ts"
import * as Inbound from "./Inbound.ts"
import type { Pickup } from "./Pickup.ts"

export interface PushEnv {
  readonly typeOf: (
    name: string
  ) => { readonly type: AnyEntityType; readonly runtime: EntityRuntime.EntityRuntime } | undefined
  readonly shardOf: (entityId: string) => number
  readonly fenceOf: (shard: number) => EntityFence | null | undefined
  /** This pod's view of the owner of `shard` (never itself). */
  readonly ownerOf: (shard: number) => Route | undefined
  readonly pickup: Pickup
}

const ACCEPTED: EntityPushAnswer = { _tag: "Accepted" }
const UNKNOWN_TYPE: EntityPushAnswer = { _tag: "UnknownType" }

/** The answer of an entity here, as it travels back. */
export const toWire = (answer: EntityRuntime.Answer, notOwner: () => EntityPushAnswer): EntityPushAnswer => {
  switch (answer._tag) {
    case "Reply":
      return { _tag: "Reply", reply: answer.json }
    case "Dead":
      return { _tag: "Dead", error: answer.error }
    case "Failed":
      return { _tag: "Failed", error: answer.error }
    case "Reroute":
      return notOwner()
  }
}

export const make =
  (env: PushEnv) =>
  (push: EntityPush): Effect.Effect<EntityPushAnswer> =>
    Effect.suspend(() => {
      const registered = env.typeOf(push.entityType)
      if (registered === undefined) return Effect.succeed(UNKNOWN_TYPE)
      const { type, runtime } = registered
      // The shard by this pod's count, not the sender's word for it.
      const shard = env.shardOf(push.entityId)
      const notOwner = (): EntityPushAnswer => ({ _tag: "NotOwner", owner: env.ownerOf(shard) ?? null })
      if (env.fenceOf(shard) === undefined) return Effect.succeed(notOwner())
      const decoded = Inbound.check(type, push)
      if (Result.isFailure(decoded))
        return Effect.succeed<EntityPushAnswer>({ _tag: "Failed", error: decoded.failure })
      const key: MessageKey = { entityType: type.name, entityId: push.entityId, messageId: push.messageId }
      // A stored message: the pickup must not hand it out again while the entity has it.
      if (push.stored) env.pickup.hold(key)
      return Effect.callback<EntityPushAnswer>((resume) => {
        const delivered = runtime.deliver(push.entityId, {
          messageId: push.messageId,
          message: decoded.success,
          payload: push.payload,
          stored: push.stored,
          answer: push.awaitReply ? (answer) => resume(Effect.succeed(toWire(answer, notOwner))) : undefined
        })
        if (!delivered) {
          if (push.stored) env.pickup.release(key)
          resume(Effect.succeed(notOwner()))
        } else if (!push.awaitReply) {
          resume(Effect.succeed(ACCEPTED))
        }
      })
    })
