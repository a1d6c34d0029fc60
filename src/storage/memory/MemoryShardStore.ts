/**
 * In-memory `ShardStore`: ownership for several engines (pods) in one process, sharing one
 * in-memory journal. Build the pair with `MemoryJournal.makeCluster` (or `layerCluster`): the
 * journal fences writes against the epochs kept here.
 *
 * Time is the effect `Clock` of the fiber that made the cluster (so `TestClock` drives leases), not
 * the caller's: a lease end one pod writes is judged by another, so the store reads one clock, as
 * the SQL stores read the database's. A pod is `gone` once the scope given to `register` closes —
 * the analogue of the kernel dropping a dead process's lock — and `expired` once its lease has
 * passed.
 */
import { type Clock, Effect } from "effect"
import { isValidShardCount, shardOf } from "../../sharding/ShardId.ts"
import { DuplicatePodError, ShardCountMismatchError, ShardStoreError } from "../../sharding/ShardingErrors.ts"
import { type PodLiveness, type PodRecord, type ShardRecord, ShardStore } from "../../sharding/ShardStore.ts"
import type { Ownership, PodEntry } from "./internal/ownership.ts"

const liveness = (pod: PodEntry, now: number): PodLiveness =>
  !pod.session.held ? "gone" : pod.leaseUntil > now ? "live" : "expired"

const byShard = (a: ShardRecord, b: ShardRecord) => a.shard - b.shard

/**
 * The shard store over `state`, the state shared with a memory journal (see
 * `MemoryJournal.makeCluster`), judging leases by `clock`.
 */
