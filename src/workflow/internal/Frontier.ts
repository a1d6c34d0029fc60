/**
 * The order in which a run may go past what its journal recorded (I7). Two rules:
 *
 * 1. **The frontier rule**: while the journal holds recorded steps that the run has not asked for
 *    yet, no step absent from the journal runs. A step's fiber is not always known (a new step
 *    asked first in a fiber cannot be matched to a recorded one), so the per-fiber check of
 *    `Replay.ask` cannot tell a branch the new code added from a change of what the old code did
 *    first. Instead of guessing, the new step waits here; once every recorded step has been asked,
 *    the waiting steps run, in the order they were asked.
 * 2. **Recorded order**: a recorded outcome is delivered only once every recorded step that had
 *    started when it was recorded (`StepRecord.completedAfter`) has been asked. Replayed outcomes
 *    are instant, so without this a fail-fast `Effect.all` or a race would cut off, on replay, a
 *    sibling that the first run had reached before the failure or the win.
 *
 * Replaying recorded steps is synchronous (their outcomes are in memory), so the fibers catch up at
 * once. When the run makes no progress while something waits here (no step asked during
 * `QUIET_TURNS` scheduler turns, no attempt in progress), the code no longer reaches a recorded
 * step: the run stops with `stalled`, naming that step and what waits for it. Nothing of a waiting
 * new step has run and nothing was written for it.
 *
 * A replay-only run (`WorkflowReplay`) ends the same way once every fiber stopped at the frontier.
 */
import { Deferred, Effect, Exit } from "effect"
import type { StepRecord } from "../DurableExecutionJournal.ts"
import type { Replay } from "./Replay.ts"

/** What the frontier watches of its run (see `ExecutionState`). */
export interface FrontierRun {
  readonly replay: Replay
  /** Steps asked so far in this run. */
  readonly asks: number
  /** Attempts in progress: while one runs, the run may still reach recorded steps. */
  readonly activeAttempts: number
  readonly stopping: boolean
}

/** How the frontier stops a run that cannot go on. */
export interface FrontierEnds {
  /**
   * Recorded steps remain that the run no longer reaches: `expected` is the first of them, `actual`
   * describes the new step asked instead.
   */
  readonly stalled: (expected: StepRecord, actual: string) => void
  /** A replay-only run has replayed all it could (every fiber stopped at the frontier). */
  readonly replayed: () => void
}

interface Held {
  readonly stepKey: string
  readonly turn: Deferred.Deferred<void>
}

interface HeldOutcome {
  readonly step: StepRecord
  readonly turn: Deferred.Deferred<void>
}

export class Frontier {
  private readonly run: FrontierRun
  private readonly ends: FrontierEnds
  /** New steps waiting for their turn (or released and not yet resumed), in the order asked. */
  private readonly held: Array<Held> = []
  /** Recorded outcomes waiting for the steps that had started before them to be asked. */
  private outcomes: Array<HeldOutcome> = []
  private watching = false
  /** A replay-only run had a fiber stop at the frontier. */
  private reached = false
  /** Completed when the attempts in progress are over (see `attemptsOver`). */
  private attemptsIdle: Deferred.Deferred<void> | undefined = undefined

  constructor(run: FrontierRun, ends: FrontierEnds) {
    this.run = run
    this.ends = ends
  }

  /**
   * A step absent from the journal is asked: `undefined` when it may run now, else the effect that
   * waits for its turn (every recorded step asked, and the steps asked before it resumed).
   */
  admitNew(stepKey: string): Effect.Effect<void> | undefined {
    if (this.held.length === 0 && this.run.replay.allAsked()) return undefined
    const entry: Held = { stepKey, turn: Deferred.makeUnsafe<void>() }
    this.held.push(entry)
    if (this.run.replay.allAsked()) Deferred.doneUnsafe(entry.turn, Exit.void)
    const wait = Effect.ensuring(
      Deferred.await(entry.turn),
      Effect.sync(() => {
        const index = this.held.indexOf(entry)
        if (index >= 0) this.held.splice(index, 1)
      })
    )
    return Effect.andThen(this.watch(), wait)
  }

