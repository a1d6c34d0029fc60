/**
 * Fast failover where it can be proven safe: a pod whose store session ended while its lease runs
 * is `suspect` (it may still run, cut off from the store), and its shards wait for its lease. Each
 * pod with a network asks every suspect pod it sees, over the pods' network, to stand down
 * (`PodNetwork.standDown`), and evicts it from the store (`ShardStore.evict`: its shards are
 * released, the manager assigns them at its next round) only on a proof that it stopped:
 * - it answered that the runs of that registration stopped and none will start (a live pod that
 *   lost its session and has not noticed yet);
 * - nothing listens at its address, an address of this host (its process is gone: a crash).
 *
 * No answer in time proves nothing (a frozen or cut-off process): the lease decides.
 */
import { Effect, type Scope } from "effect"
import type { PodNetwork } from "../PodNetwork.ts"
import type { ShardStoreError } from "../ShardingErrors.ts"
import type { PodRecord, ShardStore } from "../ShardStore.ts"

export interface Suspects {
  /** Looks at the pods as just read from the store: asks each suspect one, in the background. */
  readonly observe: (pods: ReadonlyArray<PodRecord>) => Effect.Effect<void>
}

/**
 * Asks the suspect `pod` to stand down and evicts it on a proof that it stopped; returns whether it
 * did. No proof (no answer in time, a refusal from another host, no address): false, and its
 * shards wait for its lease.
 */
export const evictIfStopped = (
  store: ShardStore["Service"],
  network: PodNetwork,
  pod: PodRecord
): Effect.Effect<boolean, ShardStoreError> =>
  Effect.gen(function* () {
    if (pod.address === null) return false
    const outcome = yield* network.standDown(pod.address, pod.podId, pod.registeredAt)
    if (outcome === "unproven") {
      yield* Effect.logDebug(
        `pod ${pod.podId} lost its store session; no proof that it stopped (no answer at ${pod.address}): its shards wait for its lease`
      )
      return false
    }
    const evicted = yield* store.evict(pod.podId, pod.registeredAt)
    if (evicted) {
      yield* Effect.logInfo(
        `pod ${pod.podId} lost its store session and ${outcome === "stopped" ? "stopped its runs when asked" : `nothing listens at ${pod.address} any more`}: its shards move now`
      )
    }
    return evicted
  })

export const make = (options: {
  readonly store: ShardStore["Service"]
  readonly network: PodNetwork
  /** This process's own registration (pod id, `registeredAt`), once it has one: never asked. */
  readonly self: () => { readonly podId: string; readonly registeredAt: number | undefined }
}): Effect.Effect<Suspects, never, Scope.Scope> =>
  Effect.gen(function* () {
    const scope = yield* Effect.scope
    /** Registrations being asked now, by `podId@registeredAt`. */
    const asking = new Set<string>()

    const ask = (pod: PodRecord) =>
      evictIfStopped(options.store, options.network, pod).pipe(
        Effect.asVoid,
        Effect.catchCause((cause) => Effect.logDebug(`asking suspect pod ${pod.podId} failed`, cause))
      )

    return {
      observe: (pods) =>
        Effect.suspend(() => {
          const self = options.self()
          const asks: Array<Effect.Effect<void>> = []
          for (const pod of pods) {
            if (pod.liveness !== "suspect" || pod.address === null) continue
            if (pod.podId === self.podId && pod.registeredAt === self.registeredAt) continue
            const key = `${pod.podId}@${pod.registeredAt}`
            if (asking.has(key)) continue
            asking.add(key)
            asks.push(
              Effect.ensuring(
                ask(pod),
                Effect.sync(() => asking.delete(key))
              )
            )
          }
          return Effect.forEach(asks, (asked) => Effect.forkIn(asked, scope), { discard: true })
        })
    }
  })