export const make = (state: Ownership, clock: Clock.Clock): ShardStore["Service"] => {
  const now = clock.currentTimeMillis

  /** Moves every shard of `podId` to its next owner (or none), epoch + 1. */
  const handOver = (podId: string, at: number) => {
    for (const [shard, record] of state.shards) {
      if (record.owner === podId) {
        const next = record.nextOwner === podId ? null : record.nextOwner
        state.shards.set(shard, {
          ...record,
          owner: next,
          nextOwner: null,
          epoch: record.epoch + 1,
          updatedAt: at
        })
      } else if (record.nextOwner === podId) {
        state.shards.set(shard, { ...record, nextOwner: null, updatedAt: at })
      }
    }
  }

  /** Releases every shard of a dead pod (epoch + 1) and forgets it as a handover target. */
  const releaseDead = (podId: string, at: number) => {
    for (const [shard, record] of state.shards) {
      if (record.owner === podId) {
        state.shards.set(shard, {
          ...record,
          owner: null,
          nextOwner: null,
          epoch: record.epoch + 1,
          updatedAt: at
        })
      } else if (record.nextOwner === podId) {
        state.shards.set(shard, { ...record, nextOwner: null, updatedAt: at })
      }
    }
    if (state.manager?.podId === podId) state.manager = undefined
  }

  return ShardStore.of({
    init: (shardCount) =>
      Effect.flatMap(now, (at): Effect.Effect<void, ShardStoreError | ShardCountMismatchError> => {
        if (!isValidShardCount(shardCount)) {
          return Effect.fail(
            new ShardStoreError({
              operation: "init",
              detail: `${shardCount} is not a shard count (an integer from 1 to 65536)`,
              transient: false
            })
          )
        }
        if (state.shardCount !== undefined) {
          return state.shardCount === shardCount
            ? Effect.void
            : Effect.fail(new ShardCountMismatchError({ configured: shardCount, recorded: state.shardCount }))
        }
        return Effect.sync(() => {
          state.shardCount = shardCount
          for (let shard = 1; shard <= shardCount; shard++) {
            state.shards.set(shard, { shard, owner: null, epoch: 0, nextOwner: null, updatedAt: at })
          }
          // Executions started without a shard get theirs now (the SQL backfill's analogue).
          for (const [executionId, shard] of state.executionShards) {
            if (shard === undefined) state.executionShards.set(executionId, shardOf(executionId, shardCount))
          }
        })
      }),
    register: (podId, ttlMillis, address) =>
      Effect.flatMap(now, (at) => {
        const existing = state.pods.get(podId)
        if (existing !== undefined && liveness(existing, at) === "live") {
          return Effect.fail(new DuplicatePodError({ podId, leaseUntil: existing.leaseUntil }))
        }
        const session = { held: true }
        return Effect.as(
          Effect.andThen(
            Effect.sync(() => {
              if (existing !== undefined) releaseDead(podId, at)
              state.pods.set(podId, {
                podId,
                leaseUntil: at + ttlMillis,
                registeredAt: at,
                renewedAt: at,
                address: address ?? null,
                leaving: false,
                session
              })
            }),
            Effect.addFinalizer(() => Effect.sync(() => (session.held = false)))
          ),
          at
        )
      }),
    renew: (podId, ttlMillis) =>
      Effect.map(now, (at) => {
        const pod = state.pods.get(podId)
        if (pod === undefined) return false
        pod.leaseUntil = at + ttlMillis
        pod.renewedAt = at
        return true
      }),
    unregister: (podId) =>
      Effect.map(now, (at) => {
        handOver(podId, at)
        if (state.manager?.podId === podId) state.manager = undefined
        state.pods.delete(podId)
      }),
    leave: (podId) =>
      Effect.sync(() => {
        const pod = state.pods.get(podId)
        if (pod !== undefined) pod.leaving = true
      }),
    removePod: (podId) =>
      Effect.map(now, (at) => {
        const pod = state.pods.get(podId)
        if (pod === undefined || liveness(pod, at) === "live") return
        releaseDead(podId, at)
        state.pods.delete(podId)
      }),
    evict: (podId, registeredAt) =>
      Effect.map(now, (at) => {
        const pod = state.pods.get(podId)
        if (pod === undefined || pod.registeredAt !== registeredAt || liveness(pod, at) === "live")
          return false
        releaseDead(podId, at)
        state.pods.delete(podId)
        return true
      }),
    pods: Effect.map(now, (at) =>
      [...state.pods.values()]
        .map(
          (pod): PodRecord => ({
            podId: pod.podId,
            leaseUntil: pod.leaseUntil,
            registeredAt: pod.registeredAt,
            renewedAt: pod.renewedAt,
            liveness: liveness(pod, at),
            address: pod.address,
            leaving: pod.leaving
          })
        )
        .sort((a, b) => (a.podId < b.podId ? -1 : a.podId > b.podId ? 1 : 0))
    ),
    shards: Effect.sync(() => [...state.shards.values()].sort(byShard)),
    shardsOf: (podId) =>
      Effect.sync(() => [...state.shards.values()].filter((record) => record.owner === podId).sort(byShard)),
    acquireManager: (podId, ttlMillis) =>
      Effect.map(now, (at) => {
        const current = state.manager
        const holder = current === undefined ? undefined : state.pods.get(current.podId)
        const free =
          current === undefined ||
          current.podId === podId ||
          current.leaseUntil <= at ||
          holder === undefined ||
          liveness(holder, at) === "gone"
        if (free) state.manager = { podId, leaseUntil: at + ttlMillis }
        return free
      }),
    manager: Effect.sync(() => state.manager),
    assign: (moves) =>
      Effect.map(now, (at) => {
        const moved: Array<number> = []
        for (const move of moves) {
          const record = state.shards.get(move.shard)
          if (record === undefined || record.owner !== move.from || moved.includes(move.shard)) continue
          state.shards.set(move.shard, {
            ...record,
            owner: move.to,
            nextOwner: null,
            epoch: record.epoch + 1,
            updatedAt: at
          })
          moved.push(move.shard)
        }
        return moved.sort((a, b) => a - b)
      }),
    requestHandover: (moves) =>
      Effect.map(now, (at) => {
        const asked: Array<number> = []
        for (const move of moves) {
          const record = state.shards.get(move.shard)
          if (record === undefined || move.from === null || record.owner !== move.from) continue
          if (asked.includes(move.shard)) continue
          state.shards.set(move.shard, { ...record, nextOwner: move.to, updatedAt: at })
          asked.push(move.shard)
        }
        return asked.sort((a, b) => a - b)
      }),
    release: (podId, shard, epoch) =>
      Effect.map(now, (at) => {
        const record = state.shards.get(shard)
        if (record === undefined || record.owner !== podId || record.epoch !== epoch) return false
        state.shards.set(shard, {
          ...record,
          owner: record.nextOwner,
          nextOwner: null,
          epoch: record.epoch + 1,
          updatedAt: at
        })
        return true
      })
  })
}
