/**
 * The shard manager's round, run by every pod at each ownership round: the pod takes or renews the
 * manager's lease and, if it holds it, plans one round of assignments (`Rebalance.plan`) and
 * applies it: unowned shards and a dead pod's shards at once, a bounded number of handovers
 * between live pods, and dead pods removed.
 */
import { Effect } from "effect"
import { plan } from "../Rebalance.ts"
import type { ShardStoreError } from "../ShardingErrors.ts"
import type { ShardStore } from "../ShardStore.ts"

/** One round, as manager if this pod holds (or takes) the manager's lease; nothing otherwise. */
export const make = (options: {
  readonly store: ShardStore["Service"]
  readonly podId: string
  readonly ttl: number
  /** Live-to-live handovers asked for per round. */
  readonly maxHandovers: number
}): Effect.Effect<void, ShardStoreError> => {
  const { store, podId, ttl, maxHandovers } = options
  return Effect.gen(function* () {
    if (!(yield* store.acquireManager(podId, ttl))) return
    const [pods, shards] = yield* Effect.all([store.pods, store.shards])
    const next = plan({ shards, pods, maxHandovers })
    // Moves are cluster news when several pods are alive; a lone pod taking every shard (at its
    // first start, or after a restart) is not worth a line in the program's output.
    const log = pods.filter((pod) => pod.liveness === "live").length > 1 ? Effect.logInfo : Effect.logDebug
    const dead = new Set(
      pods.filter((pod) => pod.liveness === "expired" || pod.liveness === "gone").map((pod) => pod.podId)
    )
    if (next.assign.length > 0) {
      const moved = yield* store.assign(next.assign)
      const fromDead = next.assign.filter((move) => move.from !== null && dead.has(move.from)).length
      yield* log(
        `shard manager ${podId}: assigned ${moved.length} shard(s) ${describeMoves(next.assign)}${fromDead > 0 ? ` (${fromDead} of them from pods that died or stopped renewing: ${[...dead].join(", ")})` : ""}`
      )
    }
    if (next.handover.length > 0) {
      yield* store.requestHandover(next.handover)
      yield* log(`shard manager ${podId}: handing over ${describeMoves(next.handover)}`)
    }
    yield* Effect.forEach(next.removePods, store.removePod, { discard: true })
  })
}

/** "3 to pod-a, 1 to pod-b". */
const describeMoves = (moves: ReadonlyArray<{ readonly shard: number; readonly to: string }>): string => {
  const byPod = new Map<string, Array<number>>()
  for (const move of moves) byPod.set(move.to, [...(byPod.get(move.to) ?? []), move.shard])
  return [...byPod].map(([pod, shards]) => `${shards.length} to ${pod}`).join(", ")
}
