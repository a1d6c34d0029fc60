/**
 * The event loop's delay while an effect runs (`perf_hooks.monitorEventLoopDelay`, 10 ms
 * resolution): how long the longest synchronous stretch kept timers and sockets (a pod's lease
 * renewals) waiting. The bar for every benchmark of a pod: max under 100 ms.
 */
import { monitorEventLoopDelay } from "node:perf_hooks"
import { Effect } from "effect"

export interface LoopDelay {
  readonly p99: number
  readonly max: number
}

/** Runs `effect` and returns its value with the event loop's delay (ms) meanwhile. */
export const withLoopDelay = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<[A, LoopDelay], E, R> =>
  Effect.suspend(() => {
    const histogram = monitorEventLoopDelay({ resolution: 10 })
    histogram.enable()
    return Effect.map(
      Effect.ensuring(
        effect,
        Effect.sync(() => histogram.disable())
      ),
      (value): [A, LoopDelay] => [value, { p99: histogram.percentile(99) / 1e6, max: histogram.max / 1e6 }]
    )
  })

/** `event-loop delay p99 12 ms, max 40 ms` */
export const describeDelay = (delay: LoopDelay): string =>
  `event-loop delay p99 ${delay.p99.toFixed(0)} ms, max ${delay.max.toFixed(0)} ms`
