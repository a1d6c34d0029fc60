/**
 * The shards a pod runs, each with the epoch it runs it at and how far its runs are in stopping.
 *
 * A shard is stopped either at once (`lose`: lost, fenced, the lease ran out) or gently (handed
 * over: attempts in progress finish, for at most `drainMillis`, and no new run starts). Either way
 * it stays here, `draining`, until its runs ended (the engine's `lost` or `handOver` returned), so
 * the pod does not take it again beside runs still stopping; then it leaves and its `ended` is done.
 */
import { Deferred, Effect, Exit } from "effect"
import * as Instrument from "../../observability/internal/instrument.ts"

/** A shard the pod runs. */
export interface ActiveShard {
  readonly epoch: number
  /** No new run starts: its runs are stopping (at once or gently). */
  draining: boolean
  /** Its runs were told to stop at once (not only to drain). */
  stopped: boolean
  /** The store refused a write of it at `epoch`: another pod owns it now. */
  refused: boolean
  /** When its runs were told to stop (the pod's clock), if they were. */
  stoppingSince: number | undefined
  /** Done once the shard's runs ended and it left `active`. */
  readonly ended: Deferred.Deferred<void>
}

/** What the pod tells the engine when it stops a shard (a part of `Pod.ShardListener`). */
export interface StopListener {
  readonly lost: (shard: number) => Effect.Effect<void>
  readonly handOver: (shard: number, deadlineMillis: number) => Effect.Effect<void>
}

export interface ActiveShards {
  /** The shards, by number. */
  readonly byShard: Map<number, ActiveShard>
  /** Starts running `shard` at `epoch` (the caller tells the engine). */
  readonly add: (shard: number, epoch: number) => void
  /**
   * Stops the runs of `shard` if the pod still runs it at `epoch`: no new run starts from now on,
   * the runs in progress may write (fenced) while they stop, then the shard is forgotten. Gently:
   * hands it over (its attempts in progress finish first).
   */
  readonly lose: (shard: number, epoch: number, gently?: boolean) => Effect.Effect<void>
  /** Stops every shard not stopped already, with a warning saying `why`. */
  readonly loseAll: (why: string) => Effect.Effect<void>
}

/** Waits until the runs of every one of `entries` ended. */
export const allEnded = (entries: ReadonlyArray<ActiveShard>): Effect.Effect<void> =>
  Effect.forEach(entries, (entry) => Deferred.await(entry.ended), { discard: true })

export const make = (options: {
  readonly podId: string
  /** The pod's own clock (`LeaseClock`). */
  readonly now: () => number
  /** How long a handover lets attempts in progress finish. */
  readonly drainMillis: number
  readonly listener: StopListener
}): ActiveShards => {
  const { podId, now, drainMillis, listener } = options
  const byShard = new Map<number, ActiveShard>()

  const lose = (shard: number, epoch: number, gently = false): Effect.Effect<void> =>
    Effect.suspend(() => {
      const entry = byShard.get(shard)
      if (entry?.epoch !== epoch || entry.stopped || (gently && entry.draining)) return Effect.void
      entry.draining = true
      entry.stoppingSince ??= now()
      if (!gently) entry.stopped = true
      return Effect.ensuring(
        Instrument.shardLost(
          gently ? listener.handOver(shard, drainMillis) : listener.lost(shard),
          podId,
          shard,
          epoch,
          gently
        ),
        Effect.sync(() => {
          if (byShard.get(shard) === entry) byShard.delete(shard)
          Deferred.doneUnsafe(entry.ended, Exit.void)
        })
      )
    })

  const loseAll = (why: string) =>
    Effect.suspend(() => {
      // Shards already being stopped (their runs may hang on a store that does not answer) are
      // not stopped, nor reported, again.
      const entries = [...byShard].filter(([, entry]) => !entry.stopped)
      if (entries.length === 0) return Effect.void
      return Effect.andThen(
        Effect.logWarning(`pod ${podId}: ${why}; stopping the runs of its ${entries.length} shard(s)`),
        Effect.forEach(entries, ([shard, { epoch }]) => lose(shard, epoch), {
          concurrency: "unbounded",
          discard: true
        })
      )
    })

  return {
    byShard,
    add: (shard, epoch) => {
      byShard.set(shard, {
        epoch,
        draining: false,
        stopped: false,
        refused: false,
        stoppingSince: undefined,
        ended: Deferred.makeUnsafe<void>()
      })
    },
    lose,
    loseAll
  }
}
