/**
 * How an activity is retried: exponential backoff with a cap on the delay and on the number of
 * attempts, and a predicate that tells transient typed failures from final ones.
 *
 * The effective policy of an activity is: the activity's own fields, else the engine's, else
 * `defaults`. Defects (unexpected errors) are retried like transient failures; typed failures are
 * retried while `retryWhile` returns true. When the policy gives up, the last outcome is recorded.
 *
 * `yieldAfter: n` is the talk's attempt-failed signal: after every n failed attempts in a row the
 * execution is suspended (like `Workflow.yieldExecution`) with the activity and its last error in
 * the reason, instead of retrying on; `WorkflowEngine.resume` continues with the next attempt.
 *
 * @example
 * ```ts
 * Activity.make("ship", Schema.String, ShippingError, {
 *   retry: { maxAttempts: 5, retryWhile: (e) => e._tag !== "OutOfStockError" }
 * })
 * ```
 */
import { Duration } from "effect"

/** A retry policy; every field is optional and falls back as described above. */
export interface RetryPolicy<E = unknown> {
  /** Attempts in total, including the first. `Infinity` retries forever. */
  readonly maxAttempts?: number | undefined
  /** Delay before the second attempt. */
  readonly initialDelay?: Duration.Input | undefined
  /** Multiplier applied to the delay after each failed attempt. */
  readonly factor?: number | undefined
  /** Upper bound of a single delay. */
  readonly maxDelay?: Duration.Input | undefined
  /** Whether a typed failure is transient (retry) or final (record it now). */
  readonly retryWhile?: ((error: E) => boolean) | undefined
  /**
   * After every `yieldAfter` failed attempts, suspend the execution (reason: the activity and its
   * last error) instead of retrying; `resume` goes on with the next attempt. Off by default.
   */
  readonly yieldAfter?: number | undefined
}

/** A policy with every field set. */
export interface ResolvedRetryPolicy {
  readonly maxAttempts: number
  readonly initialDelayMillis: number
  readonly factor: number
  readonly maxDelayMillis: number
  readonly retryWhile: (error: unknown) => boolean
  readonly yieldAfter: number | undefined
}

/** 10 attempts, 100 ms doubling up to 30 s, every typed failure transient. */
export const defaults: ResolvedRetryPolicy = {
  maxAttempts: 10,
  initialDelayMillis: 100,
  factor: 2,
  maxDelayMillis: 30_000,
  retryWhile: () => true,
  yieldAfter: undefined
}

/** Fills the fields missing from `policy` with those of `fallback`. */
export const resolve = (
  policy: RetryPolicy<any> | undefined,
  fallback: ResolvedRetryPolicy
): ResolvedRetryPolicy =>
  policy === undefined
    ? fallback
    : {
        maxAttempts: policy.maxAttempts ?? fallback.maxAttempts,
        initialDelayMillis:
          policy.initialDelay === undefined
            ? fallback.initialDelayMillis
            : Duration.toMillis(policy.initialDelay),
        factor: policy.factor ?? fallback.factor,
        maxDelayMillis:
          policy.maxDelay === undefined ? fallback.maxDelayMillis : Duration.toMillis(policy.maxDelay),
        retryWhile: policy.retryWhile ?? fallback.retryWhile,
        yieldAfter: policy.yieldAfter ?? fallback.yieldAfter
      }

/** The delay after failed attempt number `attempt` (1-based). */
export const delayAfter = (policy: ResolvedRetryPolicy, attempt: number): number =>
  Math.min(policy.maxDelayMillis, policy.initialDelayMillis * policy.factor ** (attempt - 1))
