/**
 * A pod's lease by its own clock (`LeaseClock`): valid until `sentAt + TTL - TTL/5` of its last
 * successful renewal (or of its registration), before any other pod can see the lease as expired
 * by the store's clock. Past that point the pod must stop its runs, and two things make it:
 * - the watchdog, a fiber that wakes at that point and stops every run;
 * - `holds`, asked by the runs (`mayWrite`): after the event loop stalled past that point (the
 *   process paused, a long synchronous block), the watchdog's timer is one among the runs' timers,
 *   and the first run told "no" makes the pod stop every run at once.
 */
import { type Context, Effect } from "effect"

export interface Lease {
  /** The pod's own clock, in ms (`LeaseClock`). */
  readonly now: () => number
  /** How long before the store's lease ends the pod stops: TTL / 5. */
  readonly margin: number
  /** How long the pod may still run, in ms; 0 or less: it must stop now. */
  readonly left: () => number
  /** Whether the lease ran out by the pod's clock. */
  readonly lapsed: () => boolean
  /** A renewal (or registration) sent at `sentAt` (the pod's clock) succeeded. */
  readonly extend: (sentAt: number) => void
  /**
   * Whether the lease still holds by the pod's clock. When a run is told it does not (`mayWrite`:
   * it stops there), the pod stops every run at once, in a fiber of its own, without waiting for
   * its watchdog: a renewal that succeeds in between would keep the watchdog from acting, and
   * the shards would stay with some of their runs stopped. Stopped, they are taken again at the
   * next round (their executions resumed) if the store still gives them to this pod.
   */
  readonly holds: () => boolean
}

/** A lease valid from now on (the pod's clock), for `ttl` minus the margin. */
export const make = (options: {
  readonly now: () => number
  readonly ttl: number
  /** The caller's services (logger, clock): `holds` is asked outside any fiber of the pod. */
  readonly context: Context.Context<never>
  /** Stops every run of the pod. */
  readonly loseAll: (why: string) => Effect.Effect<void>
}): Lease => {
  const { now, ttl, context, loseAll } = options
  const margin = ttl / 5
  /** By this pod's clock: when it must stop running, unless a renewal succeeds before. */
  let validUntil = now() + ttl - margin
  /** Whether the runs were stopped (`holds`) since the lease last ran out by the pod's clock. */
  let lapseHandled = false
  return {
    now,
    margin,
    left: () => validUntil - now(),
    lapsed: () => now() >= validUntil,
    extend: (sentAt) => {
      validUntil = sentAt + ttl - margin
      lapseHandled = false
    },
    holds: () => {
      if (now() < validUntil) return true
      if (!lapseHandled) {
        lapseHandled = true
        // After a yield: this may be called from inside another fiber's step (see `LeaseGuard`).
        Effect.runForkWith(context)(
          Effect.andThen(Effect.yieldNow, loseAll("a run found its lease run out by the pod's own clock"))
        )
      }
      return false
    }
  }
}

/** Stops the runs by the pod's own clock when renewals stop succeeding; runs until interrupted. */
export const watchdog = (
  lease: Lease,
  interval: number,
  loseAll: (why: string) => Effect.Effect<void>
): Effect.Effect<never> =>
  Effect.gen(function* () {
    while (true) {
      const wait = lease.left()
      if (wait > 0) {
        yield* Effect.sleep(Math.min(wait, interval))
        continue
      }
      yield* loseAll("its lease could not be renewed before it would expire")
      yield* Effect.sleep(interval)
    }
  })
