/**
 * The shard manager's planning step, against a simulated store: a round applies the plan the way
 * `ShardStore` does (each move only where `from` still owns the shard), then owners finish their
 * handovers (`release`). Every plan is checked against the rules (`expectValidPlan`).
 */
import { describe, expect, it } from "@effect/vitest"
import { type Plan, plan } from "../../src/sharding/Rebalance.ts"
import type { PodLiveness, PodRecord, ShardRecord } from "../../src/sharding/ShardStore.ts"

const pod = (podId: string, liveness: PodLiveness = "live", leaving = false): PodRecord => ({
  podId,
  leaseUntil: 0,
  registeredAt: 0,
  renewedAt: 0,
  address: null,
  liveness,
  leaving
})

const shard = (n: number, owner: string | null, nextOwner: string | null = null): ShardRecord => ({
  shard: n,
  owner,
  epoch: 0,
  nextOwner,
  updatedAt: 0
})

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)

interface World {
  readonly shards: ReadonlyArray<ShardRecord>
  readonly pods: ReadonlyArray<PodRecord>
}

const liveIds = (world: World) => new Set(world.pods.filter((p) => p.liveness === "live").map((p) => p.podId))

/** Applies the plan as the store does: a move only where `from` still owns the shard. */
const apply = (world: World, next: Plan): World => {
  const assign = new Map(next.assign.map((move) => [move.shard, move]))
  const handover = new Map(next.handover.map((move) => [move.shard, move]))
  const live = liveIds(world)
  return {
    shards: world.shards.map((s) => {
      const a = assign.get(s.shard)
      if (a !== undefined && a.from === s.owner)
        return { ...s, owner: a.to, nextOwner: null, epoch: s.epoch + 1 }
      const h = handover.get(s.shard)
      if (h !== undefined && h.from === s.owner) return { ...s, nextOwner: h.to }
      return s
    }),
    pods: world.pods.filter((p) => live.has(p.podId) || !next.removePods.includes(p.podId))
  }
}

/** Live owners finish their pending handovers (`release`): all of them, or those `done` picks. */
const release = (world: World, done: (s: ShardRecord) => boolean = () => true): World => {
  const live = liveIds(world)
  return {
    ...world,
    shards: world.shards.map((s) =>
      s.owner !== null && live.has(s.owner) && s.nextOwner !== null && done(s)
        ? { ...s, owner: s.nextOwner, nextOwner: null, epoch: s.epoch + 1 }
        : s
    )
  }
}

/** Shards owned per live pod, by pod id. */
const spread = (world: World): Record<string, number> => {
  const counts: Record<string, number> = {}
  for (const id of [...liveIds(world)].sort()) counts[id] = 0
  for (const s of world.shards) if (s.owner !== null && s.owner in counts) counts[s.owner]! += 1
  return counts
}

const isEven = (world: World): boolean => {
  const counts = Object.values(spread(world))
  const owned = counts.reduce((a, b) => a + b, 0)
  const base = Math.floor(world.shards.length / counts.length)
  return owned === world.shards.length && counts.every((c) => c === base || c === base + 1)
}

const isEmpty = (p: Plan) => p.assign.length === 0 && p.handover.length === 0 && p.removePods.length === 0

