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
  type ExecutionStatus
} from "./DurableExecutionJournal.ts"
import { encodeJsonResult } from "./internal/codec.ts"
import * as Deliveries from "./internal/Deliveries.ts"
import * as DurableTimer from "./internal/DurableTimer.ts"
import type { RunHandle, RunnerEnvironment } from "./internal/ExecutionRunner.ts"
import { checkIdentifier, Executions } from "./internal/Executions.ts"
import { type RunJournal, unfenced } from "./internal/FencedJournal.ts"
import { type ExecutionHistory, type ExecutionInfo, toHistory, toInfo } from "./internal/Inspection.ts"
import { clustered, type Ownership, single } from "./internal/Ownership.ts"
import * as Recovery from "./internal/Recovery.ts"
import { reliable } from "./internal/ReliableJournal.ts"
import * as RemoteResults from "./internal/RemoteResults.ts"
import * as Resumption from "./internal/Resumption.ts"
import * as RunLoads from "./internal/RunLoads.ts"
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
import type {
  ExecutionIdConflictError,
  ExecutionNotFoundError,
  InvalidIdentifierError,
  InvalidRequestError,
  InvalidSignalError,
  JournalError,
  PayloadTooLargeError,
  UnknownWorkflowError,
  WorkflowEngineError
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
    | PayloadTooLargeError
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
    ExecutionNotFoundError | InvalidSignalError | PayloadTooLargeError | InvalidIdentifierError | JournalError
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
  /**
   * The largest request (`send`, `sendDiscard`, a child workflow) or signal value accepted, in
   * bytes of its JSON encoding. A larger one fails with `PayloadTooLargeError` and nothing is
   * stored: every pod reads a request back whenever it runs the execution. Default 1 MiB.
   */
  readonly maxPayloadBytes?: number | undefined
  /**
   * How often the engine looks, in the shards it owns, for `running` executions that have no run
   * (a backstop: none should be found; one found is started, with a warning naming it). Default
   * 30 seconds.
   */
  readonly recoveryInterval?: Duration.Input | undefined
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
    const maxPayloadBytes = options?.maxPayloadBytes
    if (maxPayloadBytes !== undefined && !(Number.isInteger(maxPayloadBytes) && maxPayloadBytes > 0)) {
      return yield* Effect.die(
        new TypeError(`maxPayloadBytes must be a positive integer, got ${maxPayloadBytes}`)
      )
    }
    const byTag: ReadonlyMap<string, Any> = workflowsByTag(workflows)
    const store = yield* DurableExecutionJournal
    const membership = yield* podOf(options)
    const podSettings = yield* Pod.settings(
      membership === undefined ? options : { ...options, shardCount: membership.shardCount }
    )
    const reliableStore = reliable(store)
    const journal = unfenced(reliableStore.journal)
    const services = yield* Effect.context<Requirements<W>>()
    const context = yield* Effect.context<never>()
    const scope = yield* Effect.scope
    let shuttingDown = false
    let ownership: Ownership = single(podSettings.shardCount)
    const clock = yield* Clock.Clock
    const now = () => clock.currentTimeMillisUnsafe()
    const deliveryMillis = millis(options?.deliveryPollInterval, "100 millis")
    // A transport given by the program (tests in one process), else the pods' network, if any.
    const transport =
      Option.getOrUndefined(yield* Effect.serviceOption(PodTransport)) ??
      (membership === undefined ? undefined : yield* NetworkTransport.make(membership))
    const remote = yield* RemoteResults.make(journal, deliveryMillis, transport?.settlements)
    const wakes = new WakeWaiters(journal)
    const env: RunnerEnvironment = {
      journal,
      retryPolicy: resolve(options?.retry, defaults),
      now,
      isGracefulShutdown: () => shuttingDown,
      loading: Semaphore.makeUnsafe(LOADING_PERMITS),
      load: yield* RunLoads.make(reliableStore.journal),
      // Called by runs, after `executions` below is built.
      children: {
        start: (_workflow, request) =>
          Effect.flatMap(executions.start(request), ({ workflow, execution, freshRequest, notified }) =>
            execution.status === "running"
              ? Effect.as(
                  executions.runOrTell(workflow, execution, freshRequest, notified),
                  execution.executionId
                )
              : Effect.succeed(execution.executionId)
          ),
        settled: (executionId) => executions.settledRow(executionId),
        interrupt: (executionId) => executions.interrupt(executionId)
      }
    }
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
    const executions = new Executions({
      byTag,
      journal,
      runs,
      remote,
      wakes,
      transport,
      now,
      ownership: () => ownership,
      shuttingDown: () => shuttingDown,
      timer: () => timer,
      scope,
      maxPayloadBytes
    })
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
      wake: executions.wake
    })

    const engine: WorkflowEngine<W> = {
      runningCount: () => runs.size,
      podId: () => ownership.podId,
      pods: () => ownership.pods ?? Effect.succeed([]),
      shards: () => ownership.shards ?? Effect.succeed([]),
      signal: executions.signal,
      // The result was produced (or decoded) by the workflow that handles this request's tag.
      send: (request) => executions.send(request) as Effect.Effect<never, never>,
      sendDiscard: (request) => executions.sendDiscard(request),
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
        Effect.map(executions.exportJournal(executionId), ({ execution, steps, attempts }) =>
          toHistory(execution, steps, attempts)
        ),
      exportJournal: executions.exportJournal,
      resume: (executionId) =>
        runs.settled(executionId).pipe(
          Effect.andThen(executions.getRow(executionId)),
          Effect.flatMap((row) => executions.resumeRow(row)),
          Effect.asVoid
        ),
      interrupt: executions.interrupt
    }

    yield* Effect.addFinalizer(() =>
      Effect.gen(function* () {
        shuttingDown = true
        // Other pods take this pod's shards over while its runs stop.
        if (membership?.pod !== undefined) yield* membership.pod.leave
        wakes.stop()
        yield* stopRuns(runs.stopAll(), options?.shutdownTimeout ?? "10 seconds", reliableStore.stopRetrying)
      })
    )

    if (store.wakeups !== undefined) {
      const unsubscribe = store.wakeups(timer.poke)
      yield* Effect.addFinalizer(() => Effect.sync(unsubscribe))
    }
    const toResume = yield* Queue.unbounded<number>()
    /**
     * The shards this engine runs, with when their resumption ended (see `Recovery`): a shard still
     * waiting for its turn among many taken over at once is not looked at (`Infinity`).
     */
    const heldSince = new Map<number, number>()
    const resume = (shard: number) =>
      Effect.sync(() => {
        heldSince.set(shard, Number.POSITIVE_INFINITY)
        Queue.offerUnsafe(toResume, shard)
      })
    const listener: Pod.ShardListener = {
      acquired: (shard) => resume(shard),
      lost: (shard) =>
        Effect.andThen(
          Effect.sync(() => heldSince.delete(shard)),
          runs.stopShard(shard)
        ),
      handOver: (shard, deadlineMillis) =>
        Effect.andThen(
          Effect.sync(() => heldSince.delete(shard)),
          runs.drainShard(shard, deadlineMillis)
        )
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
          deliver: executions.deliver
        })
      )
    } else if (membership === undefined) {
      for (let shard = 1; shard <= podSettings.shardCount; shard++) yield* resume(shard)
    }
    const stillOwned = (shard: number) => !shuttingDown && ownership.runFence(shard) !== undefined
    const resumeWorker = resumeShards({
      journal,
      toResume,
      stillOwned,
      start: executions.startRow,
      shardResumed: (shard) => {
        if (heldSince.has(shard)) heldSince.set(shard, now())
      },
      // The timer looks at the shards taken over (their sleepers may be due) once the burst of
      // acquisitions is resumed: one look, not one per shard.
      resumed: () => timer.poke(now())
    })
    for (let i = 0; i < RESUME_WORKERS; i++) yield* Effect.forkScoped(resumeWorker)
    yield* Effect.forkScoped(
      Recovery.loop({
        journal,
        intervalMillis: Duration.toMillis(
          Duration.fromInputUnsafe(options?.recoveryInterval ?? "30 seconds")
        ),
        shardsHeldSince: (since) =>
          [...heldSince].flatMap(([shard, at]) => (at <= since && stillOwned(shard) ? [shard] : [])),
        stillOwned,
        hasRun: (executionId) => runs.has(executionId),
        start: executions.startRow,
        now
      })
    )
    yield* Effect.forkScoped(
      Effect.catchCause(timer.loop, (cause) => Effect.logError("the durable timer stopped", cause))
    )
    return engine
  })

