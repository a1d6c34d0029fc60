/**
 * How a pod joins the cluster: its first calls to the store (`init`, `register`) wait for a store
 * that does not answer yet (a server restarting, a full disk) or a lock held, with backoff up to
 * 5 s and a warning each time; any other error fails the start.
 *
 * Registering waits, besides, for an earlier process of the pod's id that may still be running
 * (`suspect`: on PostgreSQL its session ended while its lease runs), for as long as that lease
 * lasts or until that process is proven stopped (`evictIfStopped`, see `Suspects.ts`).
 */
import { Duration, Effect, Schedule, Scope } from "effect"
import { type DuplicatePodError, ShardStoreError } from "../ShardingErrors.ts"
import type { PodRecord, ShardStore } from "../ShardStore.ts"

/** What registering needs: the store, who registers, and how it waits. */
export interface Registrant {
  readonly store: ShardStore["Service"]
  readonly podId: string
  readonly ttl: number
  readonly interval: number
  /** The address the pod's network listener advertises, if it listens. */
  readonly address: string | undefined
  /** Removes an earlier process of this pod id from the store if it is proven stopped. */
  readonly evictIfStopped: ((pod: PodRecord) => Effect.Effect<boolean>) | undefined
}

/** Whether a store operation gave up waiting for a lock another pod holds (`ShardStoreError.busy`). */
export const isBusy = (error: unknown): boolean => error instanceof ShardStoreError && error.busy === true

/** Whether a store operation failed for a passing reason (a busy lock included): worth retrying. */
const isTransient = (error: unknown): boolean =>
  error instanceof ShardStoreError && (error.transient || error.busy === true)

const JOIN_BACKOFF_MAX = Duration.seconds(5)

/** Joining's backoff: from the pod's round interval, doubling, at most 5 s apart. */
const joinBackoff = (interval: number) =>
  Schedule.exponential(interval).pipe(
    Schedule.modifyDelay(({ duration }) => Effect.succeed(Duration.min(duration, JOIN_BACKOFF_MAX)))
  )

/**
 * Runs `effect` (the pod's `what`) until the store answers: a transient failure or a busy lock is
 * tried again with backoff, warned about unless it was a lock; any other error fails.
 */
export const joining = <A, E>(
  podId: string,
  interval: number,
  what: string,
  effect: Effect.Effect<A, E>
): Effect.Effect<A, E> =>
  effect.pipe(
    Effect.tapError((error) =>
      isTransient(error) && !isBusy(error)
        ? Effect.logWarning(`pod ${podId}: ${what} failed; trying again until the store answers`, error)
        : Effect.void
    ),
    Effect.retry({ while: isTransient, schedule: joinBackoff(interval) })
  )

/**
 * Registers the pod, its marker held in `into`; returns the registration's `registeredAt`. An
 * earlier process of this pod id that may still be running (`suspect`: on PostgreSQL its session
 * ended while its lease runs; most often the process this one replaces, SIGKILLed a moment ago)
 * makes the store answer busy: the pod waits for it as long as its lease lasts, whatever this
 * pod's own TTL, trying again every interval (not `joining`'s backoff: it joins within an interval
 * of that lease's end), unless it is proven stopped first (`evictIfStopped`: nothing listens at
 * its address on this host any more, or it stood down when asked) and evicted. Other failures are
 * `joining`'s.
 */
export const register = (
  registrant: Registrant,
  into: Scope.Scope
): Effect.Effect<number, DuplicatePodError | ShardStoreError> => {
  const { store, podId, ttl, interval, evictIfStopped } = registrant
  /** The earlier registration this one waits for, once it said so. */
  let waitingFor: number | undefined
  const attempt: Effect.Effect<number, DuplicatePodError | ShardStoreError> = Effect.catchIf(
    Scope.provide(store.register(podId, ttl, registrant.address), into),
    isBusy,
    (error) =>
      Effect.gen(function* () {
        const pods = yield* Effect.option(store.pods)
        const earlier =
          pods._tag === "Some"
            ? pods.value.find((pod) => pod.podId === podId && pod.liveness === "suspect")
            : undefined
        if (earlier === undefined) return yield* error
        if (waitingFor !== earlier.registeredAt) {
          waitingFor = earlier.registeredAt
          yield* Effect.logInfo(
            `pod ${podId}: an earlier process of this pod id lost its store session and may still be running until its lease ends (${earlier.leaseUntil}, store clock): waiting for that, or for a proof that it stopped`
          )
        }
        if (evictIfStopped !== undefined && (yield* evictIfStopped(earlier))) {
          yield* Effect.logInfo(`pod ${podId}: the earlier process of this pod id has stopped: joining now`)
          return yield* attempt
        }
        yield* Effect.sleep(interval)
        return yield* attempt
      })
  )
  return joining(podId, interval, "registering", attempt)
}
