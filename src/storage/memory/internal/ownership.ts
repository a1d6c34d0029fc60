/**
 * The ownership state that an in-memory journal and its `MemoryShardStore` share: the shard count,
 * the shards (owner, epoch), the pods, the manager's lease, the inbox, and the shard of each
 * execution. The journal reads it to fence writes and appends to the inbox; the shard store owns
 * everything else. Mutated synchronously, inside `Effect.sync`: each operation is atomic because
 * JavaScript runs one at a time.
 */

import type { ManagerLease, ShardRecord } from "../../../sharding/ShardStore.ts"
import type { InboxEntry } from "../../../workflow/DurableExecutionJournal.ts"

/** The liveness marker of one registration: `held` turns false when `register`'s scope closes. */
export interface PodSession {
  held: boolean
}

/** A registered pod. */
export interface PodEntry {
  readonly podId: string
  leaseUntil: number
  readonly registeredAt: number
  renewedAt: number
  readonly address: string | null
  leaving: boolean
  readonly session: PodSession
}

/** The shared state (see the module comment). */
export interface Ownership {
  shardCount: number | undefined
  readonly shards: Map<number, ShardRecord>
  readonly pods: Map<string, PodEntry>
  manager: ManagerLease | undefined
  /** Inbox entries by id, oldest first (a Map keeps insertion order). */
  readonly inbox: Map<number, InboxEntry>
  nextInboxId: number
  /** The shard of each execution: `undefined` until known (rows started without one). */
  readonly executionShards: Map<string, number | undefined>
}

/** An empty state: no shard count recorded, no shards, no pods. */
export const make = (): Ownership => ({
  shardCount: undefined,
  shards: new Map(),
  pods: new Map(),
  manager: undefined,
  inbox: new Map(),
  nextInboxId: 1,
  executionShards: new Map()
})

/** The shard's current epoch, or null when it has no row (the shard count is not recorded). */
export const currentEpoch = (state: Ownership, shard: number): number | null =>
  state.shards.get(shard)?.epoch ?? null

/** Leaves an entry in `shard`'s inbox. */
export const notify = (state: Ownership, shard: number, executionId: string): void => {
  state.inbox.set(state.nextInboxId++, { executionId, shard })
}