/**
 * This process's pod: the shared `Membership` in context, else a pod of the engine's own on a
 * store with ownership (closed after the engine's runs stop), else none (every shard is local).
 */
const podOf = (options: EngineOptions | undefined) =>
  Effect.gen(function* () {
    const shared = yield* Effect.serviceOption(Membership)
    if (Option.isSome(shared)) {
      const ignored = POD_OPTIONS.filter((option) => options?.[option] !== undefined)
      if (ignored.length > 0) {
        yield* Effect.logWarning(
          `the engine's ${ignored.join(", ")} ${ignored.length === 1 ? "is" : "are"} ignored: this process's pod is the Membership in context; give pod options to Membership.layer instead`
        )
      }
      return shared.value
    }
    if (Option.isNone(yield* Effect.serviceOption(ShardStore))) return undefined
    // The pod's scope is forked before the engine's finalizer is added, so it closes after it:
    // the pod leaves the cluster only once every run has stopped.
    const podScope = yield* Scope.fork(yield* Effect.scope)
    return yield* Memberships.make(options).pipe(Scope.provide(podScope))
  })

/**
 * Shards whose `running` executions are to be resumed, taken by a few background workers: a worker
 * takes every shard waiting (300 when a pod starts alone) and resumes them together, in the order
 * of their executions' ids (see `Resumption`).
 */
