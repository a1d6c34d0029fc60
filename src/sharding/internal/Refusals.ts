/**
 * Writes of a pod's runs that were refused, and what the pod does about them: a write the store
 * refused (`fenced`: another pod owns the shard now) stops the shard's runs; a write the pod
 * withheld itself (`withheld`: `mayWrite` said no) stops every run when the lease ran out by the
 * pod's own clock. Each (shard, epoch) is reported once. Both are called from the runs' fibers,
 * synchronously: what they do runs in a fiber of its own, with the pod's services.
 */
import { type Context, Effect } from "effect"
import type { ActiveShards } from "./ActiveShards.ts"
import type { Lease } from "./Lease.ts"

export interface Refusals {
  /** The store refused a write of `shard` at `epoch`: stop the shard's runs now. */
  readonly fenced: (shard: number, epoch: number) => void
  /** A run of `shard` did not send a write at `epoch` because `mayWrite` said no. */
  readonly withheld: (shard: number, epoch: number) => void
}

export const make = (options: {
  readonly podId: string
  /** The caller's services (logger, clock): these run outside any fiber of the pod. */
  readonly context: Context.Context<never>
  readonly active: ActiveShards
  readonly lease: Lease
}): Refusals => {
  const { podId, context, active, lease } = options
  /** The (shard, epoch) pairs whose refusal was reported: once each. */
  const refusals = new Set<string>()

  return {
    fenced: (shard, epoch) => {
      const key = `${shard}@${epoch}`
      if (refusals.has(key)) return
      refusals.add(key)
      const entry = active.byShard.get(shard)
      const running = entry?.epoch === epoch && !entry.refused
      if (running) entry.refused = true
      Effect.runForkWith(context)(
        Effect.andThen(
          Effect.logWarning(
            `pod ${podId}: the store refused a write of shard ${shard} at epoch ${epoch}: another pod owns the shard now${running ? "; stopping its runs" : " (its runs had stopped already)"}`
          ),
          running ? active.lose(shard, epoch) : Effect.void
        )
      )
    },
    withheld: (shard, epoch) => {
      const lapsed = lease.lapsed()
      const entry = active.byShard.get(shard)
      // A run whose write was withheld stops. If the lease lapsed by the pod's own clock (it was
      // frozen or starved), a renewal may still succeed and keep the shard at the same epoch:
      // stop every run of the lapsed lease now, so that the shards the pod keeps are taken
      // again and their executions resumed, instead of left without a run.
      const running = lapsed && entry?.epoch === epoch && !entry.stopped
      const key = `withheld ${shard}@${epoch}`
      if (refusals.has(key) && !running) return
      refusals.add(key)
      const why = lapsed ? "its lease ran out by its own clock" : "it no longer owns the shard"
      Effect.runForkWith(context)(
        Effect.andThen(
          Effect.logWarning(
            `pod ${podId}: a write of shard ${shard} at epoch ${epoch} was refused before it was sent: ${why}; its runs record nothing more`
          ),
          running ? active.loseAll("its lease ran out by its own clock before a write") : Effect.void
        )
      )
    }
  }
}
