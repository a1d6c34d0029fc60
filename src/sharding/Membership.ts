/**
 * This process's membership in the cluster: one pod, shared by the workflow engine and the
 * entities (`Sharding`) of the process, so that both run exactly the shards the pod owns.
 *
 * On a store with ownership (a `ShardStore` in context: SQLite, PostgreSQL,
 * `MemoryJournal.layerCluster`) it registers a pod and keeps it running until the scope closes;
 * without one, this process runs every shard (a one-pod cluster with nothing to coordinate).
 *
 * Provide `Membership.layer(options)` below both the engine and `Sharding` when a process has both:
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { Membership, Sharding, SqliteJournal } from "effect-cluster"
 *
 * const cluster = Sharding.layer().pipe(
 *   Layer.provideMerge(Membership.layer({ leaseTtl: "10 seconds" })),
 *   Layer.provideMerge(SqliteJournal.layer({ filename: ".data/app.db" }))
 * )
 * ```
 */
import { Context, Effect, Layer, Option, type Scope } from "effect"
import * as Routes from "./internal/Routes.ts"
import * as Suspects from "./internal/Suspects.ts"
import * as Pod from "./Pod.ts"
import { type NetworkConfigError, type PodNetwork, PodNetworkFactory } from "./PodNetwork.ts"
import { shardOf } from "./ShardId.ts"
import type {
  DuplicatePodError,
  InvalidShardingConfigError,
  ShardCountMismatchError,
  ShardStoreError
} from "./ShardingErrors.ts"
import { ShardStore } from "./ShardStore.ts"

/** Why a membership could not start. */
export type MembershipError =
  | InvalidShardingConfigError
  | ShardCountMismatchError
  | DuplicatePodError
  | ShardStoreError
  | NetworkConfigError

/** The process's pod, and the listeners that run its shards. */
export class Membership extends Context.Service<
  Membership,
  {
    /** The pod; undefined when the process runs every shard (no `ShardStore`). */
    readonly pod: Pod.Pod | undefined
    readonly shardCount: number
    /** The shard of an entity or execution id. */
    readonly shardOf: (id: string) => number
    /**
     * Adds a listener until the scope closes. It hears `acquired` at once for every shard the pod
     * runs now, then every change.
     */
    readonly subscribe: (listener: Pod.ShardListener) => Effect.Effect<void, never, Scope.Scope>
    /**
     * The direct path to the other pods, with its routing table; undefined when the pod has none
     * (no `ShardStore`, a store layer without a network, or `network: false`).
     */
    readonly network: { readonly network: PodNetwork; readonly routes: Routes.Routes } | undefined
  }
>()("effect-cluster/sharding/Membership") {}

/** Joins the cluster on the `ShardStore` in context (if any) until the scope closes. */
export const make = (
  options?: Pod.PodOptions
): Effect.Effect<Membership["Service"], MembershipError, Scope.Scope> =>
  Effect.gen(function* () {
    const settings = yield* Pod.settings(options)
    const store = yield* Effect.serviceOption(ShardStore)
    const { shardCount } = settings
    if (Option.isNone(store)) {
      return Membership.of({
        pod: undefined,
        shardCount,
        shardOf: (id) => shardOf(id, shardCount),
        network: undefined,
        subscribe: (listener) =>
          Effect.gen(function* () {
            for (let shard = 1; shard <= shardCount; shard++) yield* listener.acquired(shard, 0)
          })
      })
    }
    const listeners = new Set<Pod.ShardListener>()
    const all = (f: (listener: Pod.ShardListener) => Effect.Effect<void>) =>
      Effect.forEach([...listeners], f, { concurrency: "unbounded", discard: true })
    const podId = settings.podId ?? (yield* Pod.generatedPodId)
    const factory = yield* Effect.serviceOption(PodNetworkFactory)
    const network =
      settings.network === false || Option.isNone(factory)
        ? undefined
        : yield* factory.value.listen(podId, settings.network)
    const pod = yield* Pod.make(
      store.value,
      {
        ...settings,
        podId,
        address: network?.address,
        // A restart whose predecessor (same pod id) is suspect: the refusal at its old address, if
        // that is on this host, proves it gone. Never its own address (a fixed port): no proof.
        evictIfStopped:
          network === undefined
            ? undefined
            : (earlier) =>
                earlier.address === network.address
                  ? Effect.succeed(false)
                  : Suspects.evictIfStopped(store.value, network, earlier).pipe(
                      Effect.catchCause((cause) =>
                        Effect.as(Effect.logDebug(`asking suspect pod ${earlier.podId} failed`, cause), false)
                      )
                    )
      },
      {
        acquired: (shard, epoch) =>
          Effect.forEach([...listeners], (l) => l.acquired(shard, epoch), { discard: true }),
        lost: (shard) => all((l) => l.lost(shard)),
        handOver: (shard, deadline) => all((l) => l.handOver(shard, deadline))
      }
    )
    yield* pod.start
    // A pod whose store session ended while its lease runs is asked to stand down, and its shards
    // move early only on a proof that it stopped (Suspects).
    const suspects =
      network === undefined
        ? undefined
        : yield* Suspects.make({
            store: store.value,
            network,
            self: () => ({ podId, registeredAt: pod.registration() })
          })
    const direct =
      network === undefined
        ? undefined
        : {
            network,
            routes: yield* Routes.make({
              store: store.value,
              selfPodId: podId,
              intervalMillis: settings.interval,
              onPods: suspects?.observe
            })
          }
    if (direct !== undefined) {
      const { routes } = direct
      // Routes learn from peers: a pod that acquires shards tells the others at once.
      yield* direct.network.serve({
        owns: (owner, shards) =>
          Effect.sync(() => {
            for (const shard of shards) routes.learn(shard, owner)
          }),
        standDown: pod.standDown
      })
      listeners.add({
        acquired: (shard) =>
          Effect.forEach(routes.peers(), (peer) => direct.network.owns(peer.address, shard), {
            discard: true
          }),
        lost: () => Effect.void,
        handOver: () => Effect.void
      })
    }
    return Membership.of({
      pod,
      shardCount,
      shardOf: pod.shardOf,
      network: direct,
      subscribe: (listener) =>
        Effect.gen(function* () {
          // Synchronously: no change of the pod's shards can slip between the snapshot and the add.
          const owned = pod.ownedShards().flatMap((shard) => {
            const epoch = pod.epochOf(shard)
            return epoch === undefined ? [] : [[shard, epoch] as const]
          })
          listeners.add(listener)
          yield* Effect.addFinalizer(() => Effect.sync(() => listeners.delete(listener)))
          yield* Effect.forEach(owned, ([shard, epoch]) => listener.acquired(shard, epoch), { discard: true })
        })
    })
  })

/** `make` as a layer. */
export const layer = (options?: Pod.PodOptions): Layer.Layer<Membership, MembershipError> =>
  Layer.effect(Membership, make(options))
