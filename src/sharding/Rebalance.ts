/**
 * The shard manager's planning step: from the shards and pods as the store sees them now, which
 * shards to assign, which to hand over, and which dead pods to remove. A pure function (no
 * services, no clock, no I/O), deterministic for a given input whatever the order of its rows, so
 * the manager's loop is "read, plan, apply" and every rule below is unit-tested.
 *
 * The rules, in the talk's restaurant (tables = shards, waiters = pods):
 *
 * - Only `live` pods get shards. With none (the manager cannot even count itself), the plan is
 *   empty.
 * - Each live pod's *load* is the shards that count for it: those it owns, minus those it is
 *   handing over to another live pod, plus those being handed over to it. A handover in flight is
 *   never planned again.
 * - The target is an even spread: every live pod gets ⌊N/P⌋ or ⌈N/P⌉ shards. The N mod P pods
 *   that get one more are the ones with the largest load now (ties: smallest pod id), because
 *   that choice needs the fewest moves; an even spread is therefore a fixed point.
 * - `assign` (immediate, unbounded): a shard with no live owner — unowned, or owned by a pod that
 *   is expired, gone or not registered. If it was being handed over to a live pod, it goes there
 *   (the handover its owner can no longer finish); otherwise to the pod furthest under target.
 * - A *suspect* pod (its PostgreSQL session ended, its lease not passed: it may still be running)
 *   gets no shard and keeps its own: they are neither assigned nor handed over until it is dead
 *   (its lease passed, or it was evicted). A handover it had been asked for still counts for its
 *   next owner, as in flight.
 * - `handover` (bounded): while a pod is over target, one of its own shards moves to the pod
 *   furthest under target. `maxHandovers` bounds the handovers *in flight*, pending ones
 *   included, so slow owners never pile up a thundering rebalance.
 * - A handover pending to a dead pod is re-planned: the shard counts for its owner again, and is
 *   the first the owner gives up if it is over target (its runs are already stopping). If it is
 *   not handed to another pod, nothing clears its `nextOwner` (the port has no such operation):
 *   the owner's `release` gives it to the dead pod, and the next round assigns it at once.
 * - A *leaving* pod (shutting down: `ShardStore.leave`) is live but gets no shard: every shard it
 *   owns is handed over at once (unbounded), to the pods furthest under target, so pods that leave
 *   together never pass shards to each other.
 * - `removePods`: every dead pod, since `assign` leaves it nothing.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Rebalance, ShardStore } from "effect-cluster"
 *
 * const round = Effect.gen(function* () {
 *   const store = yield* ShardStore.ShardStore
 *   const next = Rebalance.plan({ shards: yield* store.shards, pods: yield* store.pods, maxHandovers: 10 })
 *   yield* store.assign(next.assign)
 *   yield* store.requestHandover(next.handover)
 *   yield* Effect.forEach(next.removePods, store.removePod)
 * })
 * ```
 */
import type { Move, PodRecord, ShardRecord } from "./ShardStore.ts"

/** What the manager does in one round. Moves are by shard number, pod ids in code-unit order. */
export interface Plan {
  /** Immediate: unowned shards, and shards whose owner is dead (expired, gone or not registered), to live pods. */
  readonly assign: ReadonlyArray<Move>
  /** Bounded: live-to-live moves to even out the load; the owner hands each over (`nextOwner`). */
  readonly handover: ReadonlyArray<Move>
  /** Dead pods (expired, gone) that own nothing once `assign` is applied: remove their rows. */
  readonly removePods: ReadonlyArray<string>
}

/** The input of `plan`: the store's rows (in any order) and the bound on handovers. */
export interface PlanInput {
  readonly shards: ReadonlyArray<ShardRecord>
  readonly pods: ReadonlyArray<PodRecord>
  /**
   * The most handovers in flight at once (pending ones count). `Infinity` for no bound; a
   * negative or fractional value is rounded down to an integer, at least 0.
   */
  readonly maxHandovers: number
}

/** The plan that changes nothing. */
export const empty: Plan = { assign: [], handover: [], removePods: [] }

/** Code-unit order: the same on every pod, unlike `localeCompare`. */
const compareIds = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)

/** A live pod while planning. */
interface PodState {
  readonly podId: string
  /** The shards that count for it (see the module's doc), updated as moves are planned. */
  load: number
  target: number
  /** Shards it owns that may be handed over: stranded ones (handover to a dead pod) first. */
  readonly sheddable: Array<ShardRecord>
}

/** Whether the shard's pending handover is to a pod other than its owner (live or not). */
const handingOver = (shard: ShardRecord): boolean =>
  shard.nextOwner !== null && shard.nextOwner !== shard.owner

