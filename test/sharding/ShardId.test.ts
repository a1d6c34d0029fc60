/**
 * Pins `ShardId.shardOf`: it is part of the storage format (every stored execution is in the shard
 * it gives), so a change to it must fail here. The expected values come from outside the module: a
 * second FNV-1a and MurmurHash3 finalizer written with BigInt over `Buffer.from(id, "utf8")`,
 * published FNV-1a-32 vectors, and literal constants computed once with a third implementation
 * (Python, over `str.encode()`).
 */
import { describe, expect, it } from "@effect/vitest"
import {
  DEFAULT_SHARD_COUNT,
  fnv1a32,
  isValidShardCount,
  mix32,
  shardOf
} from "../../src/sharding/ShardId.ts"

/** FNV-1a 32 by the book, on BigInt: shares no code and no arithmetic trick with the module's. */
const referenceFnv1a32 = (id: string): number => {
  let hash = 0x811c9dc5n
  for (const byte of Buffer.from(id, "utf8")) hash = ((hash ^ BigInt(byte)) * 0x01000193n) & 0xffffffffn
  return Number(hash)
}

/** MurmurHash3's fmix32 by the book, on BigInt. */
const referenceMix32 = (hash: number): number => {
  let h = BigInt(hash)
  h ^= h >> 16n
  h = (h * 0x85ebca6bn) & 0xffffffffn
  h ^= h >> 13n
  h = (h * 0xc2b2ae35n) & 0xffffffffn
  h ^= h >> 16n
  return Number(h)
}

/** Mulberry32: a seeded PRNG, so the random ids are the same on every run. */
const prng = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296
}

/** A random string of 0–24 code points anywhere in Unicode (lone surrogates included). */
const randomId = (random: () => number): string => {
  const length = Math.floor(random() * 25)
  let id = ""
  for (let i = 0; i < length; i++) {
    const kind = random()
    const codePoint =
      kind < 0.5
        ? 0x20 + Math.floor(random() * 0x5f) // printable ASCII
        : kind < 0.8
          ? Math.floor(random() * 0x10000) // BMP, surrogates included
          : 0x10000 + Math.floor(random() * 0x100000) // astral (emoji, …)
    id += String.fromCodePoint(codePoint)
  }
  return id
}

const SHARD_COUNTS = [1, 30, 300, 1024] as const

/**
 * id → FNV-1a 32, its MurmurHash3 finalizer, and the shard for 1, 30, 300 and 1024 shards
 * (computed in Python).
 */
const VECTORS: ReadonlyArray<readonly [string, number, number, readonly [number, number, number, number]]> = [
  ["", 0x811c9dc5, 0xab3e7c0b, [1, 24, 24, 12]],
  [" ", 0x250c8f7f, 0x3d2a17d4, [1, 9, 189, 981]],
  ["a", 0xe40c292c, 0x1a80b1b3, [1, 16, 16, 436]],
  ["b", 0xe70c2de5, 0x82c46232, [1, 25, 175, 563]],
  ["foobar", 0xbf9cf968, 0x0c0da6dc, [1, 7, 277, 733]],
  ["a\u0000b", 0x10f3abd2, 0x5d40db2d, [1, 2, 2, 814]],
  ["order-1", 0x2b7fcd6d, 0x92005a9c, [1, 3, 33, 669]],
  ["crashy@1", 0x628f58e8, 0xfb1ddead, [1, 16, 166, 686]],
  ["payment/42", 0x61dbbee8, 0x3b1ee37f, [1, 24, 264, 896]],
  ["café", 0xa82b5049, 0xdf518d52, [1, 3, 63, 339]],
  ["日本語", 0x805f5ce7, 0xea653092, [1, 5, 215, 147]],
  ["🍕", 0x5cd6b1f6, 0xbbf7a33d, [1, 14, 74, 830]]
]

