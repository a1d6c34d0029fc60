/**
 * Replays a stored execution against the current workflow code without running anything — the
 * check that a code change is safe for executions already running (Temporal calls it a replayer).
 *
 * The run replays every recorded step and applies the determinism rule (I7), exactly as a resume
 * after a deploy would; every fiber that reaches the journal's frontier (a step, sleep or signal
 * wait with nothing recorded) stops there instead of running an activity, and nothing is written.
 * It fails with the error that would suspend the execution in production: `NonDeterminismError`
 * (expected and actual step) when the code takes another path, `JournalDecodeError` when a
 * recorded value no longer decodes with the changed schemas.
 *
 * Tests usually call `WorkflowTest.replay` with an exported file; this module replays an execution
 * of any journal (read-only), e.g. of a production database before a deploy.
 *
 * @example
 * ```ts
 * const report = yield* WorkflowReplay.replay(Workflow.union(processPayment), "ProcessPayment@order-1")
 * ```
 */
import { Clock, Deferred, Effect, Option } from "effect"
import { DurableExecutionJournal } from "./DurableExecutionJournal.ts"
import { start as startRun } from "./internal/ExecutionRunner.ts"
import type { RunJournal } from "./internal/FencedJournal.ts"
import { defaults, resolve } from "./RetryPolicy.ts"
import { type Any, type Requirements, type WorkflowUnion, byTag as workflowsByTag } from "./Workflow.ts"
import {
  type ActivityResultError,
  ExecutionNotFoundError,
  type InvalidIdentifierError,
  type JournalDecodeError,
  type JournalError,
  type NonDeterminismError,
  UnknownWorkflowError
} from "./WorkflowErrors.ts"

/** What a successful replay saw. */
export interface ReplayReport {
  readonly executionId: string
  readonly workflow: string
  /** How many steps the journal recorded (all of them were asked for, in a compatible order). */
  readonly recordedSteps: number
  /**
   * `completed`: the body ran to its end on recorded outcomes; `frontier`: it stopped where the
   * journal ends (the execution was still in progress); `suspended`: it yielded as recorded.
   */
  readonly ended: "completed" | "frontier" | "suspended"
}

/** Why a replay failed: what would suspend the execution after a deploy of this code. */
export type ReplayError =
  | NonDeterminismError
  | JournalDecodeError
  | ActivityResultError
  | UnknownWorkflowError
  | ExecutionNotFoundError
  | InvalidIdentifierError
  | JournalError

/** Replays the execution `executionId` of the journal in context against `workflows`. */
export const replay = <W extends Any>(
  workflows: WorkflowUnion<W> | W,
  executionId: string
): Effect.Effect<ReplayReport, ReplayError, DurableExecutionJournal | Requirements<W>> =>
  Effect.gen(function* () {
    const byTag: ReadonlyMap<string, Any> = workflowsByTag(workflows)
    const stored = yield* DurableExecutionJournal
    const found = yield* stored.get(executionId)
    if (Option.isNone(found)) return yield* new ExecutionNotFoundError({ executionId })
    const row = found.value
    const workflow = byTag.get(row.workflow)
    if (workflow === undefined) {
      return yield* new UnknownWorkflowError({
        workflow: row.workflow,
        executionId,
        message: `no workflow given to replay handles "${row.workflow}" (execution ${executionId})`
      })
    }
    const recordedSteps = (yield* stored.steps(executionId)).length
    // The run sees the execution as running (whatever its status: a final one replays too), reads
    // the stored steps, and writes nothing.
    const asRunning = { ...row, status: "running" as const, interruptRequested: false }
    const journal: RunJournal = {
      ...stored,
      get: (id) => Effect.succeed(id === executionId ? Option.some(asRunning) : Option.none()),
      write: () => Effect.void,
      heartbeat: () => Effect.void,
      signal: () => Effect.succeed(false)
    }
    const clock = yield* Clock.Clock
    const services = yield* Effect.context<Requirements<W>>()
    const noChildren = Effect.die(new Error("a replay never starts a child workflow"))
    const handle = yield* startRun(
      {
        journal,
        retryPolicy: resolve(undefined, defaults),
        now: () => clock.currentTimeMillisUnsafe(),
        isGracefulShutdown: () => false,
        children: { start: () => noChildren, settled: () => noChildren, interrupt: () => noChildren },
        replayOnly: true
      },
      workflow,
      asRunning,
      undefined,
      services,
      () => {}
    )
    const outcome = yield* Deferred.await(handle.outcome)
    const report = (ended: ReplayReport["ended"]): ReplayReport => ({
      executionId,
      workflow: row.workflow,
      recordedSteps,
      ended
    })
    switch (outcome._tag) {
      case "Completed":
        return report("completed")
      case "Stopped":
      case "Sleeping":
      case "Stale":
        return report("frontier")
      case "Failed":
        return yield* outcome.error
      case "Suspended":
        return outcome.reason._tag === "ExecutionYielded" ? report("suspended") : yield* outcome.reason
    }
  })
