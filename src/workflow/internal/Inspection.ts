/**
 * What the engine reports from stored rows: `status`, `list` and `history`, and the result (or
 * suspension) a caller of `send` gets for a settled execution.
 */
import { Effect, type Exit, Option } from "effect"
import {
  type AttemptRecord,
  type ExecutionRecord,
  type ExecutionStatus,
  isFinal,
  type StepRecord
} from "../DurableExecutionJournal.ts"
import type { Any } from "../Workflow.ts"
import { ExecutionSuspendedError, JournalDecodeError, SuspendReason } from "../WorkflowErrors.ts"
import { decodeJson, exitSchema, withoutExitEnvelope } from "./codec.ts"

/** What `status` reports about an execution. */
export interface ExecutionInfo {
  readonly executionId: string
  readonly workflow: string
  readonly status: ExecutionStatus
  /** Why it is suspended, when it is. */
  readonly suspendedBecause: Option.Option<SuspendReason>
  /** When a sleeping execution wakes (epoch ms). */
  readonly wakeAt: Option.Option<number>
  readonly interruptRequested: boolean
  readonly createdAt: number
  readonly updatedAt: number
}

/** One step of an execution, as `history` shows it. */
export interface StepInfo {
  readonly stepKey: string
  readonly activityId: string
  readonly seq: number
  /** The latest attempt started (1, 2, ...). */
  readonly attempts: number
  readonly startedAt: number
  readonly completedAt: Option.Option<number>
  /** `running` until an outcome is recorded; then whether it succeeded or failed. */
  readonly state: "running" | "succeeded" | "failed"
  /** The recorded outcome (the encoded `Exit`, JSON): the value, or the error / defect. */
  readonly outcome: Option.Option<unknown>
  /** The last heartbeat details (JSON), if the activity reported progress. */
  readonly heartbeat: Option.Option<unknown>
  /**
   * The attempts that failed and were retried, with their timing and failure (the encoded `Exit`).
   * Attempts cut short by a crash or a shutdown are not here: `attempts` counts them.
   */
  readonly failedAttempts: ReadonlyArray<{
    readonly attempt: number
    readonly startedAt: number
    readonly endedAt: number
    readonly failure: unknown
  }>
}

/** An execution and its steps. */
export interface ExecutionHistory {
  readonly execution: ExecutionInfo
  readonly steps: ReadonlyArray<StepInfo>
}

const parseJson = (text: string | null): Option.Option<unknown> => {
  if (text === null) return Option.none()
  try {
    return Option.some(JSON.parse(text))
  } catch {
    return Option.some(text)
  }
}

export const toStepInfo = (step: StepRecord, retried: ReadonlyArray<AttemptRecord>): StepInfo => {
  const outcome = parseJson(step.outcome)
  const failed = Option.isSome(outcome) && (outcome.value as { _tag?: unknown })?._tag === "Failure"
  return {
    stepKey: step.stepKey,
    activityId: step.activityId,
    seq: step.seq,
    attempts: step.attempt,
    startedAt: step.startedAt,
    completedAt: Option.fromNullishOr(step.completedAt),
    state: step.outcome === null ? "running" : failed ? "failed" : "succeeded",
    outcome,
    heartbeat: parseJson(step.heartbeat),
    failedAttempts: retried.map((a) => ({
      attempt: a.attempt,
      startedAt: a.startedAt,
      endedAt: a.endedAt,
      failure: Option.getOrUndefined(parseJson(a.outcome))
    }))
  }
}

/** The stored result (or suspension reason) of `row` does not decode at `path`. */
const storedRowError = (row: ExecutionRecord, path: string, detail: string) =>
  new JournalDecodeError({
    executionId: row.executionId,
    workflow: row.workflow,
    record: "result",
    activity: null,
    path,
    detail
  })

/** The stored suspension reason of a suspended row. */
export const decodeReason = (row: ExecutionRecord): Effect.Effect<SuspendReason, JournalDecodeError> =>
  decodeJson(SuspendReason, row.reason ?? "null").pipe(
    Effect.mapError((failure) =>
      storedRowError(row, failure.path, `(the stored suspension reason) ${failure.message}`)
    )
  )

/** A row as `status` and `list` report it. */
export const toInfo = (row: ExecutionRecord): ExecutionInfo => ({
  executionId: row.executionId,
  workflow: row.workflow,
  status: row.status,
  suspendedBecause:
    row.status === "suspended" ? Effect.runSync(Effect.option(decodeReason(row))) : Option.none(),
  wakeAt: Option.fromNullishOr(row.wakeAt),
  interruptRequested: row.interruptRequested,
  createdAt: row.createdAt,
  updatedAt: row.updatedAt
})

/** An execution's rows as `history` reports them. */
export const toHistory = (
  execution: ExecutionRecord,
  steps: ReadonlyArray<StepRecord>,
  attempts: ReadonlyArray<AttemptRecord>
): ExecutionHistory => ({
  execution: toInfo(execution),
  steps: steps.map((step) =>
    toStepInfo(
      step,
      attempts.filter((a) => a.stepKey === step.stepKey)
    )
  )
})

/**
 * What a caller of `send` gets for a settled row: the stored result of a final execution, decoded
 * with its workflow's schemas, or `ExecutionSuspendedError` with the stored reason.
 */
export const resultOf = (workflow: Any, row: ExecutionRecord): Effect.Effect<unknown, unknown> =>
  Effect.gen(function* () {
    if (isFinal(row.status)) {
      const exit = yield* decodeJson(
        exitSchema(workflow.request.success, workflow.request.failure),
        row.result ?? "null"
      ).pipe(
        Effect.mapError(withoutExitEnvelope),
        Effect.mapError((failure) => storedRowError(row, failure.path, failure.message))
      )
      // Decoded with Exit(success, failure) of this workflow.
      return yield* exit as Exit.Exit<unknown, unknown>
    }
    return yield* suspendedError(row, yield* decodeReason(row))
  })

/** The error `send` fails with for a suspended execution. */
export const suspendedError = (row: ExecutionRecord, reason: SuspendReason) =>
  new ExecutionSuspendedError({ executionId: row.executionId, workflow: row.workflow, reason })
