/**
 * The pod's lease clock: between readings it advances by the larger of the monotonic and the wall
 * clock's advance, so it never goes back (a wall clock corrected backwards) and never under-counts
 * (a host suspended: the monotonic clock stood still, the wall clock did not).
 */
import { describe, expect, it } from "@effect/vitest"
import { type Clock, Effect } from "effect"
import * as LeaseClock from "../../src/sharding/internal/LeaseClock.ts"

/** A clock whose wall and monotonic readings the test sets. */
const settable = () => {
  const time = { wall: 1_700_000_000_000, monotonic: 5_000 }
  const clock: Clock.Clock = {
    currentTimeMillisUnsafe: () => time.wall,
    currentTimeMillis: Effect.sync(() => time.wall),
    currentTimeNanosUnsafe: () => BigInt(time.wall) * 1_000_000n,
    currentTimeNanos: Effect.sync(() => BigInt(time.wall) * 1_000_000n),
    monotonicTimeNanosUnsafe: () => BigInt(time.monotonic) * 1_000_000n,
    monotonicTimeNanos: Effect.sync(() => BigInt(time.monotonic) * 1_000_000n),
    sleep: () => Effect.void
  }
  return { time, clock }
}

describe("LeaseClock", () => {
  it("advances with both clocks, by the larger advance, and never goes back", () => {
    const { time, clock } = settable()
    const now = LeaseClock.make(clock)
    expect(now()).toBe(0)
    time.wall += 100
    time.monotonic += 100
    expect(now()).toBe(100)
    // The wall clock is corrected one hour back: the monotonic clock's advance counts.
    time.wall -= 3_600_000
    time.monotonic += 50
    expect(now()).toBe(150)
    // The host was suspended 10 s: the monotonic clock did not see it, the wall clock did.
    time.wall += 10_000
    expect(now()).toBe(10_150)
    // The wall clock runs slow: the monotonic clock's advance counts.
    time.wall += 10
    time.monotonic += 30
    expect(now()).toBe(10_180)
  })
})
