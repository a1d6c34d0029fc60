/**
 * The writes a message's outcome takes, as the owner of its shard: `complete` (the reply and the
 * state after it) or `deadLetter`, fenced by the shard's epoch. The pod's own clock may withhold a
 * write first (its lease may have lapsed); the store refuses a stale one (`Stale`: another pod took
 * the shard since) and one for a message processed meanwhile (`AlreadyDone`).
 *
 * A write that did not happen puts the state back and answers the sender: with the stored outcome
 * after `AlreadyDone`; otherwise with `Reroute`, and the entity stops (another pod owns the shard,
 * or will), so nothing more is handled here on a state the owner may have moved past.
 */
import { Effect, Ref } from "effect"
import type { EntityFence, EntityStore, EntityStoreError, OwnerWriteResult } from "../EntityStore.ts"
import type { AnyEntityType } from "../RecipientType.ts"
import { answer, type Envelope } from "./Envelope.ts"
import { type Instance, type Instances, remember } from "./Instances.ts"
import { fromOutcome } from "./Replies.ts"

export interface OwnerWrites {
  /** The store's write for a message, fenced; undefined when this pod may no longer write. */
  readonly ownerWrite: (
    instance: Instance,
    write: (
      fence: EntityFence | undefined
    ) => Effect.Effect<ReadonlyArray<OwnerWriteResult>, EntityStoreError>
  ) => Effect.Effect<OwnerWriteResult | undefined, EntityStoreError>
  /**
   * After an owner write: true when it was written. Otherwise answers the sender (the stored
   * outcome, or `Reroute`), puts the state back to `before`, and stops the entity when the write
   * was refused.
   */
  readonly settle: (
    instance: Instance,
    envelope: Envelope,
    result: OwnerWriteResult | undefined,
    before: unknown
  ) => Effect.Effect<boolean>
  /** The message is set aside with `error` (stored as a dead letter if it is stored or persisted). */
  readonly deadLettered: (
    instance: Instance,
    envelope: Envelope,
    error: string
  ) => Effect.Effect<void, EntityStoreError>
}

export const make = (env: {
  readonly type: AnyEntityType
  readonly store: EntityStore["Service"]
  readonly instances: Instances
  readonly mayWrite: (fence: EntityFence) => boolean
  readonly fenced: (fence: EntityFence) => void
  readonly withheld: (fence: EntityFence) => void
  readonly now: () => number
}): OwnerWrites => {
  const { type, store, instances } = env
  const { keyOf } = instances

  const ownerWrite: OwnerWrites["ownerWrite"] = (instance, write) =>
    Effect.suspend(() => {
      const fence = instance.fence
      if (fence !== undefined && !env.mayWrite(fence)) {
        env.withheld(fence)
        return Effect.succeed(undefined)
      }
      return Effect.map(write(fence), (results) => results[0])
    })

  const settle: OwnerWrites["settle"] = (instance, envelope, result, before) =>
    Effect.gen(function* () {
      if (result?._tag === "Written") return true
      if (instance.state !== undefined && before !== undefined) yield* Ref.set(instance.state, before)
      if (result?._tag === "AlreadyDone") {
        answer(
          envelope,
          fromOutcome(type.name, instance.entityId, envelope.message, result.outcome) ?? { _tag: "Reroute" }
        )
        return false
      }
      if (result?._tag === "Stale" && instance.fence !== undefined) env.fenced(instance.fence)
      // Refused by the store or by the pod's own clock: another pod owns the shard (or will).
      instances.retire(instance)
      answer(envelope, { _tag: "Reroute" })
      return false
    })

  const deadLettered: OwnerWrites["deadLettered"] = (instance, envelope, error) =>
    Effect.gen(function* () {
      if (type.persisted || envelope.stored) {
        const result = yield* ownerWrite(instance, (fence) =>
          store.deadLetter([
            {
              ...keyOf(instance, envelope.messageId),
              fence,
              shard: instance.shard,
              payload: envelope.payload,
              error,
              now: env.now()
            }
          ])
        )
        if (!(yield* settle(instance, envelope, result, undefined))) return
      }
      answer(envelope, remember(instance, envelope, { _tag: "Dead", error }))
    })

  return { ownerWrite, settle, deadLettered }
}
