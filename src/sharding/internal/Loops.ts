/**
 * A pod's loops, from its first round to its shutdown. Every `interval`:
 * - an ownership round: the manager's round (`ManagerRound`), then the reconciliation
 *   (`Reconcile`); a round that gives up waiting for the ownership lock (`ShardStoreError.busy`:
 *   another pod holds it, perhaps frozen inside its transaction) is skipped and tried again at the
 *   next interval;
 * - a renewal of the pod's lease, in a fiber of its own (and an urgent one on a `BudgetScheduler`):
 *   a round or a lock wait stuck on the store must not keep the lease from being renewed;
 * - the watchdog (`Lease.watchdog`), which stops the runs when the lease runs out by the pod's
 *   own clock.
 *
 * Shutting down, the pod is marked leaving first (`leave`), so the manager moves its shards at
 * once; when the pod's scope closes (after the engine stopped its runs), the loops end and the pod
 * unregisters, handing its shards back.
 */
import { Effect, Fiber, Scheduler, Scope } from "effect"
import { urgentOf } from "../../internal/BudgetScheduler.ts"
import type { ShardStoreError } from "../ShardingErrors.ts"
import type { ShardStore } from "../ShardStore.ts"
import type { ActiveShards } from "./ActiveShards.ts"
import { isBusy } from "./Joining.ts"
import { type Lease, watchdog } from "./Lease.ts"

export interface Loops {
  /** The first round, then the loops until the pod's scope closes (see `Pod.start`). */
  readonly start: Effect.Effect<void, ShardStoreError>
  /** Marks the pod as leaving in the store (see `Pod.leave`). */
  readonly leave: Effect.Effect<void>
}

export const make = (options: {
  readonly store: ShardStore["Service"]
  readonly podId: string
  readonly ttl: number
  readonly interval: number
  /** The pod's scope: the loops run in it, and its closing ends them. */
  readonly scope: Scope.Scope
  readonly managerRound: Effect.Effect<void, ShardStoreError>
  readonly reconcile: Effect.Effect<void, ShardStoreError>
  readonly renew: Effect.Effect<void, unknown>
  readonly lease: Lease
  readonly active: ActiveShards
  /** The pod stood down: it runs no round until it joins again. */
  readonly relinquished: () => boolean
}): Loops => {
  const { store, podId, ttl, interval, scope, managerRound, reconcile, renew, lease, active } = options
  /** The pod's scope is closing: no more rounds or renewals. */
  let leaving = false

  const logged = <A, E>(what: string, effect: Effect.Effect<A, E>) =>
    Effect.catchCause(effect, (cause) => Effect.logWarning(`pod ${podId}: ${what} failed`, cause))

  /**
   * A round that gave up waiting for the ownership lock (another pod holds it, perhaps frozen
   * inside its transaction) is skipped and tried again at the next interval; the pod keeps
   * renewing its lease (its own loop) and running its shards meanwhile.
   */
  const skipIfBusy = <A>(effect: Effect.Effect<A, ShardStoreError>) =>
    Effect.catchIf(effect, isBusy, (error) =>
      Effect.logDebug(
        `pod ${podId}: ownership round skipped, tried again in ${interval} ms: ${error.message}`
      )
    )

  // Renewals run in a loop of their own: a manager round or a reconciliation stuck on the store
  // (a lock held by a frozen pod's open transaction) must not keep the lease from being renewed.
  const round = Effect.gen(function* () {
    if (leaving || options.relinquished()) return
    if (lease.left() <= 0) return yield* active.loseAll("its lease was not renewed in time")
    yield* managerRound
    if (leaving || lease.left() <= 0) return
    yield* reconcile
  })

  /** The first round, then the loops; the engine calls it once it can take shards. */
  const start = Effect.gen(function* () {
    yield* skipIfBusy(managerRound.pipe(Effect.andThen(reconcile)))
    const loop = yield* Effect.forkIn(
      Effect.forever(Effect.andThen(Effect.sleep(interval), logged("an ownership round", skipIfBusy(round)))),
      scope
    )
    // Urgent: on a BudgetScheduler its tasks run ahead of every other fiber's in each turn.
    const renewals = yield* Effect.forkIn(
      Effect.forever(
        Effect.andThen(
          Effect.sleep(interval),
          logged(
            "a lease renewal",
            Effect.suspend(() => (leaving ? Effect.void : renew))
          )
        )
      ).pipe(Effect.provideService(Scheduler.Scheduler, urgentOf(yield* Scheduler.Scheduler))),
      scope
    )
    const dog = yield* Effect.forkIn(watchdog(lease, interval, active.loseAll), scope)
    // Runs after the engine's finalizer stopped every run (the engine forks the pod's scope first).
    yield* Scope.addFinalizer(
      scope,
      Effect.gen(function* () {
        leaving = true
        yield* Fiber.interrupt(loop)
        yield* Fiber.interrupt(renewals)
        yield* Fiber.interrupt(dog)
        active.byShard.clear()
        yield* logged("leaving the cluster", Effect.timeout(store.unregister(podId), ttl))
      })
    )
  })

  let leaveMarked = false
  const leave = Effect.suspend(() => {
    if (leaveMarked) return Effect.void
    leaveMarked = true
    return logged("marking the pod as leaving", Effect.timeout(store.leave(podId), interval * 2))
  })

  return { start, leave }
}
