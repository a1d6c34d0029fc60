/**
 * The routing table of a pod with a network: shard → owning pod → the address it advertises.
 *
 * Read from the store (`shards` and `pods`: the truth) every `intervalMillis` in the background,
 * and at once (at most every `minRefreshMillis`) when a sender finds no route or is told
 * `NotOwner`. Peers push what they learn: a pod that acquires shards tells the others
 * (`learn`), and a `NotOwner` answer carries the answering pod's view of the owner.
 */
import { Clock, Deferred, Effect, type Scope } from "effect"
import type { Route } from "../PodNetwork.ts"
import type { PodRecord, ShardStore } from "../ShardStore.ts"

export interface Routes {
  /** The pod that owns `shard` and its address, as last seen; undefined when unknown or unreachable. */
  readonly ownerOf: (shard: number) => Route | undefined
  /** The live pods with an address, this one excepted. */
  readonly peers: () => ReadonlyArray<Route>
  /**
   * Reads the table again: at once, or `minRefreshMillis` after the last read if that was more
   * recent (callers meanwhile share one read), so a storm of misses costs one read per interval.
   */
  readonly refresh: Effect.Effect<void>
  /** What a peer said: `route` owns `shard` now (`null`: forget the route). */
  readonly learn: (shard: number, route: Route | null) => void
}

export const make = (options: {
  readonly store: ShardStore["Service"]
  readonly selfPodId: string
  readonly intervalMillis: number
  readonly minRefreshMillis?: number | undefined
  /** Hears every pod the store lists, at each read (`Suspects`). */
  readonly onPods?: ((pods: ReadonlyArray<PodRecord>) => Effect.Effect<void>) | undefined
}): Effect.Effect<Routes, never, Scope.Scope> =>
  Effect.gen(function* () {
    const { store, selfPodId } = options
    const minRefreshMillis = options.minRefreshMillis ?? 50
    const clock = yield* Clock.Clock
    const owners = new Map<number, Route>()
    let peers: ReadonlyArray<Route> = []
    let readAt = Number.NEGATIVE_INFINITY
    let inFlight: Deferred.Deferred<void> | undefined

    const read = Effect.gen(function* () {
      const [shards, pods] = yield* Effect.all([store.shards, store.pods], { concurrency: 2 })
      const addresses = new Map<string, string>()
      for (const pod of pods) {
        if (pod.liveness === "live" && pod.address !== null) addresses.set(pod.podId, pod.address)
      }
      owners.clear()
      for (const shard of shards) {
        const address = shard.owner === null ? undefined : addresses.get(shard.owner)
        if (shard.owner !== null && address !== undefined) {
          owners.set(shard.shard, { podId: shard.owner, address })
        }
      }
      peers = [...addresses]
        .filter(([podId]) => podId !== selfPodId)
        .map(([podId, address]) => ({ podId, address }))
      readAt = clock.currentTimeMillisUnsafe()
      if (options.onPods !== undefined) yield* options.onPods(pods)
    }).pipe(Effect.catchCause((cause) => Effect.logDebug("routes: reading the store failed", cause)))

    /** One read at a time: callers that arrive meanwhile wait for it. */
    const refresh = Effect.suspend(() => {
      if (inFlight !== undefined) return Deferred.await(inFlight)
      const done = Deferred.makeUnsafe<void>()
      inFlight = done
      const wait = readAt + minRefreshMillis - clock.currentTimeMillisUnsafe()
      return Effect.ensuring(
        wait > 0 ? Effect.andThen(Effect.sleep(wait), read) : read,
        Effect.suspend(() => {
          inFlight = undefined
          return Deferred.succeed(done, undefined)
        })
      )
    })

    yield* read
    yield* Effect.forkScoped(Effect.forever(Effect.andThen(Effect.sleep(options.intervalMillis), read)))

    return {
      ownerOf: (shard) => owners.get(shard),
      peers: () => peers,
      refresh,
      learn: (shard, route) => {
        if (route === null) owners.delete(shard)
        else owners.set(shard, route)
      }
    }
  })
