/**
 * Deadlines of `send` callers waiting for a reply from an entity of this pod, without a timer or a
 * racing fiber per call (`Effect.timeoutOption` forks two fibers and sets a timer for each call).
 *
 * Callers with the same timeout expire in the order they registered, so each distinct timeout has
 * a lane (an insertion-ordered set) and one fiber that sleeps, on the clock in context (`TestClock`
 * in tests), until the oldest entry's deadline. A registration is a set insertion, a reply a set
 * deletion. If the wall clock steps back, an entry registered after the step may expire late, by at
 * most the step.
 */

import type { Scope } from "effect"
import { Clock, Effect, Fiber } from "effect"

/** A registered deadline: `cancel` it when the reply comes first. */
export interface Deadline {
  readonly deadline: number
  readonly expire: () => void
  readonly lane: Lane
}

interface Lane {
  readonly millis: number
  readonly entries: Set<Deadline>
  /** Wakes the lane's fiber, parked while the lane is empty. */
  parked: (() => void) | undefined
  fiber: Fiber.Fiber<never> | undefined
}

export interface Deadlines {
  /** Calls `expire` once `millis` have passed, unless cancelled first. */
  readonly add: (millis: number, expire: () => void) => Deadline
  /** Forgets `deadline`: its `expire` will not be called. */
  readonly cancel: (deadline: Deadline) => void
}

/** Deadlines whose fibers run until the scope closes. */
export const make: Effect.Effect<Deadlines, never, Scope.Scope> = Effect.gen(function* () {
  const clock = yield* Clock.Clock
  const context = yield* Effect.context<never>()
  const lanes = new Map<number, Lane>()
  yield* Effect.addFinalizer(() =>
    Effect.forEach(
      lanes.values(),
      (lane) => (lane.fiber === undefined ? Effect.void : Fiber.interrupt(lane.fiber)),
      {
        discard: true
      }
    )
  )

  /** One step of a lane's fiber: park while empty, sleep until the oldest deadline, expire it. */
  const step = (lane: Lane): Effect.Effect<void> =>
    Effect.suspend(() => {
      const oldest = lane.entries.values().next().value
      if (oldest === undefined) {
        return Effect.callback<void>((resume) => {
          lane.parked = () => resume(Effect.void)
        })
      }
      const wait = oldest.deadline - clock.currentTimeMillisUnsafe()
      if (wait > 0) return Effect.sleep(wait)
      lane.entries.delete(oldest)
      oldest.expire()
      return Effect.void
    })

  const laneOf = (millis: number): Lane => {
    let lane = lanes.get(millis)
    if (lane === undefined) {
      const created: Lane = { millis, entries: new Set(), parked: undefined, fiber: undefined }
      created.fiber = Effect.runForkWith(context)(Effect.forever(step(created)))
      lanes.set(millis, created)
      lane = created
    }
    return lane
  }

  return {
    add: (millis, expire) => {
      const lane = laneOf(millis)
      const deadline: Deadline = { deadline: clock.currentTimeMillisUnsafe() + millis, expire, lane }
      lane.entries.add(deadline)
      const parked = lane.parked
      if (parked !== undefined) {
        lane.parked = undefined
        parked()
      }
      return deadline
    },
    cancel: (deadline) => {
      deadline.lane.entries.delete(deadline)
    }
  }
})