/** Checks every rule a plan must follow, whatever the situation. */
const expectValidPlan = (world: World, maxHandovers: number, p: Plan) => {
  const live = liveIds(world)
  if (live.size === 0) return expect(p).toEqual({ assign: [], handover: [], removePods: [] })
  const suspect = new Set(world.pods.filter((x) => x.liveness === "suspect").map((x) => x.podId))
  const byNumber = new Map(world.shards.map((s) => [s.shard, s]))
  const planned = [...p.assign, ...p.handover].map((m) => m.shard)
  expect(new Set(planned).size, "a shard planned twice").toBe(planned.length)
  // Assigned: exactly the shards without a live owner, to live pods, from the owner seen; a
  // suspect owner (it may still run them) keeps its own.
  const unowned = world.shards
    .filter((s) => s.owner === null || (!live.has(s.owner) && !suspect.has(s.owner)))
    .map((s) => s.shard)
  expect(p.assign.map((m) => m.shard)).toEqual(unowned.sort((a, b) => a - b))
  for (const m of p.assign) {
    expect(m.from).toBe(byNumber.get(m.shard)!.owner)
    expect(live.has(m.to)).toBe(true)
  }
  // Handed over: live owner to another live pod, never a shard already on its way to a live pod.
  const inFlight = world.shards.filter(
    (s) =>
      s.owner !== null &&
      (live.has(s.owner) || suspect.has(s.owner)) &&
      s.nextOwner !== null &&
      s.nextOwner !== s.owner &&
      live.has(s.nextOwner)
  )
  for (const m of p.handover) {
    const s = byNumber.get(m.shard)!
    expect(m.from).toBe(s.owner)
    expect(m.from !== null && live.has(m.from) && live.has(m.to) && m.from !== m.to).toBe(true)
    expect(s.nextOwner === null || !live.has(s.nextOwner) || s.nextOwner === s.owner).toBe(true)
  }
  expect(p.handover.length).toBeLessThanOrEqual(Math.max(0, maxHandovers - inFlight.length))
  expect(p.removePods).toEqual(
    world.pods
      .filter((x) => x.liveness !== "live" && x.liveness !== "suspect")
      .map((x) => x.podId)
      .sort()
  )
}

/**
 * Plans, checks, applies and releases until nothing is pending and the plan is empty; returns the
 * handovers planned in each round.
 */
const converge = (start: World, maxHandovers: number, maxRounds = 1_000) => {
  let world = start
  const handovers: Array<number> = []
  for (let round = 0; round < maxRounds; round++) {
    const p = plan({ ...world, maxHandovers })
    expectValidPlan(world, maxHandovers, p)
    if (isEmpty(p) && world.shards.every((s) => s.nextOwner === null)) return { world, handovers }
    handovers.push(p.handover.length)
    world = release(apply(world, p))
  }
  throw new Error(`no convergence in ${maxRounds} rounds: ${JSON.stringify(spread(world))}`)
}

const sum = (xs: ReadonlyArray<number>) => xs.reduce((a, b) => a + b, 0)

/** Mulberry32: a seeded PRNG, so the random situations are the same on every run. */
const prng = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296
}

/** The fewest moves to an even spread, by brute force over which pods get ⌈N/P⌉ (P ≤ 12). */
const fewestMoves = (loads: ReadonlyArray<number>): number => {
  const n = sum(loads)
  const base = Math.floor(n / loads.length)
  const extra = n % loads.length
  let best = Number.POSITIVE_INFINITY
  for (let mask = 0; mask < 1 << loads.length; mask++) {
    let bits = 0
    for (let m = mask; m > 0; m >>= 1) bits += m & 1
    if (bits !== extra) continue
    const moves = sum(loads.map((load, i) => Math.max(0, load - base - ((mask >> i) & 1))))
    best = Math.min(best, moves)
  }
  return best
}