  /**
   * A recorded outcome is asked: `undefined` when it may be delivered now, else the effect that
   * waits until the steps that had started before it was recorded are asked.
   */
  admitOutcome(step: StepRecord): Effect.Effect<void> | undefined {
    if (this.run.replay.deliverable(step)) return undefined
    const entry: HeldOutcome = { step, turn: Deferred.makeUnsafe<void>() }
    this.outcomes.push(entry)
    return Effect.andThen(this.watch(), Deferred.await(entry.turn))
  }

  /**
   * A recorded step was asked: the outcomes it was the last to wait for are delivered (in the
   * order they were recorded), and once no recorded step is left unasked, the held new steps get
   * their turn, in the order asked.
   */
  recordedAsked(): void {
    if (this.outcomes.length > 0) this.releaseOutcomes()
    if (this.held.length === 0 || !this.run.replay.allAsked()) return
    for (const entry of this.held) Deferred.doneUnsafe(entry.turn, Exit.void)
  }

  private releaseOutcomes(): void {
    const ready = this.outcomes.filter((entry) => this.run.replay.deliverable(entry.step))
    if (ready.length === 0) return
    this.outcomes = this.outcomes.filter((entry) => !ready.includes(entry))
    ready.sort(
      (a, b) => (a.step.completedAfter ?? 0) - (b.step.completedAfter ?? 0) || a.step.seq - b.step.seq
    )
    for (const entry of ready) Deferred.doneUnsafe(entry.turn, Exit.void)
  }

  /** The run's attempts in progress are over (`activeAttempts` fell to 0). */
  attemptsOver(): void {
    const idle = this.attemptsIdle
    this.attemptsIdle = undefined
    if (idle !== undefined) Deferred.doneUnsafe(idle, Exit.void)
  }

  /** A replay-only run: a fiber reached the frontier and waits there for good. */
  reachedFrontier(): Effect.Effect<never> {
    this.reached = true
    return Effect.andThen(this.watch(), Effect.never)
  }

  /** Whether some step or outcome still waits for its turn. */
  private waiting(): boolean {
    return this.outcomes.length > 0 || this.held.some((entry) => !Deferred.isDoneUnsafe(entry.turn))
  }

  /** Starts the watcher that detects a run making no progress (once). */
  private watch(): Effect.Effect<void> {
    if (this.watching) return Effect.void
    this.watching = true
    return Effect.asVoid(Effect.forkDetach(this.watcher()))
  }

  private watcher(): Effect.Effect<void> {
    return Effect.gen({ self: this }, function* () {
      let quiet = 0
      while (quiet < QUIET_TURNS) {
        if (this.run.stopping) return
        if (!this.reached && !this.waiting()) {
          this.watching = false
          return
        }
        if (this.run.activeAttempts > 0) {
          // An attempt in progress may lead its fiber on to recorded steps: wait for it.
          quiet = 0
          this.attemptsIdle ??= Deferred.makeUnsafe<void>()
          yield* Deferred.await(this.attemptsIdle)
          continue
        }
        const before = this.run.asks
        yield* Effect.yieldNow
        quiet = this.run.asks === before ? quiet + 1 : 0
      }
      this.watching = false
      const unasked = this.run.replay.firstUnasked()
      const first = this.held.find((entry) => !Deferred.isDoneUnsafe(entry.turn))
      if (first !== undefined && unasked !== undefined) {
        return this.ends.stalled(unasked, `the new step "${first.stepKey}" instead (nothing of it ran)`)
      }
      const outcome = this.outcomes[0]
      const missing =
        outcome === undefined
          ? undefined
          : this.run.replay.firstUnaskedThrough(outcome.step.completedAfter ?? 0)
      if (outcome !== undefined && missing !== undefined) {
        return this.ends.stalled(
          missing,
          `no step that reaches it (the recorded outcome of "${outcome.step.stepKey}" comes after it)`
        )
      }
      if (this.reached) this.ends.replayed()
    })
  }
}

/**
 * Scheduler turns without a new step after which a run is considered stuck at its frontier:
 * replaying recorded steps is synchronous, so a fiber that can go on does so within a few turns.
 */
const QUIET_TURNS = 64
