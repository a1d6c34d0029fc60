/**
 * What the engine does with one execution, wherever its shard is owned: store a start (I4), run it
 * here when this pod owns its shard or leave an entry in the owner's inbox, wait for its result
 * (from a run here, or from the pod that runs it), resume, wake, signal and interrupt it.
 *
 * `WorkflowEngine.makeScoped` builds one `Executions` per engine and wires it to the engine's
 * runs, timer, pod transport and result waiters; the engine's public operations call it.
 */
import { Deferred, Effect, Option, Result, type Scope } from "effect"
import type { PodTransport } from "../../sharding/PodTransport.ts"
import {
  type ExecutionRecord,
  type InboxEntry,
  isFinal,
  type StatusChange
} from "../DurableExecutionJournal.ts"
import type { ExecutionJournal } from "../JournalExport.ts"
import type { Signal } from "../Signal.ts"
import type { Any } from "../Workflow.ts"
import {
  ExecutionIdConflictError,
  ExecutionNotFoundError,
  type InvalidIdentifierError,
  InvalidRequestError,
  InvalidSignalError,
  type JournalError,
  PayloadTooLargeError,
  SuspendReason,
  UnknownWorkflowError
} from "../WorkflowErrors.ts"
import { Admission } from "./Admission.ts"
import { encodeJson, encodeJsonResult } from "./codec.ts"
import type { DurableTimer } from "./DurableTimer.ts"
import type { RunHandle } from "./ExecutionRunner.ts"
import type { RunJournal } from "./FencedJournal.ts"
import { resultOf, suspendedError } from "./Inspection.ts"
import { invalidIdentifier } from "./identifier.ts"
import type { Ownership } from "./Ownership.ts"
import { isSettled, type RemoteResults } from "./RemoteResults.ts"
import type { Runs } from "./Runs.ts"
import type { WakeWaiters } from "./WakeWaiters.ts"

/** A start stored: its workflow, its row, the request object if this call created it. */
export interface Started {
  readonly workflow: Any
  readonly execution: ExecutionRecord
  readonly freshRequest: unknown
  /** Another pod owns the shard and the start left an entry in its inbox. */
  readonly notified: boolean
}

/** Why a start was refused. */
export type StartError =
  | UnknownWorkflowError
  | InvalidRequestError
  | PayloadTooLargeError
  | ExecutionIdConflictError
  | InvalidIdentifierError
  | JournalError

/** What `Executions` works with; the engine's parts, some of them built after it. */
export interface ExecutionsOptions {
  readonly byTag: ReadonlyMap<string, Any>
  readonly journal: RunJournal
  readonly runs: Runs
  readonly remote: RemoteResults
  readonly wakes: WakeWaiters
  /** The pods' hints (inbox entries, settlements), if any. */
  readonly transport: PodTransport["Service"] | undefined
  readonly now: () => number
  /** The engine's current view of ownership (it changes when the pod joins its cluster). */
  readonly ownership: () => Ownership
  readonly shuttingDown: () => boolean
  /** The engine's durable timer (built after, since it wakes executions through this). */
  readonly timer: () => DurableTimer
  /** The engine's scope: interruptions requested through an inbox run in it. */
  readonly scope: Scope.Scope
  /** Starts admitted at once (default `ADMITTED`). */
  readonly admitted?: number | undefined
  /** The largest encoded request or signal value accepted, in bytes (default `MAX_PAYLOAD_BYTES`). */
  readonly maxPayloadBytes?: number | undefined
}

/**
 * Starts admitted at once by default: enough to keep the journal's group commit and the runs'
 * loading busy, few enough that their memory and the work of completing them stay small.
 */
export const ADMITTED = 512

/** The default of `maxPayloadBytes`: 1 MiB. */
export const MAX_PAYLOAD_BYTES = 1024 * 1024

/** The UTF-8 size of `json` when it is over `limit` bytes; undefined otherwise. */
const bytesOver = (json: string, limit: number): number | undefined => {
  // A UTF-16 code unit is at most 3 bytes of UTF-8: count the bytes only near the limit.
  if (json.length * 3 <= limit) return undefined
  const bytes = Buffer.byteLength(json)
  return bytes > limit ? bytes : undefined
}

/**
 * Checks an identifier at the engine's boundary (see `identifier.ts`): the same typed error on
 * every backend for an id the journal could not store alike.
 */
