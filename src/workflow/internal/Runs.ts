/**
 * The runs in progress in one engine: at most one per execution, started only for shards this
 * engine runs now, each writing with its shard's fence (see `FencedJournal`).
 */
import { type Context, Deferred, Effect } from "effect"
import type { DurableExecutionJournal, ExecutionRecord } from "../DurableExecutionJournal.ts"
import type { Any } from "../Workflow.ts"
import { type RunHandle, type RunnerEnvironment, start as startRun } from "./ExecutionRunner.ts"
import { fenced } from "./FencedJournal.ts"
import type { Ownership } from "./Ownership.ts"

/** After this long, runs told to stop that have not ended are named in a warning (once). */
const SLOW_STOP_MILLIS = 10_000

/**
 * Waits for `handles` to end. Runs that have not after `SLOW_STOP_MILLIS` are named in a warning:
 * the shard waits for them (it is neither released nor taken again meanwhile).
 */
const untilEnded = (shard: number, handles: ReadonlyArray<RunHandle>): Effect.Effect<void> => {
  const ended = Effect.forEach(handles, (handle) => Deferred.await(handle.outcome), { discard: true })
  return Effect.flatMap(Effect.timeoutOption(ended, SLOW_STOP_MILLIS), (done) => {
    if (done._tag === "Some") return Effect.void
    const left = handles.filter((handle) => !Deferred.isDoneUnsafe(handle.outcome))
    return Effect.andThen(
      Effect.logWarning(
        `shard ${shard}: ${left.length} run(s) told to stop have not ended after ${SLOW_STOP_MILLIS} ms: ${left
          .slice(0, 5)
          .map((handle) => handle.state.executionId)
          .join(", ")}${left.length > 5 ? ", ..." : ""}`
      ),
      ended
    )
  })
}

export class Runs {
  private readonly running = new Map<string, RunHandle>()
  /**
   * Runs being started: registered before the first step that could yield, so that two callers
   * of `ensure` for one execution (a send and the shard's resumption) never start two runs.
   */
  private readonly starting = new Map<string, Deferred.Deferred<RunHandle | undefined>>()
  private readonly options: {
    /** The environment of unfenced runs; fenced runs get a copy with their journal. */
    readonly env: RunnerEnvironment
    /** The journal fenced runs write to (retrying transient faults). */
    readonly store: DurableExecutionJournal["Service"]
    readonly ownership: () => Ownership
    readonly services: Context.Context<never>
    readonly stopping: () => boolean
    /** A run parked its execution until `wakeAt`. */
    readonly parked: (wakeAt: number) => void
    /** A run settled: its execution id, and its final row when it completed (not when suspended). */
    readonly settled: (executionId: string, final: ExecutionRecord | undefined) => void
  }

  constructor(options: Runs["options"]) {
    this.options = options
  }

  get size(): number {
    return this.running.size
  }

  get(executionId: string): RunHandle | undefined {
    return this.running.get(executionId)
  }

  /** Whether `executionId` has a run here, or one being started. */
  has(executionId: string): boolean {
    return this.running.has(executionId) || this.starting.has(executionId)
  }

  /**
   * The run of `row`, started if none is in progress and this engine runs its shard; undefined
   * when another pod does. Registration is synchronous: one run per id. A stopping engine starts
   * nothing (interrupted): the next engine resumes the execution.
   */
  ensure(workflow: Any, row: ExecutionRecord, freshRequest?: unknown): Effect.Effect<RunHandle | undefined> {
    return Effect.suspend(() => {
      const existing = this.running.get(row.executionId)
      if (existing !== undefined) return Effect.succeed(existing)
      const pending = this.starting.get(row.executionId)
      if (pending !== undefined) return Deferred.await(pending)
      const { env, ownership, services } = this.options
      if (this.options.stopping()) return Effect.interrupt
      const owner = ownership()
      const fence = owner.runFence(owner.shardOf(row.executionId))
      if (fence === undefined) return Effect.succeed(undefined)
      const slot = Deferred.makeUnsafe<RunHandle | undefined>()
      this.starting.set(row.executionId, slot)
      let handle: RunHandle | undefined
      const runEnv: RunnerEnvironment =
        fence === null
          ? env
          : {
              ...env,
              fence,
              leaseHolds: () => owner.mayWrite(fence),
              journal: fenced(this.options.store, fence, owner, () =>
                handle?.state.stopNow({ _tag: "Shutdown" })
              )
            }
      const started = startRun(runEnv, workflow, row, freshRequest, services, (outcome) => {
        this.running.delete(row.executionId)
        if (outcome._tag === "Sleeping" && outcome.wakeAt !== null) this.options.parked(outcome.wakeAt)
        if (outcome._tag === "Completed") {
          this.options.settled(row.executionId, {
            ...row,
            status: outcome.status,
            result: outcome.result,
            reason: null,
            wakeAt: null
          })
        } else if (outcome._tag === "Suspended") {
          this.options.settled(row.executionId, undefined)
        }
      })
      return started.pipe(
        Effect.tap((started) =>
          Effect.sync(() => {
            handle = started
            // A run that already ended (it ran while this fiber yielded) is not registered.
            if (!Deferred.isDoneUnsafe(started.outcome)) this.running.set(row.executionId, started)
          })
        ),
        Effect.onExit((exit) =>
          Effect.sync(() => {
            this.starting.delete(row.executionId)
            Deferred.doneUnsafe(slot, exit)
          })
        )
      )
    })
  }

  /** Waits until a run of `executionId` that is already stopping has ended. */
  settled(executionId: string): Effect.Effect<void> {
    return Effect.suspend(() => {
      const handle = this.running.get(executionId)
      return handle?.state.stopping ? Effect.asVoid(Deferred.await(handle.outcome)) : Effect.void
    })
  }

  /** Stops the runs of `shard` (it moved, or the lease ran out) and waits for them to end. */
  stopShard(shard: number): Effect.Effect<void> {
    return Effect.suspend(() => {
      const owner = this.options.ownership()
      const handles = [...this.running].flatMap(([id, handle]) =>
        owner.shardOf(id) === shard ? [handle] : []
      )
      for (const handle of handles) handle.state.stopNow({ _tag: "Shutdown" })
      return untilEnded(shard, handles)
    })
  }

  /**
   * Hands the runs of `shard` over gently: attempts in progress may finish and record their
   * outcomes (no new one starts), for at most `deadlineMillis`; then the runs still going are
   * stopped as by `stopShard`. Returns once every run of the shard has ended.
   */
  drainShard(shard: number, deadlineMillis: number): Effect.Effect<void> {
    return Effect.suspend(() => {
      const owner = this.options.ownership()
      const handles = [...this.running].flatMap(([id, handle]) =>
        owner.shardOf(id) === shard ? [handle] : []
      )
      for (const handle of handles) {
        handle.state.draining = true
        // A run waiting in memory (a sleep raced against an activity, a signal) has no attempt to
        // finish: it stops at once; one between attempts stops at its next attempt.
        if (handle.state.activeAttempts === 0) handle.state.stopNow({ _tag: "Shutdown" })
      }
      const ended = Effect.forEach(handles, (handle) => Deferred.await(handle.outcome), { discard: true })
      return Effect.flatMap(Effect.timeoutOption(ended, deadlineMillis), (done) =>
        done._tag === "Some" ? Effect.void : this.stopShard(shard)
      )
    })
  }

  /** Stops every run (shutdown); returns their handles to wait for. */
  stopAll(): ReadonlyArray<RunHandle> {
    const handles = [...this.running.values()]
    for (const handle of handles) handle.state.stopNow({ _tag: "Shutdown" })
    return handles
  }
}
