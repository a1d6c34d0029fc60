/**
 * A pod's registration in the store, kept alive by renewals of its lease, and replaced when it
 * ends: the store no longer lists the pod (the manager declared it dead, or its session ended), or
 * another pod found it suspect and asked it to stand down. Then the pod stops every run and joins
 * again as a new member (`rejoin`), giving up the old registration (which frees its shards for
 * others) only once its runs ended, or once its lease has passed by the pod's clock.
 *
 * The registrations of this pod that were replaced and whose runs all ended are `former`: asked to
 * stand down, they answer at once that they stopped.
 */
import { Effect, Exit, Scope } from "effect"
import * as Instrument from "../../observability/internal/instrument.ts"
import type { DuplicatePodError, ShardStoreError } from "../ShardingErrors.ts"
import type { ShardStore } from "../ShardStore.ts"
import { type ActiveShards, allEnded } from "./ActiveShards.ts"
import type { Lease } from "./Lease.ts"

export interface Registration {
  /** The `registeredAt` of the current registration (store clock). */
  readonly current: () => number
  /** The current registration stood down (`standDown`): no run starts until the pod joins again. */
  readonly relinquished: () => boolean
  /**
   * Renews the lease. The store extends it when it runs the renewal, after `sentAt`, so an
   * answer however late makes the pod valid until `sentAt + ttl - margin`, on the safe side: it
   * counts as long as that is still ahead. Waiting for it less would throw away the answers of a
   * slow link (round trips longer than an interval) while the store keeps extending the lease, and
   * leave the pod's shards run by nobody. Not answered by then, it counts as failed.
   */
  readonly renew: Effect.Effect<void, DuplicatePodError | ShardStoreError>
  /** See `Pod.standDown`. */
  readonly standDown: (registeredAt: number) => Effect.Effect<boolean>
}

export const make = (options: {
  readonly store: ShardStore["Service"]
  readonly podId: string
  readonly ttl: number
  /** How long a stand-down waits for the runs to end. */
  readonly drainMillis: number
  /** The pod's scope: each registration's scope is forked from it. */
  readonly scope: Scope.Scope
  /** The first registration, and the scope that holds its marker. */
  readonly registeredAt: number
  readonly membership: Scope.Closeable
  /** Registers the pod again, its marker held in the given scope. */
  readonly register: (into: Scope.Scope) => Effect.Effect<number, DuplicatePodError | ShardStoreError>
  readonly active: ActiveShards
  readonly lease: Lease
}): Registration => {
  const { store, podId, ttl, drainMillis, scope, register, active, lease } = options
  let membership = options.membership
  let registration = options.registeredAt
  const former = new Set<number>()
  let relinquished = false

  /**
   * Stops everything and joins again as a new member: the store no longer lists this pod, or it
   * stood down. The old registration's runs have stopped before it is replaced.
   */
  const rejoin = (why: string) =>
    Effect.gen(function* () {
      yield* active.loseAll(why)
      // The old registration counts as stopped (`standDown`) once every one of its runs ended,
      // those a stand-down was still stopping included.
      const old = registration
      const ended = allEnded([...active.byShard.values()])
      yield* Effect.forkIn(
        Effect.andThen(
          ended,
          Effect.sync(() => former.add(old))
        ),
        scope
      )
      // Releasing the old marker makes the old registration gone at once, its shards free for
      // others: first let the runs still stopping end (`loseAll` above waited only for those it
      // stopped itself; a lapse or a stand-down may have begun stopping others). At most until the
      // old lease has passed by this pod's clock: from then on the store gives its shards away
      // anyway, and a run that has not ended is stuck on a write its epoch fences.
      const leaseLeft = lease.left() + lease.margin
      if (leaseLeft > 0 && (yield* Effect.timeoutOption(ended, leaseLeft))._tag === "None") {
        yield* Effect.logWarning(
          `pod ${podId}: some runs of its old registration had not ended when its lease passed; joining again anyway`
        )
      }
      yield* Scope.close(membership, Exit.void)
      membership = yield* Scope.fork(scope)
      const registering = lease.now()
      registration = yield* register(membership)
      lease.extend(registering)
      relinquished = false
    })

  const renew = Effect.gen(function* () {
    // It stood down (another pod found its store session ended): join again with a new one.
    if (relinquished) return yield* rejoin("it stood down")
    const sentAt = lease.now()
    const renewed = yield* store
      .renew(podId, ttl)
      .pipe(Effect.timeoutOption(ttl - lease.margin), Effect.option)
    const ok = renewed._tag === "Some" && renewed.value._tag === "Some" && renewed.value.value
    yield* Instrument.leaseRenewal(podId, ok)
    if (renewed._tag === "None" || renewed.value._tag === "None") return
    if (renewed.value.value) {
      lease.extend(sentAt)
      return
    }
    // The manager declared this pod dead (it was paused or cut off past its lease), or its
    // session ended: its shards belong to others now, or will. Stop everything and join again.
    yield* rejoin("the store no longer lists this pod (its lease expired or its session ended)")
  })

  const standDown = (registeredAt: number): Effect.Effect<boolean> =>
    Effect.suspend(() => {
      if (former.has(registeredAt)) return Effect.succeed(true)
      if (registeredAt !== registration) return Effect.succeed(false)
      relinquished = true
      return Effect.gen(function* () {
        // Shards already stopping (not stopped again by loseAll) count too: wait for every one.
        const entries = [...active.byShard.values()]
        yield* Effect.forkIn(
          active.loseAll("another pod found its store session ended; it stands down and joins again"),
          scope
        )
        // A run whose write is on the wire to a store that does not answer cannot end: then this
        // proves nothing, and the asker waits for the lease (it may ask again meanwhile).
        const ended = yield* Effect.timeoutOption(allEnded(entries), drainMillis)
        return ended._tag === "Some"
      })
    })

  return {
    current: () => registration,
    relinquished: () => relinquished,
    renew,
    standDown
  }
}