/** The pod with the largest `gap` > 0; ties go to the first, so to the smallest id. */
const largest = (pods: Iterable<PodState>, gap: (pod: PodState) => number): PodState | undefined => {
  let best: PodState | undefined
  let bestGap = 0
  for (const pod of pods) {
    const g = gap(pod)
    if (g > bestGap) {
      best = pod
      bestGap = g
    }
  }
  return best
}

const deficit = (pod: PodState) => pod.target - pod.load
const excess = (pod: PodState) => (pod.sheddable.length > 0 ? pod.load - pod.target : 0)

/** The plan for one round of the shard manager. See the module's doc for the rules. */
export const plan = (input: PlanInput): Plan => {
  const live = input.pods
    .filter((pod) => pod.liveness === "live" && !pod.leaving)
    .map((pod) => pod.podId)
    .sort(compareIds)
  const leaving = new Set(
    input.pods.filter((pod) => pod.liveness === "live" && pod.leaving).map((pod) => pod.podId)
  )
  /** Pods that may still run their shards: nothing of theirs moves yet. */
  const suspect = new Set(input.pods.filter((pod) => pod.liveness === "suspect").map((pod) => pod.podId))
  if (live.length === 0) return empty
  // In id order: `largest` breaks ties by it.
  const pods = new Map<string, PodState>(
    live.map((podId) => [podId, { podId, load: 0, target: 0, sheddable: [] }])
  )
  const shards = [...input.shards].sort((a, b) => a.shard - b.shard)

  const assign: Array<Move> = []
  const unplaced: Array<ShardRecord> = []
  /** Shards of leaving pods, not yet being handed to a pod that stays. */
  const departing: Array<ShardRecord> = []
  let inFlight = 0
  for (const shard of shards) {
    const owner = shard.owner === null ? undefined : pods.get(shard.owner)
    const next = handingOver(shard) ? pods.get(shard.nextOwner!) : undefined
    if (shard.owner !== null && suspect.has(shard.owner)) {
      // Its owner may still run it: it waits, and a handover asked before stays in flight.
      if (next !== undefined) {
        next.load += 1
        inFlight += 1
      }
    } else if (next !== undefined) {
      // Counts for its next owner; completed by `assign` when the owner is dead.
      next.load += 1
      if (owner === undefined) assign.push({ shard: shard.shard, from: shard.owner, to: next.podId })
      else inFlight += 1
    } else if (owner !== undefined) {
      owner.load += 1
      owner.sheddable.push(shard)
    } else if (shard.owner !== null && leaving.has(shard.owner)) {
      departing.push(shard)
    } else {
      unplaced.push(shard)
    }
  }

  // Even spread; the extra shards go to the pods that hold the most already (fewest moves).
  const base = Math.floor(shards.length / live.length)
  const extra = shards.length % live.length
  const byLoad = [...pods.values()].sort((a, b) => b.load - a.load || compareIds(a.podId, b.podId))
  byLoad.forEach((pod, rank) => {
    pod.target = base + (rank < extra ? 1 : 0)
  })

  // Unowned and dead-owned shards, at once. The targets sum to N and these count for no pod yet,
  // so some pod is always under target.
  for (const shard of unplaced) {
    const to = largest(pods.values(), deficit)!
    to.load += 1
    assign.push({ shard: shard.shard, from: shard.owner, to: to.podId })
  }
  // A leaving pod still runs its shards: they are handed over (not assigned), all at once.
  const departures: Array<Move> = []
  for (const shard of departing) {
    const to = largest(pods.values(), deficit)!
    to.load += 1
    departures.push({ shard: shard.shard, from: shard.owner, to: to.podId })
  }

  // Handovers, from the pod furthest over target to the one furthest under, within the bound.
  for (const pod of pods.values()) {
    pod.sheddable.sort((a, b) => Number(handingOver(b)) - Number(handingOver(a)) || a.shard - b.shard)
  }
  const handover: Array<Move> = [...departures]
  let budget = Math.max(0, Math.floor(input.maxHandovers)) - inFlight
  for (; budget > 0; budget--) {
    const from = largest(pods.values(), excess)
    const to = largest(pods.values(), deficit)
    if (from === undefined || to === undefined) break
    const shard = from.sheddable.shift()!
    from.load -= 1
    to.load += 1
    handover.push({ shard: shard.shard, from: from.podId, to: to.podId })
  }

  return {
    assign: assign.sort((a, b) => a.shard - b.shard),
    handover: handover.sort((a, b) => a.shard - b.shard),
    removePods: input.pods
      .filter((pod) => pod.liveness === "expired" || pod.liveness === "gone")
      .map((pod) => pod.podId)
      .sort(compareIds)
  }
}
