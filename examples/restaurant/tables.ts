/**
 * The restaurant's floor: 30 tables (the cluster's shards), the settings every waiter (pod) runs
 * with, and the assignment table the demo prints — which waiter serves which tables, at which
 * epoch — drawn from the store's `ShardStore` rows.
 */
import type { ShardStore, WorkflowEngine } from "effect-cluster"

/** The talk's 30 tables. */
export const TABLES = 30

/**
 * The ownership settings of every waiter. Short, for a demo that runs in well under a minute:
 * - `ownershipInterval` paces everything you watch: every 250 ms each waiter renews its lease and
 *   looks at its tables, and the manager plans a round (the default would be 1 s).
 * - `leaseTtl` does not delay the SIGKILL step: the store sees at once that the killed process is
 *   gone (its lock file, its PostgreSQL session). The lease only decides for a waiter that may be
 *   alive but silent (frozen, cut off); 3 s keeps that case short too. It must be at least three
 *   intervals, and a waiter that cannot renew for 2.4 s (TTL × 4/5) stops its own runs.
 * - `maxHandoversPerRound` stays at its default (a tenth of the tables: 3): a waiter joining takes
 *   its tables a few at a time, as in production, not all in one round.
 */
export const CLUSTER = {
  shardCount: TABLES,
  leaseTtl: "3 seconds",
  ownershipInterval: "250 millis"
} as const satisfies WorkflowEngine.EngineOptions

/** The short name of a waiter in the grid: `waiter-2` → `w2`. */
const short = (waiter: string | null): string =>
  waiter === null ? "--" : waiter.startsWith("waiter-") ? `w${waiter.slice("waiter-".length)}` : waiter

/** `T07`. */
export const tableName = (table: number): string => `T${String(table).padStart(2, "0")}`

/** Tables as ranges: `T01-T05 T09 T16-T20`. */
export const ranges = (tables: ReadonlyArray<number>): string => {
  const sorted = [...tables].sort((a, b) => a - b)
  const parts: Array<string> = []
  for (let i = 0; i < sorted.length; ) {
    let j = i
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++
    parts.push(i === j ? tableName(sorted[i]!) : `${tableName(sorted[i]!)}-${tableName(sorted[j]!)}`)
    i = j + 1
  }
  return parts.length === 0 ? "none" : parts.join(" ")
}

/** What the store says about the floor at one moment. */
export interface Floor {
  readonly shards: ReadonlyArray<ShardStore.ShardRecord>
  readonly pods: ReadonlyArray<ShardStore.PodRecord>
  readonly manager: string | undefined
}

/** The tables each pod owns now, by pod id. */
export const tablesByWaiter = (floor: Floor): ReadonlyMap<string, ReadonlyArray<number>> => {
  const byWaiter = new Map<string, Array<number>>()
  for (const shard of floor.shards) {
    if (shard.owner === null) continue
    byWaiter.set(shard.owner, [...(byWaiter.get(shard.owner) ?? []), shard.shard])
  }
  return byWaiter
}

/**
 * Whether the floor is settled with exactly `waiters` live and serving: every table has one of
 * them as owner, no handover is pending, and the tables are spread evenly (⌊30/n⌋ or ⌈30/n⌉ each).
 */
export const settled = (floor: Floor, waiters: ReadonlyArray<string>): boolean => {
  const live = new Set(floor.pods.filter((pod) => pod.liveness === "live").map((pod) => pod.podId))
  if (live.size !== waiters.length || !waiters.every((waiter) => live.has(waiter))) return false
  if (floor.shards.length !== TABLES) return false
  if (
    floor.shards.some((shard) => shard.owner === null || !live.has(shard.owner) || shard.nextOwner !== null)
  )
    return false
  const counts = [...tablesByWaiter(floor).values()].map((tables) => tables.length)
  return counts.length === waiters.length && Math.max(...counts) - Math.min(...counts) <= 1
}

/**
 * The assignment table: one line per waiter (its tables as ranges, their epochs, the manager),
 * then the floor as a 5 × 6 grid, `T07 w2 e4` = table 7, served by waiter-2, at epoch 4. A `*`
 * marks a table whose waiter changed since `previous`.
 */
export const render = (floor: Floor, previous?: Floor): ReadonlyArray<string> => {
  const lines: Array<string> = []
  const byWaiter = tablesByWaiter(floor)
  const waiters = [...new Set([...floor.pods.map((pod) => pod.podId), ...byWaiter.keys()])].sort()
  const epochOf = new Map(floor.shards.map((shard) => [shard.shard, shard.epoch]))
  for (const waiter of waiters) {
    const tables = byWaiter.get(waiter) ?? []
    const pod = floor.pods.find((p) => p.podId === waiter)
    const epochs = tables.map((table) => epochOf.get(table) ?? 0)
    const span =
      epochs.length === 0
        ? ""
        : Math.min(...epochs) === Math.max(...epochs)
          ? `  epoch ${epochs[0]}`
          : `  epochs ${Math.min(...epochs)}..${Math.max(...epochs)}`
    const notes = [
      ...(pod === undefined ? ["not registered"] : pod.liveness === "live" ? [] : [pod.liveness]),
      ...(floor.manager === waiter ? ["manager"] : [])
    ]
    lines.push(
      `${waiter.padEnd(9)} ${String(tables.length).padStart(2)} tables  ${ranges(tables)}${span}${notes.length > 0 ? `  (${notes.join(", ")})` : ""}`
    )
  }
  const before = new Map(previous?.shards.map((shard) => [shard.shard, shard.owner]))
  const sorted = [...floor.shards].sort((a, b) => a.shard - b.shard)
  for (let row = 0; row < sorted.length; row += 6) {
    lines.push(
      sorted
        .slice(row, row + 6)
        .map((shard) => {
          const moved = previous !== undefined && before.get(shard.shard) !== shard.owner
          const next = shard.nextOwner === null ? "" : `>${short(shard.nextOwner)}`
          return `${tableName(shard.shard)} ${short(shard.owner)}${next} e${shard.epoch}${moved ? "*" : ""}`.padEnd(
            12
          )
        })
        .join("")
        .trimEnd()
    )
  }
  return lines
}