describe("Rebalance.plan", () => {
  it("no live pod: nothing at all, not even removals", () => {
    expect(
      plan({ shards: range(1, 3).map((n) => shard(n, "a")), pods: [pod("a", "expired")], maxHandovers: 5 })
    ).toEqual({ assign: [], handover: [], removePods: [] })
    expect(plan({ shards: range(1, 3).map((n) => shard(n, null)), pods: [], maxHandovers: 5 })).toEqual({
      assign: [],
      handover: [],
      removePods: []
    })
  })

  it("a fresh cluster: every shard assigned at once, whatever the bound; the extra ones by pod id", () => {
    const world = { shards: range(1, 301).map((n) => shard(n, null)), pods: [pod("c"), pod("a"), pod("b")] }
    const p = plan({ ...world, maxHandovers: 0 })
    expectValidPlan(world, 0, p)
    expect(p.assign).toHaveLength(301)
    // a is one further from its target of 101 than b and c from 100, then round robin.
    expect(p.assign.slice(0, 4)).toEqual([
      { shard: 1, from: null, to: "a" },
      { shard: 2, from: null, to: "a" },
      { shard: 3, from: null, to: "b" },
      { shard: 4, from: null, to: "c" }
    ])
    expect(spread(apply(world, p))).toEqual({ a: 101, b: 100, c: 100 })
    expect(plan({ ...apply(world, p), maxHandovers: 10 })).toEqual({
      assign: [],
      handover: [],
      removePods: []
    })
  })

  it("join: the second and third pods get their share, 10 handovers a round, no more than needed", () => {
    let world: World = { shards: range(1, 300).map((n) => shard(n, "a")), pods: [pod("a"), pod("b")] }
    const second = converge(world, 10)
    expect(second.handovers).toEqual(new Array(15).fill(10))
    expect(spread(second.world)).toEqual({ a: 150, b: 150 })

    world = { ...second.world, pods: [...second.world.pods, pod("c")] }
    const third = converge(world, 10)
    expect(third.handovers).toEqual(new Array(10).fill(10))
    expect(spread(third.world)).toEqual({ a: 100, b: 100, c: 100 })
  })

  it("the first round of a join hands the lowest shards over; the next ones continue where it stopped", () => {
    const world: World = { shards: range(1, 300).map((n) => shard(n, "a")), pods: [pod("a"), pod("b")] }
    const first = plan({ ...world, maxHandovers: 3 })
    expect(first).toEqual({
      assign: [],
      handover: [1, 2, 3].map((n) => ({ shard: n, from: "a", to: "b" })),
      removePods: []
    })
    const second = plan({ ...release(apply(world, first)), maxHandovers: 3 })
    expect(second.handover.map((m) => m.shard)).toEqual([4, 5, 6])
  })

  it("pending handovers count for their next owner, are never planned again, and count against the bound", () => {
    const world: World = { shards: range(1, 300).map((n) => shard(n, "a")), pods: [pod("a"), pod("b")] }
    const first = plan({ ...world, maxHandovers: 10 })
    const pending = apply(world, first) // requested, not yet released
    expect(plan({ ...pending, maxHandovers: 10 }).handover).toEqual([])
    const more = plan({ ...pending, maxHandovers: 25 })
    expect(more.handover).toHaveLength(15)
    expect(more.handover.some((m) => first.handover.some((f) => f.shard === m.shard))).toBe(false)
    // Unbounded: everything needed at once, and then nothing.
    const all = plan({ ...world, maxHandovers: Number.POSITIVE_INFINITY })
    expect(all.handover).toHaveLength(150)
    expect(plan({ ...apply(world, all), maxHandovers: Number.POSITIVE_INFINITY }).handover).toEqual([])
  })

  it("death: every shard of a dead pod is assigned in one round (unbounded), evenly, and the pod removed", () => {
    for (const death of ["expired", "gone", "unregistered"] as const) {
      const owners = ["a", "b", "c"]
      const shards = range(1, 300).map((n) => shard(n, owners[(n - 1) % 3]!))
      const pods = death === "unregistered" ? [pod("a"), pod("b")] : [pod("a"), pod("b"), pod("c", death)]
      const world = { shards, pods }
      const p = plan({ ...world, maxHandovers: 1 })
      expectValidPlan(world, 1, p)
      expect(p.assign).toHaveLength(100)
      expect(p.assign.every((m) => m.from === "c")).toBe(true)
      expect(p.handover).toEqual([])
      expect(p.removePods).toEqual(death === "unregistered" ? [] : ["c"])
      const after = apply(world, p)
      expect(spread(after)).toEqual({ a: 150, b: 150 })
      expect(after.pods.map((x) => x.podId)).toEqual(["a", "b"])
      expect(isEmpty(plan({ ...after, maxHandovers: 1 }))).toBe(true)
    }
  })

  it("a suspect pod (its session ended, its lease runs) keeps its shards, gets none, and is not removed; once dead, its shards are assigned", () => {
    const owners = ["a", "b", "c"]
    const shards = [
      ...range(1, 297).map((n) => shard(n, owners[(n - 1) % 3]!, n === 3 ? "a" : n === 1 ? "c" : null)),
      shard(298, null),
      shard(299, null),
      shard(300, null)
    ]
    const world = { shards, pods: [pod("a"), pod("b"), pod("c", "suspect")] }
    const p = plan({ ...world, maxHandovers: 10 })
    expectValidPlan(world, 10, p)
    // Only the unowned shards move, to live pods; shard 3 (c handing it to a) stays in flight, and
    // shard 1 (a handing it to c) is a's again to plan.
    expect(p.assign.map((m) => m.shard)).toEqual([298, 299, 300])
    expect(p.assign.every((m) => m.to !== "c")).toBe(true)
    expect([...p.assign, ...p.handover].some((m) => m.from === "c" || m.to === "c")).toBe(false)
    expect(p.removePods).toEqual([])
    const after = apply(world, p)
    expect(after.shards.filter((s) => s.owner === "c")).toHaveLength(99)
    // Its lease passed: it is dead, and everything it held is assigned in one round.
    const dead = { ...after, pods: [pod("a"), pod("b"), pod("c", "gone")] }
    const next = plan({ ...dead, maxHandovers: 10 })
    expectValidPlan(dead, 10, next)
    expect(next.assign.filter((m) => m.from === "c")).toHaveLength(99)
    expect(next.removePods).toEqual(["c"])
  })

  it("a dead owner's handover to a live pod is completed by the assignment", () => {
    const world = {
      shards: [shard(1, "dead", "b"), shard(2, "a"), shard(3, null, "b"), shard(4, "b")],
      pods: [pod("a"), pod("b"), pod("dead", "gone")]
    }
    const p = plan({ ...world, maxHandovers: 10 })
    expectValidPlan(world, 10, p)
    expect(p.assign).toEqual([
      { shard: 1, from: "dead", to: "b" },
      { shard: 3, from: null, to: "b" }
    ])
    // b now holds 3 of 4: the plan evens it out in the same round.
    expect(p.handover).toEqual([{ shard: 4, from: "b", to: "a" }])
  })

  it("a handover pending to a dead pod is re-planned: those shards are the first their owner gives up", () => {
    const shards = [
      ...range(1, 160).map((n) => shard(n, "a", n > 150 ? "x" : null)),
      ...range(161, 300).map((n) => shard(n, "b"))
    ]
    const world = { shards, pods: [pod("a"), pod("b"), pod("x", "expired")] }
    const p = plan({ ...world, maxHandovers: 10 })
    expectValidPlan(world, 10, p)
    expect(p.handover).toEqual(range(151, 160).map((n) => ({ shard: n, from: "a", to: "b" })))
    expect(p.removePods).toEqual(["x"])
    // They do not count as in flight: the bound is left for real work.
    expect(plan({ ...world, maxHandovers: 12 }).handover).toHaveLength(10)
  })

  it("a handover pending to a dead pod, owner at target: the shard is released to the dead pod, then assigned", () => {
    const shards = [
      ...range(1, 150).map((n) => shard(n, "a", n <= 5 ? "x" : null)),
      ...range(151, 300).map((n) => shard(n, "b"))
    ]
    const world = { shards, pods: [pod("a"), pod("b"), pod("x", "expired")] }
    const p = plan({ ...world, maxHandovers: 10 })
    expect(p).toEqual({ assign: [], handover: [], removePods: ["x"] })
    const released = release(apply(world, p)) // a hands shards 1..5 to x, which is no longer registered
    const next = plan({ ...released, maxHandovers: 10 })
    expect(next.assign).toEqual(range(1, 5).map((n) => ({ shard: n, from: "x", to: "a" })))
    expect(spread(apply(released, next))).toEqual({ a: 150, b: 150 })
  })

  it("minimal movement: an even spread stays as it is, whichever pods hold the extra shards", () => {
    const shards = [
      ...range(1, 100).map((n) => shard(n, "a")),
      ...range(101, 201).map((n) => shard(n, "b")),
      ...range(202, 301).map((n) => shard(n, "c"))
    ]
    expect(isEmpty(plan({ shards, pods: [pod("a"), pod("b"), pod("c")], maxHandovers: 10 }))).toBe(true)
  })

  it("deterministic: the order of the rows does not change the plan", () => {
    const random = prng(3)
    const owners = ["a", "b", "c", "d", null, "gone"]
    const shards = range(1, 200).map((n) => shard(n, owners[Math.floor(random() * owners.length)]!))
    const pods = [pod("a"), pod("b"), pod("c"), pod("d"), pod("gone", "gone"), pod("e", "expired")]
    const expected = plan({ shards, pods, maxHandovers: 7 })
    for (let i = 0; i < 20; i++) {
      const shuffle = <A>(xs: ReadonlyArray<A>) =>
        xs
          .map((x) => [random(), x] as const)
          .sort((l, r) => l[0] - r[0])
          .map(([, x]) => x)
      expect(plan({ shards: shuffle(shards), pods: shuffle(pods), maxHandovers: 7 })).toEqual(expected)
    }
  })

  it("maxHandovers: 0 or negative plans no handover (assignments still happen); a fraction rounds down", () => {
    const world = {
      shards: [...range(1, 10).map((n) => shard(n, "a")), shard(11, null)],
      pods: [pod("a"), pod("b")]
    }
    for (const max of [0, -3, 0.9]) {
      const p = plan({ ...world, maxHandovers: max })
      expect(p.handover).toEqual([])
      expect(p.assign).toEqual([{ shard: 11, from: null, to: "b" }])
    }
    expect(plan({ ...world, maxHandovers: 2.7 }).handover).toHaveLength(2)
  })

  it("300 shards, scaling 1 → 10 pods and back: minimal handovers, bounded rounds, deaths need no handover", () => {
    const ids = range(0, 9).map((i) => `pod-${i}`)
    let world: World = { shards: range(1, 300).map((n) => shard(n, null)), pods: [pod(ids[0]!)] }
    world = converge(world, 8).world
    for (let size = 2; size <= 10; size++) {
      world = { ...world, pods: ids.slice(0, size).map((id) => pod(id)) }
      const before = Object.values(spread(world))
      const { world: after, handovers } = converge(world, 8)
      expect(sum(handovers)).toBe(fewestMoves(before))
      expect(handovers.every((h) => h <= 8)).toBe(true)
      expect(isEven(after)).toBe(true)
      world = after
    }
    expect(Object.values(spread(world))).toEqual(new Array(10).fill(30))
    for (let size = 9; size >= 1; size--) {
      world = { ...world, pods: [...ids.slice(0, size).map((id) => pod(id)), pod(ids[size]!, "gone")] }
      const { world: after, handovers } = converge(world, 8)
      expect(handovers).toEqual([0]) // one round of assignments, already even
      expect(isEven(after)).toBe(true)
      world = after
    }
    expect(spread(world)).toEqual({ "pod-0": 300 })
  })

  it("property: random situations converge to an even spread within the rules, then plan nothing", () => {
    const random = prng(2024)
    const pick = <A>(xs: ReadonlyArray<A>): A => xs[Math.floor(random() * xs.length)]!
    for (let trial = 0; trial < 400; trial++) {
      const shardCount = random() < 0.3 ? 300 : 1 + Math.floor(random() * 300)
      const podCount = 1 + Math.floor(random() * 10)
      const pods = range(1, podCount).map((i) =>
        pod(`p${i}`, random() < 0.7 ? "live" : pick(["expired", "gone", "suspect"] as const))
      )
      const ids = [...pods.map((p) => p.podId), "unregistered"]
      const shards = range(1, shardCount).map((n) =>
        shard(n, random() < 0.15 ? null : pick(ids), random() < 0.2 ? pick(ids) : null)
      )
      const maxHandovers = pick([1, 5, 10, 50, Number.POSITIVE_INFINITY])
      let world: World = { shards, pods }
      // Rounds where owners are slow (some handovers stay pending), and one membership change.
      for (let round = 0; round < 5; round++) {
        const p = plan({ ...world, maxHandovers })
        expectValidPlan(world, maxHandovers, p)
        world = release(apply(world, p), () => random() < 0.5)
      }
      world = random() < 0.5 ? { ...world, pods: [...world.pods, pod("joiner")] } : world
      // Suspect pods keep their shards until their leases pass.
      world = {
        ...world,
        pods: world.pods.map((x) => (x.liveness === "suspect" ? { ...x, liveness: "gone" as const } : x))
      }
      if (liveIds(world).size === 0) continue
      const { world: final } = converge(world, maxHandovers)
      expect(isEven(final), `trial ${trial}: ${JSON.stringify(spread(final))}`).toBe(true)
      expect(final.shards.every((s) => s.nextOwner === null)).toBe(true)
    }
  })

  it("property: from a clean state (live owners, nothing pending), the total handovers are the fewest possible", () => {
    const random = prng(99)
    for (let trial = 0; trial < 200; trial++) {
      const podCount = 1 + Math.floor(random() * 10)
      const ids = range(1, podCount).map((i) => `p${i}`)
      // Skewed loads: a few pods hold most shards.
      const weights = ids.map(() => random() ** 3)
      const total = sum(weights)
      const shards = range(1, 1 + Math.floor(random() * 300)).map((n) => {
        const r = random() * total
        let below = 0
        const owner = ids.find((_, i) => {
          below += weights[i]!
          return r < below
        })
        return shard(n, owner ?? ids[ids.length - 1]!)
      })
      const world = { shards, pods: ids.map((id) => pod(id)) }
      const before = Object.values(spread(world))
      const maxHandovers = 1 + Math.floor(random() * 20)
      const { world: final, handovers } = converge(world, maxHandovers)
      expect(sum(handovers)).toBe(fewestMoves(before))
      expect(isEven(final)).toBe(true)
    }
  })

  it("a leaving pod's shards are all handed over at once, to pods that stay, beyond the handover bound", () => {
    const world: World = {
      shards: [
        ...range(1, 6).map((n) => shard(n, "a")),
        ...range(7, 9).map((n) => shard(n, "b")),
        shard(10, "c")
      ],
      pods: [pod("a", "live", true), pod("b", "live", true), pod("c"), pod("d")]
    }
    const next = plan({ ...world, maxHandovers: 1 })
    // Nothing is assigned (the leaving pods still run their shards), nothing goes to a leaving pod.
    expect(next.assign).toEqual([])
    expect(next.handover.map((move) => move.shard)).toEqual(range(1, 9))
    expect(next.handover.every((move) => move.to === "c" || move.to === "d")).toBe(true)
    expect(next.removePods).toEqual([])
    // Once released, the shards that stay are spread evenly over c and d.
    const after = release(apply(world, next))
    const count = (owner: string) => after.shards.filter((s) => s.owner === owner).length
    expect([count("c"), count("d")]).toEqual([5, 5])
    expect(plan({ ...after, maxHandovers: 1 }).handover).toEqual([])
  })
})
