/**
 * The shard of an execution (or, later, an entity): a stable hash of its id.
 *
 * `shardOf(id, shardCount)` is FNV-1a (32 bits) over the id's UTF-8 bytes, then MurmurHash3's
 * 32-bit finalizer (`mix32`, so that ids differing only in their last character — `order-41`,
 * `order-42` — do not land on neighbouring shards, as plain FNV-1a modulo a small count does),
 * reduced modulo `shardCount`, plus one: shards are numbered `1..shardCount`, like the talk's
 * tables. The function uses only integer arithmetic on bytes, so every pod, on every platform and
 * Node version, puts an id in the same shard; `test/sharding/ShardId.test.ts` pins it with test
 * vectors. Changing it would move every stored execution to another shard: it is part of the
 * storage format.
 *
 * @example
 * ```ts
 * import { ShardId } from "effect-cluster"
 *
 * ShardId.shardOf("order-1", 300) // the same number on every pod
 * ```
 */

/** The number of shards a cluster gets when none is configured. */
export const DEFAULT_SHARD_COUNT = 300

const encoder = new TextEncoder()

/** FNV-1a, 32 bits, of the UTF-8 bytes of `text` (an unsigned integer). */
export const fnv1a32 = (text: string): number => {
  let hash = 0x811c9dc5
  // ASCII text (most ids) is its own UTF-8: hash its code units without encoding it first.
  let ascii = true
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i)
    if (unit >= 0x80) {
      ascii = false
      break
    }
    hash ^= unit
    hash = Math.imul(hash, 0x01000193)
  }
  if (ascii) return hash >>> 0
  hash = 0x811c9dc5
  for (const byte of encoder.encode(text)) {
    hash ^= byte
    hash = Math.imul(hash, 0x01000193)
  }
  return hash >>> 0
}

/** MurmurHash3's 32-bit finalizer: every input bit flips about half of the output bits. */
export const mix32 = (hash: number): number => {
  let h = hash >>> 0
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

/** The shard (`1..shardCount`) of the execution or entity `id`. */
export const shardOf = (id: string, shardCount: number): number => (mix32(fnv1a32(id)) % shardCount) + 1

/** Whether `count` is a usable shard count: an integer from 1 to 65,536. */
export const isValidShardCount = (count: number): boolean =>
  Number.isInteger(count) && count >= 1 && count <= 65_536