export const checkIdentifier = (
  kind: InvalidIdentifierError["kind"],
  value: string,
  workflow: string | null
): Effect.Effect<void, InvalidIdentifierError> => {
  const error = invalidIdentifier(kind, value, workflow)
  return error === undefined ? Effect.void : Effect.fail(error)
}

export class Executions {
  private readonly options: ExecutionsOptions
  /** Starts admitted at once (see `Admission`). */
  private readonly admission: Admission

  constructor(options: ExecutionsOptions) {
    this.options = options
    this.admission = new Admission(options.admitted ?? ADMITTED)
  }

  /** Whether this engine runs the shard of `executionId` now. */
  readonly owns = (executionId: string): boolean => {
    const ownership = this.options.ownership()
    return ownership.runFence(ownership.shardOf(executionId)) !== undefined
  }

  /** After a write that left an inbox entry for `shard` committed: wake its owner now. */
  private announce(shard: number | undefined): Effect.Effect<void> {
    const transport = this.options.transport
    return transport === undefined || shard === undefined ? Effect.void : transport.announce(shard)
  }

  /** Validates and durably stores the start of `request`; returns its workflow and stored row. */
  readonly start = (request: { readonly _tag: string }): Effect.Effect<Started, StartError> =>
    Effect.suspend((): Effect.Effect<Started, StartError> => {
      const workflow = this.options.byTag.get(request._tag)
      if (workflow === undefined) {
        return Effect.fail(new UnknownWorkflowError({ workflow: request._tag, executionId: "" }))
      }
      const encoded = encodeJsonResult(workflow.request, request)
      if (Result.isFailure(encoded)) {
        const { path, message } = encoded.failure
        return Effect.fail(new InvalidRequestError({ workflow: workflow.tag, path, detail: message }))
      }
      const limit = this.options.maxPayloadBytes ?? MAX_PAYLOAD_BYTES
      const bytes = bytesOver(encoded.success, limit)
      if (bytes !== undefined) {
        return Effect.fail(
          new PayloadTooLargeError({ payload: "request", payloadOf: workflow.tag, bytes, limit })
        )
      }
      const executionId = workflow.executionId(request)
      const invalid = invalidIdentifier("execution id", executionId, workflow.tag)
      if (invalid !== undefined) return Effect.fail(invalid)
      const ownership = this.options.ownership()
      const shard = ownership.shardOf(executionId)
      // Another pod owns the shard: the start leaves an entry in its inbox in the same transaction.
      const notified = ownership.runFence(shard) === undefined
      const stored = this.options.journal.start({
        executionId,
        workflow: workflow.tag,
        request: encoded.success,
        shard,
        notify: notified,
        now: this.options.now()
      })
      return Effect.flatMap(stored, ({ created, execution }) =>
        execution.workflow !== workflow.tag
          ? Effect.fail(
              new ExecutionIdConflictError({
                executionId,
                workflow: workflow.tag,
                existingWorkflow: execution.workflow
              })
            )
          : // A new execution runs with the request object itself: nothing to decode or load.
            Effect.as(this.announce(notified && created ? shard : undefined), {
              workflow,
              execution,
              freshRequest: created ? request : undefined,
              notified
            })
      )
    })

  /**
   * Runs `row` here if this engine owns its shard; otherwise makes sure the owner hears of it
   * (unless the start already told it, `notified`).
   */
  readonly runOrTell = (
    workflow: Any,
    row: ExecutionRecord,
    freshRequest: unknown,
    notified: boolean
  ): Effect.Effect<RunHandle | undefined, JournalError> =>
    Effect.flatMap(this.options.runs.ensure(workflow, row, freshRequest), (handle) =>
      handle !== undefined || notified
        ? Effect.succeed(handle)
        : Effect.as(this.tellOwner(row.executionId), undefined)
    )

  /** Leaves an entry in the inbox of the shard of `executionId`, for its owner. */
  private tellOwner(executionId: string): Effect.Effect<void, JournalError> {
    return Effect.suspend(() => {
      const shard = this.options.ownership().shardOf(executionId)
      return Effect.andThen(
        this.options.journal.write({ executionId, outcomes: [], notify: shard, now: this.options.now() }),
        this.announce(shard)
      )
    })
  }