const resumeShards = (options: {
  readonly journal: RunJournal
  readonly toResume: Queue.Queue<number>
  readonly stillOwned: (shard: number) => boolean
  readonly start: (row: ExecutionRecord) => Effect.Effect<RunHandle | undefined, JournalError>
  /** The shard's resumption ended (every execution listed has a run, or it could not be resumed). */
  readonly shardResumed: (shard: number) => void
  readonly resumed: () => void
}) =>
  Effect.forever(
    Effect.gen(function* () {
      const taken = yield* Queue.takeAll(options.toResume)
      // Shards taken over in one round are announced one after another: wait for the rest.
      yield* Effect.yieldNow
      const shards = [...new Set([...taken, ...(yield* Queue.clear(options.toResume))])]
      yield* Resumption.resumeShards(options, shards).pipe(
        Effect.tap(() => Effect.sync(() => Queue.sizeUnsafe(options.toResume) === 0 && options.resumed())),
        Effect.catchCause((cause) =>
          Cause.hasInterruptsOnly(cause)
            ? Effect.void
            : Effect.logError(`the executions of shards ${shards.join(", ")} could not be resumed`, cause)
        ),
        Effect.ensuring(Effect.sync(() => shards.forEach(options.shardResumed)))
      )
    })
  )

/**
 * Waits for the runs being stopped to record what they delivered. Bounded: a journal that stays
 * down must not keep the process from stopping.
 */
const stopRuns = (
  handles: ReadonlyArray<RunHandle>,
  timeout: Duration.Input,
  stopRetrying: Effect.Effect<void>
) =>
  Effect.gen(function* () {
    const ended = Effect.forEach(handles, (handle) => Deferred.await(handle.outcome), { discard: true })
    if (Option.isSome(yield* Effect.timeoutOption(ended, timeout))) return
    const waiting = handles.filter((handle) => !Deferred.isDoneUnsafe(handle.outcome)).length
    yield* Effect.logWarning(
      `shutdown: ${waiting} execution(s) could not record their last outcomes within ${Duration.format(Duration.fromInputUnsafe(timeout))} because the journal does not answer; they stay running and the next engine resumes them`
    )
    yield* stopRetrying
    yield* Effect.timeoutOption(ended, timeout)
  })
