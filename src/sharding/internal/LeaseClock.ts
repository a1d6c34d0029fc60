/**
 * The clock a pod measures its lease with: elapsed time that never goes back and never
 * under-counts. Between two readings it advances by the larger of what the monotonic clock and
 * the wall clock advanced:
 * - the monotonic clock alone does not count the time a host spends suspended (Linux's
 *   `CLOCK_MONOTONIC`), so a pod on a suspended VM would wake up believing its lease still held;
 * - the wall clock alone goes back when it is corrected (NTP), which would stretch the lease.
 * A forward step of the wall clock counts as time passed: the pod may stop its runs early, never late.
 */
import type { Clock } from "effect"

/** A reading in milliseconds, from an arbitrary origin: subtract readings, do not store them. */
export const make = (clock: Clock.Clock): (() => number) => {
  const monotonic = () => Number(clock.monotonicTimeNanosUnsafe()) / 1_000_000
  let lastMonotonic = monotonic()
  let lastWall = clock.currentTimeMillisUnsafe()
  let elapsed = 0
  return () => {
    const nowMonotonic = monotonic()
    const nowWall = clock.currentTimeMillisUnsafe()
    elapsed += Math.max(nowMonotonic - lastMonotonic, nowWall - lastWall, 0)
    lastMonotonic = nowMonotonic
    lastWall = nowWall
    return elapsed
  }
}
