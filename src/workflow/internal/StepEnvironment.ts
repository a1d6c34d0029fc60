/** What a step of an execution needs from its engine (see `Steps`). */
import type { Effect } from "effect"
import type { ExecutionRecord, Fence } from "../DurableExecutionJournal.ts"
import type { ResolvedRetryPolicy } from "../RetryPolicy.ts"
import type { Any } from "../Workflow.ts"
import type { RunJournal } from "./FencedJournal.ts"

/**
 * What a step needs from its engine. The journal given here already retries transient storage
 * faults; an error that still escapes it stops the run (the execution stays `running`).
 */
export interface StepEnvironment {
  readonly journal: RunJournal
  /** The shard and epoch this run writes with (null: unfenced, one process runs every shard). */
  readonly fence?: Fence | null | undefined
  readonly retryPolicy: ResolvedRetryPolicy
  /** The engine's clock, read synchronously on the hot path. */
  readonly now: () => number
  /** The engine's side of child workflows. */
  readonly children: ChildHooks
}

/** What a parent execution needs from its engine to run a child workflow. */
export interface ChildHooks {
  /** Starts the child execution of `request` (or attaches to it); returns its id. */
  readonly start: (workflow: Any, request: { readonly _tag: string }) => Effect.Effect<string, unknown>
  /** Waits until the execution is final or suspended, and returns its row. */
  readonly settled: (executionId: string) => Effect.Effect<ExecutionRecord, unknown>
  /** Interrupts the execution (its compensations run) and waits for it. */
  readonly interrupt: (executionId: string) => Effect.Effect<void, unknown>
}
