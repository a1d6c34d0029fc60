/**
 * `PodTransport` over the pods' network: an inbox entry for a shard another pod owns wakes that
 * pod at once (`wake` to the owner's address), and an execution that settles is announced to the
 * other live pods, whose callers waiting for it read it at once instead of at their next poll.
 * Both are hints: a lost one costs one `deliveryPollInterval`, never an execution.
 */
import { Effect, PubSub, type Scope, Stream } from "effect"
import type { Membership } from "../Membership.ts"
import { PodTransport, type Settlement } from "../PodTransport.ts"

/** The transport of the membership's network; undefined when the pod has no network. */
export const make = (
  membership: Membership["Service"]
): Effect.Effect<PodTransport["Service"] | undefined, never, Scope.Scope> =>
  Effect.gen(function* () {
    if (membership.network === undefined) return undefined
    const { network, routes } = membership.network
    const pod = membership.pod
    const shards = yield* PubSub.unbounded<number>()
    const settled = yield* PubSub.unbounded<Settlement>()
    yield* network.serve({
      wake: (list) => Effect.asVoid(PubSub.publishAll(shards, list)),
      settled: (list) =>
        Effect.asVoid(
          PubSub.publishAll(
            settled,
            list.map(({ executionId, row }) => ({ executionId, row: row ?? undefined }))
          )
        )
    })
    return PodTransport.of({
      announce: (shard) =>
        Effect.suspend(() => {
          if (pod?.epochOf(shard) !== undefined) return Effect.asVoid(PubSub.publish(shards, shard))
          const owner = routes.ownerOf(shard)
          return owner === undefined ? Effect.void : network.wake(owner.address, shard)
        }),
      arrivals: Stream.fromPubSub(shards),
      settle: (executionId, row) =>
        Effect.suspend(() => {
          const peers = routes.peers()
          if (peers.length === 0) return Effect.void
          const json = row?.()
          return Effect.forEach(peers, (peer) => network.settled(peer.address, executionId, json), {
            discard: true
          })
        }),
      settlements: Stream.fromPubSub(settled)
    })
  })