  /** Stores a status change; from a pod that does not own the shard, with an entry for its owner. */
  readonly changeStatus = (executionId: string, status: StatusChange): Effect.Effect<void, JournalError> =>
    Effect.suspend(() => {
      const ownership = this.options.ownership()
      const shard = ownership.shardOf(executionId)
      const notify = ownership.runFence(shard) === undefined ? shard : undefined
      return Effect.andThen(
        this.options.journal.write({ executionId, outcomes: [], status, notify, now: this.options.now() }),
        this.announce(notify)
      )
    })

  /** Suspends an execution whose workflow this engine does not know. */
  private suspendUnknown(row: ExecutionRecord): Effect.Effect<void, JournalError> {
    return Effect.gen({ self: this }, function* () {
      const error = new UnknownWorkflowError({ workflow: row.workflow, executionId: row.executionId })
      yield* Effect.logWarning(error.message)
      const reason = yield* encodeJson(SuspendReason, error).pipe(Effect.orDie)
      yield* this.changeStatus(row.executionId, { _tag: "Suspend", reason })
    })
  }

  /** Starts a run for a `running` row of a shard this engine owns, whose workflow may be unknown. */
  readonly startRow = (row: ExecutionRecord): Effect.Effect<RunHandle | undefined, JournalError> => {
    const workflow = this.options.byTag.get(row.workflow)
    if (workflow !== undefined) return this.options.runs.ensure(workflow, row)
    return this.owns(row.executionId)
      ? Effect.as(this.suspendUnknown(row), undefined)
      : Effect.succeed(undefined)
  }

  /** Waits for `row` to be final and returns its result, decoded with the workflow's schemas. */
  readonly awaitResult = (
    workflow: Any,
    row: ExecutionRecord,
    freshRequest: unknown,
    notified: boolean
  ): Effect.Effect<unknown, unknown> => {
    if (row.status === "sleeping") return this.afterWake(workflow, row.executionId)
    if (row.status !== "running") return resultOf(workflow, row)
    return Effect.flatMap(this.runOrTell(workflow, row, freshRequest, notified), (handle) =>
      this.awaitRun(workflow, row, handle)
    )
  }

  /**
   * A `send`: stores the start of `request` once admitted (see `Admission`), starts its run here
   * (or tells the owner), and waits for its result, without holding the admission meanwhile.
   */
  readonly send = (request: { readonly _tag: string }): Effect.Effect<unknown, unknown> =>
    Effect.flatMap(this.admitted(request), ({ started, handle }) => {
      const row = started.execution
      if (row.status !== "running") return this.awaitResult(started.workflow, row, undefined, true)
      return this.awaitRun(started.workflow, row, handle)
    })

  /** A `sendDiscard`: stores the start once admitted and makes sure the execution runs. */
  readonly sendDiscard = (request: { readonly _tag: string }): Effect.Effect<string, StartError> =>
    Effect.map(this.admitted(request), ({ started }) => started.execution.executionId)

  /**
   * The admitted part of a start: stored; for a running execution, its run started here and its
   * journal loaded (or its owner told).
   */
  private admitted(request: {
    readonly _tag: string
  }): Effect.Effect<{ readonly started: Started; readonly handle: RunHandle | undefined }, StartError> {
    type Admitted = { readonly started: Started; readonly handle: RunHandle | undefined }
    return this.admission.admit(
      Effect.flatMap(this.start(request), (started): Effect.Effect<Admitted, StartError> => {
        const { workflow, execution, freshRequest, notified } = started
        if (execution.status !== "running") return Effect.succeed({ started, handle: undefined })
        return Effect.flatMap(
          this.runOrTell(workflow, execution, freshRequest, notified),
          (handle): Effect.Effect<Admitted, StartError> =>
            handle === undefined
              ? Effect.succeed({ started, handle })
              : Effect.as(Deferred.await(handle.state.loaded), { started, handle })
        )
      })
    )
  }

