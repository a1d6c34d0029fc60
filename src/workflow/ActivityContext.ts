/**
 * What an activity's body can know about the attempt it runs in.
 *
 * Provided by the engine around every attempt; read it with `Activity.persistenceId` and
 * `Activity.attempt`.
 */
import { Context, type Effect } from "effect"
import type { Fence } from "./DurableExecutionJournal.ts"

/** The running attempt of an activity. */
export class ActivityContext extends Context.Service<
  ActivityContext,
  {
    /** The activity id given to `Activity.make`. */
    readonly activityId: string
    /**
     * `executionId/stepKey`: the same on every attempt and every replay of this step of this
     * execution, different for every other step. Use it as an idempotency key.
     */
    readonly persistenceId: string
    /** 1 for the first attempt, then 2, 3, ... across retries and process restarts. */
    readonly attempt: number
    /** Reports progress (JSON text): resets the heartbeat timeout, kept for the next attempt. */
    readonly heartbeat: (details: string) => Effect.Effect<void>
    /** The last details reported by this step's earlier attempts (JSON text), if any. */
    readonly lastHeartbeat: string | null
    /**
     * The fencing token of this attempt: the execution's shard and the epoch at which this pod
     * owns it (null when one process runs every shard). The epoch only grows: an external system
     * that remembers the highest epoch it saw per shard can refuse a write from a pod that lost
     * the shard but has not noticed yet.
     */
    readonly fence: Fence | null
  }
>()("effect-cluster/workflow/ActivityContext") {}
