/**
 * The workflow engine: starts executions, resumes unfinished ones, and shuts down gracefully.
 *
 * `makeScoped(workflows)` accepts requests at once and resumes, in the background, every `running`
 * execution of the shards it owns (I2): all of them alone, its share in a cluster (a journal whose
 * layer provides a `ShardStore`). Starting a request whose execution id exists attaches to that
 * execution (I4). When the scope closes, running activities are interrupted without recording
 * anything and the executions stay `running`, so the next engine resumes them (I8); in a cluster
 * the pod then hands its shards back.
 *
 * @example
 * ```ts
 * const main = Effect.gen(function* () {
 *   const engine = yield* WorkflowEngine.makeScoped(Workflow.union(processPayment))
 *   const shipped = yield* engine.send(new ProcessPaymentRequest({ orderId: "order-1", ... }))
 * }).pipe(Effect.scoped, Effect.provide(SqliteJournal.layer({ filename: "journal.db" })))
 * ```
 */
import { Cause, Clock, Deferred, Duration, Effect, Option, Queue, Result, Scope, Semaphore } from "effect"
import * as NetworkTransport from "../sharding/internal/NetworkTransport.ts"
import * as Memberships from "../sharding/Membership.ts"
import { Membership } from "../sharding/Membership.ts"
import type { PodInfo, PodOptions } from "../sharding/Pod.ts"
import * as Pod from "../sharding/Pod.ts"
import type { NetworkConfigError } from "../sharding/PodNetwork.ts"
import { PodTransport } from "../sharding/PodTransport.ts"
import type {
  DuplicatePodError,
  InvalidShardingConfigError,
  ShardCountMismatchError,
  ShardStoreError
} from "../sharding/ShardingErrors.ts"
import { type ShardRecord, ShardStore } from "../sharding/ShardStore.ts"
import {
  DurableExecutionJournal,
  type ExecutionRecord,
  ExecutionRecord as ExecutionRecordSchema,
  type ExecutionStatus,
  type InboxEntry,
  isFinal,
  type StatusChange
} from "./DurableExecutionJournal.ts"
import { encodeJson, encodeJsonResult } from "./internal/codec.ts"
import * as Deliveries from "./internal/Deliveries.ts"
import * as DurableTimer from "./internal/DurableTimer.ts"
import type { RunHandle, RunnerEnvironment } from "./internal/ExecutionRunner.ts"
import { unfenced } from "./internal/FencedJournal.ts"
import {
  type ExecutionHistory,
  type ExecutionInfo,
  resultOf,
  suspendedError,
  toHistory,
  toInfo
} from "./internal/Inspection.ts"
import { invalidIdentifier } from "./internal/identifier.ts"
import { clustered, type Ownership, single } from "./internal/Ownership.ts"
import { reliable } from "./internal/ReliableJournal.ts"
import * as RemoteResults from "./internal/RemoteResults.ts"
import { isSettled } from "./internal/RemoteResults.ts"
import { resumeShard } from "./internal/Resumption.ts"
import { Runs } from "./internal/Runs.ts"
import { WakeWaiters } from "./internal/WakeWaiters.ts"
import type { ExecutionJournal } from "./JournalExport.ts"
import { defaults, type RetryPolicy, resolve } from "./RetryPolicy.ts"
import type { Signal } from "./Signal.ts"
import {
  type Any,
  type FailureFor,
  type Requests,
  type Requirements,
  type SuccessFor,
  type WorkflowUnion,
  byTag as workflowsByTag
} from "./Workflow.ts"
import {
  ExecutionIdConflictError,
  ExecutionNotFoundError,
  type InvalidIdentifierError,
  InvalidRequestError,
  InvalidSignalError,
  type JournalError,
  SuspendReason,
  UnknownWorkflowError,
  type WorkflowEngineError
} from "./WorkflowErrors.ts"

export type { ExecutionHistory, ExecutionInfo, StepInfo } from "./internal/Inspection.ts"

