/**
 * A pod's reconciliation: it asks the store for the shards it owns and makes the shards it runs
 * (`ActiveShards`) match. It takes the new ones (the engine resumes their executions), stops the
 * ones it lost, and hands over the ones the manager asked for: their runs finish the attempts in
 * progress, then the shard is released with epoch + 1 to the next owner, which starts it only
 * once this pod has stopped.
 *
 * A shard whose runs of an earlier epoch are still stopping (a lapse or a stand-down began it) is
 * taken again only once they ended, or one TTL after they were told to stop.
 */
import { Effect, type Scope } from "effect"
import * as Instrument from "../../observability/internal/instrument.ts"
import type { ShardStoreError } from "../ShardingErrors.ts"
import type { ShardRecord, ShardStore } from "../ShardStore.ts"
import type { ActiveShards } from "./ActiveShards.ts"

/** One reconciliation: asks the store for the pod's shards and makes the local view match. */
export const make = (options: {
  readonly store: ShardStore["Service"]
  readonly podId: string
  readonly ttl: number
  /** The pod's own clock (`LeaseClock`). */
  readonly now: () => number
  /** Where handovers run in the background. */
  readonly scope: Scope.Scope
  readonly active: ActiveShards
  /** The pod stood down: it takes no shard. */
  readonly relinquished: () => boolean
  /** Tells the engine the pod owns `shard` at `epoch` from now on (a part of `Pod.ShardListener`). */
  readonly listener: { readonly acquired: (shard: number, epoch: number) => Effect.Effect<void> }
}): Effect.Effect<void, ShardStoreError> => {
  const { store, podId, ttl, now, scope, active, relinquished, listener } = options
  /** Shards being handed over now (their runs finishing, then released). */
  const handingOver = new Set<number>()

  /**
   * Runs `row.shard` at `row.epoch` unless it does already, stopping the runs of an earlier
   * epoch first. Returns false, taking nothing, if the pod stood down meanwhile: the round ends.
   */
  const take = (row: ShardRecord): Effect.Effect<boolean> =>
    Effect.gen(function* () {
      const current = active.byShard.get(row.shard)
      if (current?.epoch === row.epoch) return true
      if (current !== undefined) {
        yield* active.lose(row.shard, current.epoch)
        // Runs of an earlier epoch still stopping (a lapse or a stand-down began it) keep the
        // shard until they end: a shard is taken again once its `lost` returned, so no run of
        // it is resumed beside one still stopping. For one TTL at most: a run that has not ended
        // by then hangs (on a write its old epoch fences), and must not hold the shard for good.
        const stopping = active.byShard.get(row.shard)
        if (stopping !== undefined) {
          if (now() - (stopping.stoppingSince ?? now()) < ttl) return true
          yield* Effect.logWarning(
            `pod ${podId}: the runs of shard ${row.shard} at epoch ${stopping.epoch} have not ended ${ttl} ms after they were told to stop; taking it at epoch ${row.epoch} anyway`
          )
        }
      }
      // Checked with no yield before the shard is taken: a pod that stood down meanwhile takes none.
      if (relinquished()) return false
      active.add(row.shard, row.epoch)
      yield* Instrument.shardAcquired(listener.acquired(row.shard, row.epoch), podId, row.shard, row.epoch)
      return true
    })

  /**
   * Hands `row.shard` over: the runs finish their attempts in progress (at most `drainMillis`),
   * then the shard goes to the next owner (epoch + 1). In the background: the rounds (and the
   * lease renewals) go on meanwhile.
   */
  const handOver = (row: ShardRecord) =>
    Effect.suspend(() => {
      if (handingOver.has(row.shard)) return Effect.void
      handingOver.add(row.shard)
      const entry = active.byShard.get(row.shard)
      return Effect.forkIn(
        (entry === undefined ? Effect.void : active.lose(row.shard, entry.epoch, true)).pipe(
          Effect.andThen(store.release(podId, row.shard, row.epoch)),
          Effect.catchCause((cause) =>
            Effect.logWarning(`pod ${podId}: handing over shard ${row.shard} failed`, cause)
          ),
          Effect.ensuring(Effect.sync(() => handingOver.delete(row.shard)))
        ),
        scope
      )
    })

  return Effect.gen(function* () {
    if (relinquished()) return
    const mine = yield* store.shardsOf(podId)
    const owned = new Set<number>()
    const handovers: Array<ShardRecord> = []
    for (const row of mine) {
      owned.add(row.shard)
      if (row.nextOwner !== null) {
        handovers.push(row)
        continue
      }
      if (!(yield* take(row))) return
    }
    const gone = [...active.byShard].filter(([shard]) => !owned.has(shard))
    yield* Effect.forEach(gone, ([shard, { epoch }]) => active.lose(shard, epoch), {
      concurrency: "unbounded",
      discard: true
    })
    for (const row of handovers) yield* handOver(row)
  })
}