describe("ShardId", () => {
  it("fnv1a32 gives the published FNV-1a 32-bit vectors", () => {
    expect(fnv1a32("")).toBe(0x811c9dc5) // the offset basis
    expect(fnv1a32("a")).toBe(0xe40c292c)
    expect(fnv1a32("b")).toBe(0xe70c2de5)
    expect(fnv1a32("foobar")).toBe(0xbf9cf968)
  })

  it("fnv1a32 and shardOf give the recorded constants (ASCII, NUL, non-ASCII, emoji)", () => {
    for (const [id, hash, mixed, shards] of VECTORS) {
      expect(fnv1a32(id), id).toBe(hash)
      expect(referenceFnv1a32(id), id).toBe(hash)
      expect(mix32(hash), id).toBe(mixed)
      expect(referenceMix32(hash), id).toBe(mixed)
      expect(
        SHARD_COUNTS.map((count) => shardOf(id, count)),
        id
      ).toEqual(shards)
    }
  })

  it("hashes UTF-8 bytes as given: no Unicode normalization; a lone surrogate counts as U+FFFD", () => {
    const composed = "caf\u00e9"
    const decomposed = "cafe\u0301"
    expect(fnv1a32(composed)).toBe(0xa82b5049)
    expect(fnv1a32(decomposed)).toBe(referenceFnv1a32(decomposed))
    expect(fnv1a32(decomposed)).not.toBe(fnv1a32(composed))
    // Identifiers with lone surrogates are rejected by the engine; the hash is still defined.
    expect(fnv1a32("\ud800")).toBe(fnv1a32("\ufffd"))
  })

  it("agrees with an independent FNV-1a and finalizer on 20,000 random ids, and stays in 1..shardCount", () => {
    const random = prng(42)
    for (let i = 0; i < 20_000; i++) {
      const id = randomId(random)
      const hash = referenceFnv1a32(id)
      expect(fnv1a32(id)).toBe(hash)
      const mixed = referenceMix32(hash)
      for (const count of [...SHARD_COUNTS, 65_536]) {
        const shard = shardOf(id, count)
        expect(shard).toBe((mixed % count) + 1)
      }
    }
  })

  it("ids that differ only in their last character do not land on neighbouring shards", () => {
    // Plain FNV-1a modulo 30 puts order-0, order-1, ... on neighbouring shards about 64% of the time
    // (its prime is -1 modulo 30); with the finalizer it is the 2/30 of a uniform hash.
    let neighbours = 0
    for (let i = 0; i < 1000; i++) {
      const gap = Math.abs(shardOf(`order-${i}`, 30) - shardOf(`order-${i + 1}`, 30))
      if (gap === 1 || gap === 29) neighbours++
    }
    expect(neighbours).toBeLessThan(120)
  })

  it("a single shard holds every id", () => {
    expect(shardOf("anything", 1)).toBe(1)
    expect(shardOf("", 1)).toBe(1)
  })

  it("spreads 100,000 ids over 300 shards close to uniformly", () => {
    const random = prng(7)
    const hex = () => Math.floor(random() * 0x1_0000_0000).toString(16)
    const families: Record<string, (i: number) => string> = {
      sequential: (i) => `order-${i}`,
      random: () => `${hex()}-${hex()}-${hex()}`
    }
    for (const [family, makeId] of Object.entries(families)) {
      const counts = new Array<number>(DEFAULT_SHARD_COUNT).fill(0)
      for (let i = 0; i < 100_000; i++) counts[shardOf(makeId(i), DEFAULT_SHARD_COUNT) - 1]! += 1
      const expected = 100_000 / DEFAULT_SHARD_COUNT
      // Each shard within ±25% of 333 (a uniform hash: ± about 3.5 standard deviations of 18).
      expect(Math.min(...counts), family).toBeGreaterThan(expected * 0.75)
      expect(Math.max(...counts), family).toBeLessThan(expected * 1.25)
      // Chi-square over 299 degrees of freedom: its 99.9% quantile is about 380.
      const chiSquare = counts.reduce((sum, count) => sum + (count - expected) ** 2 / expected, 0)
      expect(chiSquare, family).toBeLessThan(400)
    }
  })

  it("isValidShardCount accepts integers 1..65,536 only", () => {
    for (const count of [1, 30, DEFAULT_SHARD_COUNT, 1024, 65_536])
      expect(isValidShardCount(count)).toBe(true)
    for (const count of [0, -1, 1.5, 65_537, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(isValidShardCount(count)).toBe(false)
    }
  })
})