/** A running engine for the workflows `W`. */
export interface WorkflowEngine<W extends Any> {
  /** Starts (or attaches to) the execution of `request` and waits for its result. */
  readonly send: <Req extends Requests<W>>(
    request: Req
  ) => Effect.Effect<SuccessFor<W, Req["_tag"]>, FailureFor<W, Req["_tag"]> | WorkflowEngineError>
  /** Starts (or attaches to) the execution; returns its id once the start is durably stored (I5). */
  readonly sendDiscard: <Req extends Requests<W>>(
    request: Req
  ) => Effect.Effect<
    string,
    | InvalidRequestError
    | UnknownWorkflowError
    | ExecutionIdConflictError
    | InvalidIdentifierError
    | JournalError
  >
  /** The stored state of an execution. */
  readonly status: (
    executionId: string
  ) => Effect.Effect<Option.Option<ExecutionInfo>, InvalidIdentifierError | JournalError>
  /**
   * A page of executions, optionally of one workflow and one status, by execution id. Pass the
   * returned `next` as `after` for the next page (none: this was the last).
   *
   * @example
   * ```ts
   * const page = yield* engine.list({ workflow: "ProcessPayment", status: "suspended", limit: 50 })
   * ```
   */
  readonly list: (query: {
    readonly workflow?: string | undefined
    readonly status?: ExecutionStatus | undefined
    readonly after?: string | undefined
    readonly limit?: number | undefined
  }) => Effect.Effect<
    { readonly executions: ReadonlyArray<ExecutionInfo>; readonly next: Option.Option<string> },
    JournalError
  >
  /** An execution and its steps in order: every failed attempt, timing, recorded outcomes. */
  readonly history: (
    executionId: string
  ) => Effect.Effect<ExecutionHistory, ExecutionNotFoundError | InvalidIdentifierError | JournalError>
  /**
   * The journal of an execution as a document (its row, steps and failed attempts): write it to a
   * file with `JournalExport.writeFile`, replay it against changed code with `WorkflowTest.replay`.
   */
  readonly exportJournal: (
    executionId: string
  ) => Effect.Effect<ExecutionJournal, ExecutionNotFoundError | InvalidIdentifierError | JournalError>
  /** Resumes a suspended execution (no-op for running or final ones). */
  readonly resume: (
    executionId: string
  ) => Effect.Effect<void, ExecutionNotFoundError | InvalidIdentifierError | JournalError>
  /**
   * Interrupts an execution: its finalizers and compensations run (activities included), then it
   * is recorded as `interrupted`. Durable: a crash in between continues the interruption on restart.
   * Returns once the execution is final (or suspended).
   */
  readonly interrupt: (
    executionId: string
  ) => Effect.Effect<void, ExecutionNotFoundError | InvalidIdentifierError | JournalError>
  /**
   * Completes the signal `signal` of an execution with `value` (encoded with its schema). Returns
   * true if this call completed it, false if it had been completed before (the first value stays).
   * A sleeping execution waiting for it wakes at once.
   */
  readonly signal: <A>(
    executionId: string,
    signal: Signal<A>,
    value: A
  ) => Effect.Effect<
    boolean,
    ExecutionNotFoundError | InvalidSignalError | InvalidIdentifierError | JournalError
  >
  /**
   * How many executions have a run (a fiber) in this engine now. Sleeping executions have none:
   * they are rows in the journal until the timer wakes them.
   */
  readonly runningCount: () => number
  /** This engine's pod id in the cluster; undefined when it runs alone on a journal without ownership. */
  readonly podId: () => string | undefined
  /** The pods of the cluster: id, lease, liveness, shards, and which one is the shard manager. */
  readonly pods: () => Effect.Effect<ReadonlyArray<PodInfo>, ShardStoreError>
  /** The shards of the cluster: owner, epoch, pending handover. Empty without ownership. */
  readonly shards: () => Effect.Effect<ReadonlyArray<ShardRecord>, ShardStoreError>
}

