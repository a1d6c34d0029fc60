/**
 * What the engine asks about ownership: "may I run this shard, with which epoch".
 *
 * Clustered (the journal's layer provides a `ShardStore`): a `Pod` answers, and every write of a
 * run carries its shard's epoch. Single (a journal without ownership, such as `MemoryJournal.make`
 * in tests): the engine runs every shard and its writes carry no fence.
 */
import type { Effect } from "effect"
import type { Pod, PodInfo } from "../../sharding/Pod.ts"
import { shardOf } from "../../sharding/ShardId.ts"
import type { ShardStoreError } from "../../sharding/ShardingErrors.ts"
import type { ShardRecord } from "../../sharding/ShardStore.ts"
import type { Fence } from "../DurableExecutionJournal.ts"

export interface Ownership {
  readonly podId: string | undefined
  readonly shardOf: (id: string) => number
  /**
   * How a new run of `shard` writes: with this fence (clustered), with none (`null`: this process
   * runs every shard), or not here at all (`undefined`: another pod owns the shard).
   */
  readonly runFence: (shard: number) => Fence | null | undefined
  /** Whether a run may still write with `fence` (checked before each write; the store checks again). */
  readonly mayWrite: (fence: Fence) => boolean
  /** The store refused a write with `fence`: stop the shard's runs. */
  readonly fenced: (fence: Fence) => void
  /** A write with `fence` was not sent because `mayWrite` said no (reported once per fence). */
  readonly withheld: (fence: Fence) => void
  /** The shards this engine runs; undefined: all of them. */
  readonly ownedShards: () => ReadonlyArray<number> | undefined
  /** Every pod with its lease and shards (a single engine: none). */
  readonly pods: Effect.Effect<ReadonlyArray<PodInfo>, ShardStoreError> | undefined
  /** Every shard with its owner and epoch (a single engine: none). */
  readonly shards: Effect.Effect<ReadonlyArray<ShardRecord>, ShardStoreError> | undefined
}

/** One process runs every shard, unfenced. */
export const single = (shardCount: number): Ownership => ({
  podId: undefined,
  shardOf: (id) => shardOf(id, shardCount),
  runFence: () => null,
  mayWrite: () => true,
  fenced: () => {},
  withheld: () => {},
  ownedShards: () => undefined,
  pods: undefined,
  shards: undefined
})

/** A pod of a cluster answers. */
export const clustered = (pod: Pod): Ownership => ({
  podId: pod.podId,
  shardOf: pod.shardOf,
  runFence: (shard) => {
    const epoch = pod.epochOf(shard)
    return epoch === undefined ? undefined : { shard, epoch }
  },
  mayWrite: (fence) => pod.mayWrite(fence.shard, fence.epoch),
  fenced: (fence) => pod.fenced(fence.shard, fence.epoch),
  withheld: (fence) => pod.withheld(fence.shard, fence.epoch),
  ownedShards: pod.ownedShards,
  pods: pod.pods,
  shards: pod.shards
})
