/**
 * Clock skew for tests: a `Clock` whose wall-clock readings are `offsetMillis` ahead of (or, when
 * negative, behind) the clock it wraps, as on a machine whose clock is set wrong.
 *
 * Only the readings that are a point in time move: `currentTimeMillis`, `currentTimeNanos` and their
 * unsafe variants. Durations do not: `sleep` sleeps as long as the wrapped clock's does, and the
 * monotonic reading (an arbitrary origin, meant only for differences) is the wrapped one. So a
 * program under `layer(offset)` runs at the speed it always does, with every timestamp it reads,
 * stores or compares shifted by `offset`.
 *
 * @example
 * ```ts
 * // A pod whose clock is 1.5 s slow, for its whole program (store layers and forked fibers too).
 * Effect.runFork(program.pipe(Effect.provide(OffsetClock.layer(-1_500))))
 * ```
 */
import { Clock, Effect, Layer } from "effect"

/**
 * `clock` with its wall-clock readings moved by `offsetMillis`: a number, or a function read at
 * every reading (a clock that is stepped while the program runs, as NTP or a resumed VM does).
 */
export const make = (clock: Clock.Clock, offsetMillis: number | (() => number)): Clock.Clock => {
  const offset = typeof offsetMillis === "number" ? () => offsetMillis : offsetMillis
  const currentTimeMillisUnsafe = () => clock.currentTimeMillisUnsafe() + offset()
  const currentTimeNanosUnsafe = () =>
    clock.currentTimeNanosUnsafe() + BigInt(Math.round(offset() * 1_000_000))
  return {
    currentTimeMillisUnsafe,
    currentTimeMillis: Effect.sync(currentTimeMillisUnsafe),
    currentTimeNanosUnsafe,
    currentTimeNanos: Effect.sync(currentTimeNanosUnsafe),
    monotonicTimeNanosUnsafe: () => clock.monotonicTimeNanosUnsafe(),
    monotonicTimeNanos: clock.monotonicTimeNanos,
    sleep: (duration) => clock.sleep(duration)
  }
}

/**
 * Provides the `Clock` in context (the live one by default, or a `TestClock`) moved by
 * `offsetMillis`. Provide it outermost, so that every layer and fiber of the program reads it.
 */
export const layer = (offsetMillis: number | (() => number)) =>
  Layer.effect(
    Clock.Clock,
    Clock.clockWith((clock) => Effect.succeed(make(clock, offsetMillis)))
  )