/** A stored start: the workflow, its row, and the request object if this call created it. */
interface Started {
  readonly workflow: Any
  readonly execution: ExecutionRecord
  readonly freshRequest: unknown
  /** The start left an entry in the inbox of the shard's owner (another pod). */
  readonly notified: boolean
}

type StartError =
  | UnknownWorkflowError
  | InvalidRequestError
  | ExecutionIdConflictError
  | InvalidIdentifierError
  | JournalError

/**
 * Checks an identifier at the engine's boundary (see `internal/identifier.ts`): the same typed
 * error on every backend for an id the journal could not store alike.
 */
const checkIdentifier = (
  kind: InvalidIdentifierError["kind"],
  value: string,
  workflow: string | null
): Effect.Effect<void, InvalidIdentifierError> => {
  const error = invalidIdentifier(kind, value, workflow)
  return error === undefined ? Effect.void : Effect.fail(error)
}

/** Options of `makeScoped`. Ownership options (pod id, shard count, lease TTL) come from `PodOptions`. */
export interface EngineOptions extends PodOptions {
  /** The default retry policy of activities (each activity can override fields). */
  readonly retry?: RetryPolicy | undefined
  /**
   * How often the durable timer looks for sleeping executions it was not told about. Its own sleeps
   * wake on time regardless. Default 1 second; on a journal that announces every wake-up
   * (`MemoryJournal`) the timer does not poll at all unless this is set.
   */
  readonly timerPollInterval?: Duration.Input | undefined
  /**
   * How long shutdown waits for runs to record what they delivered while the journal does not
   * answer (they retry with backoff meanwhile). After it, retrying stops and the scope closes:
   * those executions stay `running` with their last recorded outcomes, and the next engine
   * resumes them (their unrecorded activities run again, as after a crash). Default 10 seconds.
   */
  readonly shutdownTimeout?: Duration.Input | undefined
  /**
   * In a cluster: how often a pod looks at its shards' inboxes (work stored by other pods) and at
   * the results of executions it waits for that run elsewhere. Default 100 ms. On PostgreSQL the
   * owner is also told at once through `LISTEN/NOTIFY`; the polling is the safety net.
   */
  readonly deliveryPollInterval?: Duration.Input | undefined
}

/** Errors `makeScoped` fails with: the store, or an ownership setting the store refuses. */
export type EngineStartError =
  | JournalError
  | ShardStoreError
  | ShardCountMismatchError
  | DuplicatePodError
  | InvalidShardingConfigError
  | NetworkConfigError

/** Runs loading their journal at once while shards are taken over. */
const LOADING_PERMITS = 64

/** Shards resumed at once. */
const RESUME_WORKERS = 2

/** The engine options that configure its pod (see `PodOptions`). */
const POD_OPTIONS = ["podId", "shardCount", "leaseTtl", "ownershipInterval", "maxHandoversPerRound"] as const

const millis = (input: Duration.Input | undefined, fallback: Duration.Input): number =>
  Duration.toMillis(Duration.fromInputUnsafe(input ?? fallback))

/**
 * Builds an engine for `workflows` and stops it with the scope. On a journal whose layer provides
 * a `ShardStore` (SQLite, PostgreSQL, `MemoryJournal.layerCluster`) the engine is a pod of the
 * cluster on that store: it runs the shards it owns and resumes their unfinished executions in the
 * background, without delaying new work.
 */
export const makeScoped = <W extends Any>(
  workflows: WorkflowUnion<W> | W,
  options?: EngineOptions
): Effect.Effect<
  WorkflowEngine<W>,
  EngineStartError,
  Scope.Scope | DurableExecutionJournal | Requirements<W>
