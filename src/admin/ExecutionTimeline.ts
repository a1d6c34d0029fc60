/**
 * An execution as an operator reads it: its row (status, request, result or error, why it is
 * suspended, when it wakes) and every attempt of every step, in order, with its start, end,
 * duration and outcome — including attempts cut short by a crash or a shutdown, which recorded no
 * outcome. Built from the stored rows only (`fromJournal`), so it shows the same thing whichever
 * engine, process or pod ran the execution, and whether one runs now or not.
 */

import { parseStored } from "../internal/codec.ts"
import type {
  AttemptRecord,
  ExecutionRecord,
  ExecutionStatus,
  StepRecord
} from "../workflow/DurableExecutionJournal.ts"
import type { ExecutionJournal } from "../workflow/JournalExport.ts"

/** A failure as stored (an encoded `Cause`): a one-line summary and the cause itself (JSON). */
export interface ErrorView {
  /** One line: the error's tag and message, or the defect, or "interrupted". */
  readonly summary: string
  /** The encoded cause, as stored (JSON value). */
  readonly cause: unknown
}

/** Why an execution is suspended: the stored error's tag and message. */
export interface SuspensionView {
  readonly tag: string
  readonly message: string
  /** The stored reason (JSON value). */
  readonly reason: unknown
}

/** An execution's row, decoded for reading. */
export interface ExecutionView {
  readonly executionId: string
  readonly workflow: string
  readonly status: ExecutionStatus
  /** The encoded request (JSON value). */
  readonly request: unknown
  /** Once succeeded: the result (JSON value). */
  readonly result: unknown
  /** Once failed (or interrupted): the error with its cause. */
  readonly error: ErrorView | null
  /** While suspended: why. */
  readonly suspension: SuspensionView | null
  /** While sleeping: when the timer wakes it (epoch ms; null: until a signal). */
  readonly wakeAt: number | null
  readonly interruptRequested: boolean
  readonly createdAt: number
  readonly updatedAt: number
}

/**
 * How an attempt ended: `succeeded` / `failed` (the step's recorded outcome), `retried` (it failed
 * and the step ran again), `suspended` (the latest attempt of a suspended execution: it recorded
 * nothing, and the execution waits for a resume), `cut-short` (it recorded nothing: the process
 * crashed or shut down, or the execution was suspended, and a later attempt ran or the execution
 * stopped), `running` (no outcome yet, the execution runs).
 */
export type AttemptOutcome = "succeeded" | "failed" | "retried" | "suspended" | "cut-short" | "running"

/** One attempt of a step. Times are epoch ms; null where the journal does not know them. */
export interface AttemptView {
  readonly attempt: number
  readonly startedAt: number | null
  readonly endedAt: number | null
  readonly durationMillis: number | null
  readonly outcome: AttemptOutcome
  /** `succeeded`: the value (JSON). */
  readonly value: unknown
  /** `failed` or `retried`: the error. */
  readonly error: ErrorView | null
}

/**
 * What a step is: an `activity`, a `signal` wait, a `child` workflow, or a `local` value the
 * workflow recorded (`Workflow.now`, `random`, `sleep`'s deadline, `version`, a signal's deadline).
 */
export type StepKind = "activity" | "signal" | "child" | "local"

/** One step (an occurrence of an activity) and its attempts. */
export interface StepView {
  readonly stepKey: string
  readonly activityId: string
  readonly seq: number
  readonly kind: StepKind
  readonly attempts: ReadonlyArray<AttemptView>
  /** The last details an attempt reported with `Activity.heartbeat` (JSON), null if none. */
  readonly heartbeat: unknown
}

