/**
 * What an activity's body can know about the attempt it runs in.
 *
 * Provided by the engine around every attempt; read it with `Activity.persistenceId` and
 * `Activity.attempt`.
 */
import { Context, type Effect } from "effect"

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
  }
>()("effect-cluster/workflow/ActivityContext") {}