> =>
  Effect.gen(function* () {
    const byTag: ReadonlyMap<string, Any> = workflowsByTag(workflows)
    const store = yield* DurableExecutionJournal
    const shardStore = yield* Effect.serviceOption(ShardStore)
    const shared = yield* Effect.serviceOption(Membership)
    const podSettings = yield* Pod.settings(
      Option.isSome(shared) ? { ...options, shardCount: shared.value.shardCount } : options
    )
    if (Option.isSome(shared)) {
      const ignored = POD_OPTIONS.filter((option) => options?.[option] !== undefined)
      if (ignored.length > 0) {
        yield* Effect.logWarning(
          `the engine's ${ignored.join(", ")} ${ignored.length === 1 ? "is" : "are"} ignored: this process's pod is the Membership in context; give pod options to Membership.layer instead`
        )
      }
    }
    const reliableStore = reliable(store)
    const { stopRetrying } = reliableStore
    const journal = unfenced(reliableStore.journal)
    const services = yield* Effect.context<Requirements<W>>()
    const context = yield* Effect.context<never>()
    const scope = yield* Effect.scope
    // The pod's scope is forked before the engine's finalizer is added, so it closes after it:
    // the pod leaves the cluster only once every run has stopped.
    const podScope = yield* Scope.fork(scope)
    // A process's shared pod (`Membership`), else a pod of the engine's own on a store with
    // ownership, else every shard (no membership).
    const membership = Option.isSome(shared)
      ? shared.value
      : Option.isSome(shardStore)
        ? yield* Memberships.make(options).pipe(Scope.provide(podScope))
        : undefined
    let shuttingDown = false
    let ownership: Ownership = single(podSettings.shardCount)
    const clock = yield* Clock.Clock
    const now = () => clock.currentTimeMillisUnsafe()
    const deliveryMillis = millis(options?.deliveryPollInterval, "100 millis")
    // A transport given by the program (tests in one process), else the pods' network, if any.
    const transport =
      Option.getOrUndefined(yield* Effect.serviceOption(PodTransport)) ??
      (membership === undefined ? undefined : yield* NetworkTransport.make(membership))
    /** After a write that left an inbox entry for `shard` committed: wake its owner now. */
    const announce = (shard: number | undefined) =>
      transport === undefined || shard === undefined ? Effect.void : transport.announce(shard)
    const remote = yield* RemoteResults.make(journal, deliveryMillis, transport?.settlements)
    const wakes = new WakeWaiters(journal)
    const env: RunnerEnvironment = {
      journal,
      retryPolicy: resolve(options?.retry, defaults),
      now,
      isGracefulShutdown: () => shuttingDown,
      loading: Semaphore.makeUnsafe(LOADING_PERMITS),
      // Called by runs, after the engine below is built.
      children: {
        start: (_workflow, request) =>
          Effect.flatMap(start(request), ({ workflow, execution, freshRequest, notified }) =>
            execution.status === "running"
              ? Effect.as(runOrTell(workflow, execution, freshRequest, notified), execution.executionId)
              : Effect.succeed(execution.executionId)
          ),
        settled: (executionId) => settledRow(executionId),
        interrupt: (executionId) => engine.interrupt(executionId)
      }
    }

    /** Whether this engine runs the shard of `executionId` now. */
    const ownsExecution = (executionId: string) =>
      ownership.runFence(ownership.shardOf(executionId)) !== undefined

    const runs = new Runs({
      env,
      store: reliableStore.journal,
      ownership: () => ownership,
      services,
      stopping: () => shuttingDown,
      parked: (wakeAt) => timer.poke(wakeAt),
      settled: (executionId, final) => {
        if (transport === undefined) return
        // With its final row (encoded only if sent), the pods waiting for it need not read it.
        const row =
          final === undefined
            ? undefined
            : () => Result.getOrUndefined(encodeJsonResult(ExecutionRecordSchema, final))
        Effect.runForkWith(context)(transport.settle(executionId, row))
      }
    })
    const ensureRunning = (workflow: Any, row: ExecutionRecord, freshRequest?: unknown) =>
      runs.ensure(workflow, row, freshRequest)

    /**
     * Runs `row` here if this engine owns its shard; otherwise makes sure the owner hears of it
     * (unless the start already told it, `notified`).
     */
    const runOrTell = (workflow: Any, row: ExecutionRecord, freshRequest: unknown, notified: boolean) =>
      Effect.flatMap(ensureRunning(workflow, row, freshRequest), (handle) =>
        handle !== undefined || notified
          ? Effect.succeed(handle)
          : Effect.as(tellOwner(row.executionId), undefined)
      )

    /** Leaves an entry in the inbox of the shard of `executionId`, for its owner. */
    const tellOwner = (executionId: string) =>
      Effect.suspend(() => {
        const shard = ownership.shardOf(executionId)
        return Effect.andThen(
          journal.write({ executionId, outcomes: [], notify: shard, now: now() }),
          announce(shard)
        )
      })

    const changeStatus = (executionId: string, status: StatusChange) =>
      Effect.suspend(() => {
        const shard = ownership.shardOf(executionId)
        const notify = ownership.runFence(shard) === undefined ? shard : undefined
        return Effect.andThen(
          journal.write({ executionId, outcomes: [], status, notify, now: now() }),
          announce(notify)
        )
      })

    const suspendUnknown = (row: ExecutionRecord) =>
      Effect.gen(function* () {
        const error = new UnknownWorkflowError({ workflow: row.workflow, executionId: row.executionId })
        yield* Effect.logWarning(error.message)
        const reason = yield* encodeJson(SuspendReason, error).pipe(Effect.orDie)
        yield* changeStatus(row.executionId, { _tag: "Suspend", reason })
      })

    /** Starts a run for a `running` row of a shard this engine owns, whose workflow may be unknown. */
    const startRow = (row: ExecutionRecord): Effect.Effect<RunHandle | undefined, JournalError> => {
      const workflow = byTag.get(row.workflow)
      if (workflow !== undefined) return ensureRunning(workflow, row)
      return ownsExecution(row.executionId)
        ? Effect.as(suspendUnknown(row), undefined)
        : Effect.succeed(undefined)
    }

    /** Waits for `row` to be final and returns its result, decoded with the workflow's schemas. */
    const awaitResult = (
      workflow: Any,
      row: ExecutionRecord,
      freshRequest: unknown,
      notified: boolean
    ): Effect.Effect<unknown, unknown> => {
      if (row.status === "sleeping") return afterWake(workflow, row.executionId)
      if (row.status !== "running") return resultOf(workflow, row)
      return Effect.flatMap(runOrTell(workflow, row, freshRequest, notified), (handle) =>
        handle === undefined
          ? remoteResult(workflow, row.executionId)
          : Effect.flatMap(Deferred.await(handle.outcome), (outcome): Effect.Effect<unknown, unknown> => {
              switch (outcome._tag) {
                case "Completed":
                  return outcome.exit
                case "Suspended":
                  return Effect.fail(suspendedError(row, outcome.reason))
                case "Stopped":
                  // Stopped because the shard moved to another pod: its result arrives from there.
                  return shuttingDown ? Effect.interrupt : remoteResult(workflow, row.executionId)
                case "Failed":
                  return Effect.fail(outcome.error)
                case "Sleeping":
                  return afterWake(workflow, row.executionId)
                case "Stale":
                  // The execution finished or was suspended before the run started: read it again.
                  return Effect.flatMap(getRow(row.executionId), (latest) =>
                    latest.status === "running"
                      ? Effect.interrupt
                      : awaitResult(workflow, latest, undefined, true)
                  )
              }
            })
      )
    }

    /** The result of an execution another pod runs, once it is final (or suspended). */
    const remoteResult = (workflow: Any, executionId: string) =>
      Effect.flatMap(remote.settled(executionId), (row) => resultOf(workflow, row))

    /** Waits until the execution wakes and then for its result (from another pod if it runs there). */
    const afterWake = (workflow: Any, executionId: string): Effect.Effect<unknown, unknown> =>
      ownsExecution(executionId)
        ? Effect.andThen(
            wakes.wait(executionId),
            Effect.flatMap(getRow(executionId), (latest) => awaitResult(workflow, latest, undefined, true))
          )
        : remoteResult(workflow, executionId)

    /** Waits until `executionId` is final or suspended (running it here if this pod owns it); its row. */
    const settledRow = (executionId: string): Effect.Effect<ExecutionRecord, unknown> =>
      Effect.flatMap(getRow(executionId), (row): Effect.Effect<ExecutionRecord, unknown> => {
        if (isSettled(row)) return Effect.succeed(row)
        if (!ownsExecution(executionId)) return remote.settled(executionId)
        if (row.status === "sleeping") return Effect.andThen(wakes.wait(executionId), settledRow(executionId))
        return Effect.flatMap(resumeRow(row), (handle) =>
          Option.isSome(handle)
            ? Effect.andThen(Deferred.await(handle.value.outcome), settledRow(executionId))
            : settledRow(executionId)
        )
      })

    /** Validates and durably stores the start of `request`; returns its workflow and stored row. */
    const start = (request: { readonly _tag: string }): Effect.Effect<Started, StartError> =>
      Effect.suspend((): Effect.Effect<Started, StartError> => {
        const workflow = byTag.get(request._tag)
        if (workflow === undefined) {
          return Effect.fail(new UnknownWorkflowError({ workflow: request._tag, executionId: "" }))
        }
        const encoded = encodeJsonResult(workflow.request, request)
        if (Result.isFailure(encoded)) {
          const { path, message } = encoded.failure
          return Effect.fail(new InvalidRequestError({ workflow: workflow.tag, path, detail: message }))
        }
        const executionId = workflow.executionId(request)
        const invalid = invalidIdentifier("execution id", executionId, workflow.tag)
        if (invalid !== undefined) return Effect.fail(invalid)
        const shard = ownership.shardOf(executionId)
        // Another pod owns the shard: the start leaves an entry in its inbox in the same transaction.
        const notified = ownership.runFence(shard) === undefined
        const stored = journal.start({
          executionId,
          workflow: workflow.tag,
          request: encoded.success,
          shard,
          notify: notified,
          now: now()
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
              Effect.as(announce(notified && created ? shard : undefined), {
                workflow,
                execution,
                freshRequest: created ? request : undefined,
                notified
              })
        )
      })

    const getRow = (executionId: string) =>
      Effect.flatMap(
        Effect.andThen(checkIdentifier("execution id", executionId, null), journal.get(executionId)),
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
    const resumeRow = (row: ExecutionRecord, wakeSleeping = false) =>
      Effect.gen(function* () {
        if (isFinal(row.status)) return Option.none<RunHandle>()
        if (row.status === "suspended" || (row.status === "sleeping" && wakeSleeping)) {
          yield* changeStatus(row.executionId, { _tag: "Resume" })
          row = Option.getOrElse(yield* journal.get(row.executionId), () => row)
        }
        if (row.status !== "running") return Option.none<RunHandle>()
        const handle = yield* startRow(row)
        if (handle !== undefined) wakes.woke(row.executionId)
        return Option.fromNullishOr(handle)
      })

    /** Wakes one due execution: `running` again (advisory write), then a run. */
    const wake = (row: ExecutionRecord) =>
      Effect.andThen(
        changeStatus(row.executionId, { _tag: "Wake" }),
        resumeRow({ ...row, status: "running", wakeAt: null })
      )

    // A journal that announces every wake-up (memory) needs no polling: the timer then sleeps
    // until the earliest known deadline, so skipping a month of test time costs one wake-up.
    const timer = DurableTimer.make({
      journal,
      now,
      pollMillis:
        options?.timerPollInterval === undefined && store.wakeups !== undefined
          ? Number.POSITIVE_INFINITY
          : millis(options?.timerPollInterval, "1 second"),
      shards: () => ownership.ownedShards(),
      wake
    })

    /** An execution's row, steps and failed attempts: the document `exportJournal` returns. */
    const exportJournal = (executionId: string) =>
      Effect.gen(function* () {
        const execution = yield* getRow(executionId)
        const steps = yield* journal.steps(executionId)
        const attempts = yield* journal.attempts(executionId)
        return { format: "effect-cluster/execution-journal", version: 1, execution, steps, attempts } as const
      })

    /**
     * Shards whose `running` executions are to be resumed, taken by a few background workers one
     * shard at a time, so taking 300 shards over does not start 300 readers at once.
     */
    const toResume = yield* Queue.unbounded<number>()
    const acquired = (shard: number) => Effect.sync(() => Queue.offerUnsafe(toResume, shard))
    const resumeWorker = Effect.forever(
      Effect.flatMap(Queue.take(toResume), (shard) =>
        resumeShard({
          journal,
          shard,
          stillOwned: () => !shuttingDown && ownership.runFence(shard) !== undefined,
          start: startRow
        }).pipe(
          // The timer looks at the shards taken over (their sleepers may be due) once the burst of
          // acquisitions is resumed: one look, not one per shard.
          Effect.tap(() => Effect.sync(() => Queue.sizeUnsafe(toResume) === 0 && timer.poke(now()))),
          Effect.catchCause((cause) =>
            Cause.hasInterruptsOnly(cause)
              ? Effect.void
              : Effect.logError(`the executions of shard ${shard} could not be resumed`, cause)
          )
        )
      )
    )

    /** An inbox entry: the owner looks at the execution and does what its row asks. */
    const deliver = (entry: InboxEntry, read: ExecutionRecord | null | undefined) =>
      Effect.gen(function* () {
        const row = read !== undefined ? read : Option.getOrNull(yield* journal.get(entry.executionId))
        if (row === null) return
        if (row.status === "sleeping") return timer.poke(row.wakeAt ?? now())
        if (row.status !== "running") return
        const current = runs.get(row.executionId)
        if (current === undefined) return yield* Effect.asVoid(startRow(row))
        if (row.interruptRequested && !current.state.interruptRequested) {
          yield* Effect.forkIn(Effect.ignore(engine.interrupt(row.executionId)), scope)
        }
      })

    const engine: WorkflowEngine<W> = {
      runningCount: () => runs.size,
      podId: () => ownership.podId,
      pods: () => ownership.pods ?? Effect.succeed([]),
      shards: () => ownership.shards ?? Effect.succeed([]),
      signal: (executionId, signal, value) =>
        Effect.gen(function* () {
          const encoded = encodeJsonResult(signal.schema, value)
          if (Result.isFailure(encoded)) {
            const { path, message } = encoded.failure
            return yield* new InvalidSignalError({ signal: signal.name, executionId, path, detail: message })
          }
          yield* checkIdentifier("signal name", signal.name, null)
          yield* getRow(executionId)
          const at = now()
          const shard = ownership.shardOf(executionId)
          const owned = ownership.runFence(shard) !== undefined
          const stored = yield* journal.signal({
            executionId,
            name: signal.name,
            payload: encoded.success,
            notify: owned ? undefined : shard,
            now: at
          })
          if (owned) timer.poke(at)
          else if (stored) yield* announce(shard)
          return stored
        }),
      send: (request) =>
        // The result was produced (or decoded) by the workflow that handles this request's tag.
        Effect.flatMap(start(request), ({ workflow, execution, freshRequest, notified }) =>
          awaitResult(workflow, execution, freshRequest, notified)
        ) as Effect.Effect<never, never>,
      sendDiscard: (request) =>
        Effect.gen(function* () {
          const { workflow, execution, freshRequest, notified } = yield* start(request)
          if (execution.status === "running") yield* runOrTell(workflow, execution, freshRequest, notified)
          return execution.executionId
        }),
      status: (executionId) =>
        Effect.andThen(
          checkIdentifier("execution id", executionId, null),
          Effect.map(journal.get(executionId), Option.map(toInfo))
        ),
      list: (query) =>
        Effect.map(journal.list({ ...query, limit: query.limit ?? 100 }), (rows) => ({
          executions: rows.map(toInfo),
          next:
            rows.length === (query.limit ?? 100) && rows.length > 0
              ? Option.some(rows[rows.length - 1]!.executionId)
              : Option.none()
        })),
      history: (executionId) =>
        Effect.map(exportJournal(executionId), ({ execution, steps, attempts }) =>
          toHistory(execution, steps, attempts)
        ),
      exportJournal: (executionId) => exportJournal(executionId),
      resume: (executionId) =>
        runs.settled(executionId).pipe(
          Effect.andThen(getRow(executionId)),
          Effect.flatMap((row) => resumeRow(row)),
          Effect.asVoid
        ),
      interrupt: (executionId) =>
        Effect.gen(function* () {
          const row = yield* getRow(executionId)
          if (isFinal(row.status)) return
          yield* changeStatus(executionId, { _tag: "RequestInterrupt" })
          // Another pod runs it: the request reached its inbox; wait for the outcome from there.
          if (!ownsExecution(executionId)) return yield* Effect.asVoid(remote.settled(executionId))
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
          const latest = yield* getRow(executionId)
          const handle = yield* resumeRow({ ...latest, interruptRequested: true }, true)
          if (Option.isSome(handle)) yield* Deferred.await(handle.value.outcome)
        })
    }

    yield* Effect.addFinalizer(() =>
      Effect.gen(function* () {
        shuttingDown = true
        // Other pods take this pod's shards over while its runs stop.
        if (membership?.pod !== undefined) yield* membership.pod.leave
        wakes.stop()
        const handles = runs.stopAll()
        // Bounded: a journal that stays down must not keep the process from stopping.
        const ended = Effect.forEach(handles, (handle) => Deferred.await(handle.outcome), { discard: true })
        const timeout = options?.shutdownTimeout ?? "10 seconds"
        if (Option.isSome(yield* Effect.timeoutOption(ended, timeout))) return
        const waiting = handles.filter((handle) => !Deferred.isDoneUnsafe(handle.outcome)).length
        yield* Effect.logWarning(
          `shutdown: ${waiting} execution(s) could not record their last outcomes within ${Duration.format(Duration.fromInputUnsafe(timeout))} because the journal does not answer; they stay running and the next engine resumes them`
        )
        yield* stopRetrying
        yield* Effect.timeoutOption(ended, timeout)
      })
    )

    if (store.wakeups !== undefined) {
      const unsubscribe = store.wakeups(timer.poke)
      yield* Effect.addFinalizer(() => Effect.sync(unsubscribe))
    }
    const listener: Pod.ShardListener = {
      acquired: (shard) => acquired(shard),
      lost: (shard) => runs.stopShard(shard),
      handOver: (shard, deadlineMillis) => runs.drainShard(shard, deadlineMillis)
    }
    const pod = membership?.pod
    if (pod !== undefined) ownership = clustered(pod)
    if (membership !== undefined) yield* membership.subscribe(listener)
    if (pod !== undefined) {
      yield* Effect.forkScoped(
        Deliveries.loop({
          journal,
          arrivals: transport?.arrivals,
          intervalMillis: deliveryMillis,
          shards: ownership.ownedShards,
          deliver
        })
      )
    } else if (membership === undefined) {
      for (let shard = 1; shard <= podSettings.shardCount; shard++) yield* acquired(shard)
    }
    for (let i = 0; i < RESUME_WORKERS; i++) yield* Effect.forkScoped(resumeWorker)
    yield* Effect.forkScoped(
      Effect.catchCause(timer.loop, (cause) => Effect.logError("the durable timer stopped", cause))
    )
    return engine
  })