  /** Waits for the run `handle` of `row` (none: another pod runs it) and returns the result. */
  private awaitRun(
    workflow: Any,
    row: ExecutionRecord,
    handle: RunHandle | undefined
  ): Effect.Effect<unknown, unknown> {
    return handle === undefined
      ? this.remoteResult(workflow, row.executionId)
      : Effect.flatMap(Deferred.await(handle.outcome), (outcome): Effect.Effect<unknown, unknown> => {
          switch (outcome._tag) {
            case "Completed":
              return outcome.exit
            case "Suspended":
              return Effect.fail(suspendedError(row, outcome.reason))
            case "Stopped":
              // Stopped because the shard moved to another pod: its result arrives from there.
              return this.options.shuttingDown()
                ? Effect.interrupt
                : this.remoteResult(workflow, row.executionId)
            case "Failed":
              return Effect.fail(outcome.error)
            case "Sleeping":
              return this.afterWake(workflow, row.executionId)
            case "Stale":
              // The execution finished or was suspended before the run started: read it again.
              return Effect.flatMap(this.getRow(row.executionId), (latest) =>
                latest.status === "running"
                  ? Effect.interrupt
                  : this.awaitResult(workflow, latest, undefined, true)
              )
          }
        })
  }

  /** The result of an execution another pod runs, once it is final (or suspended). */
  private remoteResult(workflow: Any, executionId: string): Effect.Effect<unknown, unknown> {
    return Effect.flatMap(this.options.remote.settled(executionId), (row) => resultOf(workflow, row))
  }

  /** Waits until the execution wakes and then for its result (from another pod if it runs there). */
  private afterWake(workflow: Any, executionId: string): Effect.Effect<unknown, unknown> {
    return this.owns(executionId)
      ? Effect.andThen(
          this.options.wakes.wait(executionId),
          Effect.flatMap(this.getRow(executionId), (latest) =>
            this.awaitResult(workflow, latest, undefined, true)
          )
        )
      : this.remoteResult(workflow, executionId)
  }

  /** Waits until `executionId` is final or suspended (running it here if this pod owns it); its row. */
  readonly settledRow = (executionId: string): Effect.Effect<ExecutionRecord, unknown> =>
    Effect.flatMap(this.getRow(executionId), (row): Effect.Effect<ExecutionRecord, unknown> => {
      if (isSettled(row)) return Effect.succeed(row)
      if (!this.owns(executionId)) return this.options.remote.settled(executionId)
      if (row.status === "sleeping") {
        return Effect.andThen(this.options.wakes.wait(executionId), this.settledRow(executionId))
      }
      return Effect.flatMap(this.resumeRow(row), (handle) =>
        Option.isSome(handle)
          ? Effect.andThen(Deferred.await(handle.value.outcome), this.settledRow(executionId))
          : this.settledRow(executionId)
      )
    })

  /** The stored row of `executionId`, or `ExecutionNotFoundError`. */
  readonly getRow = (
    executionId: string
  ): Effect.Effect<ExecutionRecord, ExecutionNotFoundError | InvalidIdentifierError | JournalError> =>
    Effect.flatMap(
      Effect.andThen(
        checkIdentifier("execution id", executionId, null),
        this.options.journal.get(executionId)
      ),
      (row) =>
        Option.match(row, {
          onNone: () => Effect.fail(new ExecutionNotFoundError({ executionId })),
          onSome: Effect.succeed
        })
    )

  /**
   * Makes sure a non-final execution runs: a suspended one is resumed first; a sleeping one only
   * with `wakeSleeping` (an interruption), since the timer wakes it otherwise. From a pod that
   * does not own the shard, the change is stored with an entry in the owner's inbox.
   */
  readonly resumeRow = (
    row: ExecutionRecord,
    wakeSleeping = false
  ): Effect.Effect<Option.Option<RunHandle>, JournalError> =>
    Effect.gen({ self: this }, function* () {
      if (isFinal(row.status)) return Option.none<RunHandle>()
      if (row.status === "suspended" || (row.status === "sleeping" && wakeSleeping)) {
        yield* this.changeStatus(row.executionId, { _tag: "Resume" })
        row = Option.getOrElse(yield* this.options.journal.get(row.executionId), () => row)
      }
      if (row.status !== "running") return Option.none<RunHandle>()
      const handle = yield* this.startRow(row)
      if (handle !== undefined) this.options.wakes.woke(row.executionId)
      return Option.fromNullishOr(handle)
    })

  /** Wakes one due execution: `running` again (advisory write), then a run. */
  readonly wake = (row: ExecutionRecord): Effect.Effect<Option.Option<RunHandle>, JournalError> =>
    Effect.andThen(
      this.changeStatus(row.executionId, { _tag: "Wake" }),
      this.resumeRow({ ...row, status: "running", wakeAt: null })
    )