/** An execution and its steps in order. */
export interface ExecutionTimeline {
  readonly execution: ExecutionView
  readonly steps: ReadonlyArray<StepView>
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/** One line for a stored error value: `Tag: message` or `Tag {fields}`. */
const describeError = (error: unknown): string => {
  if (!isRecord(error)) return typeof error === "string" ? error : JSON.stringify(error)
  const tag = typeof error._tag === "string" ? error._tag : undefined
  const message = typeof error.message === "string" ? error.message : undefined
  if (tag !== undefined && message !== undefined) return `${tag}: ${message}`
  if (tag !== undefined) {
    const { _tag: _, ...fields } = error
    return Object.keys(fields).length === 0 ? tag : `${tag} ${JSON.stringify(fields)}`
  }
  return message ?? JSON.stringify(error)
}

/** The summary of an encoded cause (effect's `Cause` JSON: an array of reasons). */
const describeCause = (cause: unknown): string => {
  const reasons = Array.isArray(cause) ? cause : [cause]
  const lines = reasons.map((reason) => {
    if (!isRecord(reason)) return JSON.stringify(reason)
    switch (reason._tag) {
      case "Fail":
        return describeError(reason.error)
      case "Die":
        return `defect: ${describeError(reason.defect)}`
      case "Interrupt":
        return "interrupted"
      default:
        return JSON.stringify(reason)
    }
  })
  return lines.length === 0 ? "(empty cause)" : lines.join("; ")
}

/** The error of an encoded `Exit` (JSON value), or null for a success. */
export const errorOfExit = (exit: unknown): ErrorView | null =>
  isRecord(exit) && exit._tag === "Failure" ? { summary: describeCause(exit.cause), cause: exit.cause } : null

const valueOfExit = (exit: unknown): unknown =>
  isRecord(exit) && exit._tag === "Success" ? exit.value : null

/** The stored suspension reason of a row, for reading. */
const suspensionOf = (row: ExecutionRecord): SuspensionView | null => {
  if (row.status !== "suspended") return null
  const reason = parseStored(row.reason)
  const tag = isRecord(reason) && typeof reason._tag === "string" ? reason._tag : "Suspended"
  return { tag, message: describeError(reason), reason }
}

/** An execution's row, decoded for reading. */
export const executionView = (row: ExecutionRecord): ExecutionView => {
  const exit = parseStored(row.result)
  return {
    executionId: row.executionId,
    workflow: row.workflow,
    status: row.status,
    request: parseStored(row.request),
    result: row.status === "succeeded" ? valueOfExit(exit) : null,
    error: row.result === null ? null : errorOfExit(exit),
    suspension: suspensionOf(row),
    wakeAt: row.wakeAt,
    interruptRequested: row.interruptRequested,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt
  }
}

/** What a step key says about the step. */
export const kindOf = (stepKey: string): StepKind =>
  stepKey.startsWith("effect-cluster/signal/")
    ? "signal"
    : stepKey.startsWith("effect-cluster/child/")
      ? "child"
      : stepKey.startsWith("effect-cluster/")
        ? "local"
        : "activity"

const duration = (startedAt: number | null, endedAt: number | null): number | null =>
  startedAt === null || endedAt === null ? null : endedAt - startedAt

/**
 * The attempts of a step. The journal knows: the step's first start (`startedAt`), the latest
 * attempt's number and start (`attemptStartedAt`, from schema 10 on), its outcome and when it was
 * recorded, and every attempt that failed and was retried (with its times). Any other attempt
 * before the latest recorded nothing: it was cut short by a crash or a shutdown; its start is known
 * only when it was the first.
 */
const attemptsOf = (
  step: StepRecord,
  retried: ReadonlyArray<AttemptRecord>,
  status: ExecutionStatus
): Array<AttemptView> => {
  const views: Array<AttemptView> = []
  for (let attempt = 1; attempt <= step.attempt; attempt++) {
    const failed = retried.find((a) => a.attempt === attempt)
    if (failed !== undefined) {
      views.push({
        attempt,
        startedAt: failed.startedAt,
        endedAt: failed.endedAt,
        durationMillis: duration(failed.startedAt, failed.endedAt),
        outcome: "retried",
        value: null,
        error: errorOfExit(parseStored(failed.outcome))
      })
      continue
    }
    const startedAt =
      attempt === step.attempt && step.attemptStartedAt != null
        ? step.attemptStartedAt
        : attempt === 1
          ? step.startedAt
          : null
    if (attempt < step.attempt) {
      views.push({
        attempt,
        startedAt,
        endedAt: null,
        durationMillis: null,
        outcome: "cut-short",
        value: null,
        error: null
      })
      continue
    }
    if (step.outcome === null) {
      views.push({
        attempt,
        startedAt,
        endedAt: null,
        durationMillis: null,
        outcome: status === "running" ? "running" : status === "suspended" ? "suspended" : "cut-short",
        value: null,
        error: null
      })
      continue
    }
    const exit = parseStored(step.outcome)
    const error = errorOfExit(exit)
    views.push({
      attempt,
      startedAt,
      endedAt: step.completedAt,
      durationMillis: duration(startedAt, step.completedAt),
      outcome: error === null ? "succeeded" : "failed",
      value: error === null ? valueOfExit(exit) : null,
      error
    })
  }
  return views
}

/** The timeline of an exported journal (`engine.exportJournal`, `Admin.exportJournal`). */
export const fromJournal = (
  journal: Pick<ExecutionJournal, "execution" | "steps" | "attempts">
): ExecutionTimeline => ({
  execution: executionView(journal.execution),
  steps: journal.steps.map((step) => ({
    stepKey: step.stepKey,
    activityId: step.activityId,
    seq: step.seq,
    kind: kindOf(step.stepKey),
    attempts: attemptsOf(
      step,
      journal.attempts.filter((a) => a.stepKey === step.stepKey),
      journal.execution.status
    ),
    heartbeat: parseStored(step.heartbeat)
  }))
})