  /** An execution's row, steps and failed attempts: the document `exportJournal` returns. */
  readonly exportJournal = (
    executionId: string
  ): Effect.Effect<ExecutionJournal, ExecutionNotFoundError | InvalidIdentifierError | JournalError> =>
    Effect.gen({ self: this }, function* () {
      const execution = yield* this.getRow(executionId)
      const steps = yield* this.options.journal.steps(executionId)
      const attempts = yield* this.options.journal.attempts(executionId)
      return { format: "effect-cluster/execution-journal", version: 1, execution, steps, attempts } as const
    })

  /** An inbox entry: the owner looks at the execution and does what its row asks. */
  readonly deliver = (
    entry: InboxEntry,
    read: ExecutionRecord | null | undefined
  ): Effect.Effect<void, JournalError> =>
    Effect.gen({ self: this }, function* () {
      const row =
        read !== undefined ? read : Option.getOrNull(yield* this.options.journal.get(entry.executionId))
      if (row === null) return
      if (row.status === "sleeping") return this.options.timer().poke(row.wakeAt ?? this.options.now())
      if (row.status !== "running") return
      const current = this.options.runs.get(row.executionId)
      if (current === undefined) return yield* Effect.asVoid(this.startRow(row))
      if (row.interruptRequested && !current.state.interruptRequested) {
        yield* Effect.forkIn(Effect.ignore(this.interrupt(row.executionId)), this.options.scope)
      }
    })

  /** Stores the signal `signal` of `executionId` (first value wins) and wakes its run. */
  readonly signal = <A>(
    executionId: string,
    signal: Signal<A>,
    value: A
  ): Effect.Effect<
    boolean,
    ExecutionNotFoundError | InvalidSignalError | PayloadTooLargeError | InvalidIdentifierError | JournalError
  > =>
    Effect.gen({ self: this }, function* () {
      const encoded = encodeJsonResult(signal.schema, value)
      if (Result.isFailure(encoded)) {
        const { path, message } = encoded.failure
        return yield* new InvalidSignalError({ signal: signal.name, executionId, path, detail: message })
      }
      const limit = this.options.maxPayloadBytes ?? MAX_PAYLOAD_BYTES
      const bytes = bytesOver(encoded.success, limit)
      if (bytes !== undefined) {
        return yield* new PayloadTooLargeError({ payload: "signal", payloadOf: signal.name, bytes, limit })
      }
      yield* checkIdentifier("signal name", signal.name, null)
      yield* this.getRow(executionId)
      const at = this.options.now()
      const shard = this.options.ownership().shardOf(executionId)
      const owned = this.owns(executionId)
      const stored = yield* this.options.journal.signal({
        executionId,
        name: signal.name,
        payload: encoded.success,
        notify: owned ? undefined : shard,
        now: at
      })
      if (owned) this.options.timer().poke(at)
      else if (stored) yield* this.announce(shard)
      return stored
    })

  /**
   * Interrupts `executionId` (its compensations run) and waits for it to end. Another pod that runs
   * it hears of the request through its inbox.
   */
  readonly interrupt = (
    executionId: string
  ): Effect.Effect<void, ExecutionNotFoundError | InvalidIdentifierError | JournalError> =>
    Effect.gen({ self: this }, function* () {
      const row = yield* this.getRow(executionId)
      if (isFinal(row.status)) return
      yield* this.changeStatus(executionId, { _tag: "RequestInterrupt" })
      // Another pod runs it: the request reached its inbox; wait for the outcome from there.
      if (!this.owns(executionId)) return yield* Effect.asVoid(this.options.remote.settled(executionId))
      const runs = this.options.runs
      const current = runs.get(executionId)
      if (current !== undefined && !current.state.stopping) {
        current.state.interruptRequested = true
        // Before replay has caught up, the body has not rebuilt its compensations yet: the
        // run delivers the interruption at its first step without a recorded outcome.
        if (current.state.caughtUp) yield* current.state.deliverInterrupt()
        const outcome = yield* Deferred.await(current.outcome)
        // Parked at the same moment (a wait won the race): wake it to deliver the interruption.
        if (outcome._tag !== "Sleeping") return
      }
      yield* runs.settled(executionId)
      const latest = yield* this.getRow(executionId)
      const handle = yield* this.resumeRow({ ...latest, interruptRequested: true }, true)
      if (Option.isSome(handle)) yield* Deferred.await(handle.value.outcome)
    })
}
