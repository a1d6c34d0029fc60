/**
 * Replay bookkeeping of one execution run: which recorded steps the workflow has asked for, and
 * the determinism check (I7).
 *
 * The check is per fiber, so that concurrent activities (forEach, all, race) replay in whatever
 * order the scheduler runs them: each step records `previous`, the step that the *same fiber*
 * asked just before it (null for a fiber's first step). Workflow code is deterministic and effect
 * forks one fiber per concurrent branch, so on replay every fiber asks the same steps in the same
 * order. A fiber that asks a recorded step after a different previous step, or asks a new step
 * where it recorded another one, took another path: that is a divergence.
 */
import type { StepRecord } from "../DurableExecutionJournal.ts"

/** A divergence between the journal and the workflow code. */
export interface Divergence {
  readonly expected: string
  readonly actual: string
}

export class Replay {
  private readonly recorded: Map<string, StepRecord>
  /** Recorded steps by the step that preceded them in their fiber. */
  private readonly byPrevious = new Map<string, StepRecord>()
  private readonly occurrences = new Map<string, number>()
  private readonly asked = new Set<string>()
  /**
   * The recorded steps by seq, which of them were asked, and how many from the start all were
   * (every recorded step is asked once the prefix covers them all).
   */
  private readonly bySeq: ReadonlyArray<StepRecord>
  private readonly indexOf = new Map<string, number>()
  private readonly askedAt: Uint8Array
  private askedPrefix = 0
  /** The last step each fiber of this run asked. */
  private readonly lastOfFiber = new WeakMap<object, string>()
  private nextSeq: number

  constructor(steps: ReadonlyArray<StepRecord>) {
    this.recorded = new Map()
    // Journals return steps by seq; anything else is sorted here.
    let sorted = true
    for (let i = 0; i < steps.length; i++) {
      const step = steps[i]!
      this.recorded.set(step.stepKey, step)
      if (step.previous !== null) this.byPrevious.set(step.previous, step)
      if (i > 0 && steps[i - 1]!.seq > step.seq) sorted = false
    }
    this.bySeq = sorted ? steps : [...steps].sort((a, b) => a.seq - b.seq)
    for (let i = 0; i < this.bySeq.length; i++) this.indexOf.set(this.bySeq[i]!.stepKey, i)
    this.askedAt = new Uint8Array(this.bySeq.length)
    this.nextSeq = (this.bySeq[this.bySeq.length - 1]?.seq ?? 0) + 1
  }

  /** The key of the next occurrence of `activityId` in this run: `id`, then `id#2`, `id#3`, ... */
  nextStepKey(activityId: string): string {
    const key = this.peekStepKey(activityId)
    this.occurrences.set(activityId, (this.occurrences.get(activityId) ?? 0) + 1)
    return key
  }

  /** The key `nextStepKey` would return, without counting the occurrence. */
  peekStepKey(activityId: string): string {
    const n = (this.occurrences.get(activityId) ?? 0) + 1
    return n === 1 ? activityId : `${activityId}#${n}`
  }

  recordedStep(stepKey: string): StepRecord | undefined {
    return this.recorded.get(stepKey)
  }

  /** The step `fiber` asked last in this run, null if none. */
  previousOf(fiber: object): string | null {
    return this.lastOfFiber.get(fiber) ?? null
  }

  /**
   * Records that `fiber` asks `stepKey` now, and checks it against the journal. `recorded` is the
   * journal's row for that step, if any.
   */
  ask(fiber: object, stepKey: string, recorded: StepRecord | undefined): Divergence | undefined {
    const previous = this.previousOf(fiber)
    this.lastOfFiber.set(fiber, stepKey)
    this.asked.add(stepKey)
    if (recorded !== undefined) {
      this.askedAt[this.indexOf.get(stepKey)!] = 1
      while (this.askedPrefix < this.askedAt.length && this.askedAt[this.askedPrefix] === 1)
        this.askedPrefix++
      if (recorded.previous === previous) return undefined
      return { expected: this.describeExpected(previous), actual: describe(recorded) }
    }
    const expected = previous === null ? undefined : this.byPrevious.get(previous)
    if (expected === undefined || this.asked.has(expected.stepKey)) return undefined
    return { expected: describe(expected), actual: `the new step "${stepKey}"` }
  }

  /**
   * Whether every recorded step has been asked for: only then may a step absent from the journal
   * run (see `Frontier`).
   */
  allAsked(): boolean {
    return this.askedPrefix === this.bySeq.length
  }

  /**
   * Whether a recorded outcome may be delivered now: every recorded step that had started when it
   * was recorded (`completedAfter`) has been asked, so the run is where it was then.
   */
  deliverable(step: StepRecord): boolean {
    const after = step.completedAfter
    if (after == null || this.askedPrefix === this.bySeq.length) return true
    return this.bySeq[this.askedPrefix]!.seq > after
  }

  /** The first recorded step (by seq) that this run has not asked for, among those up to `seq`. */
  firstUnaskedThrough(seq: number): StepRecord | undefined {
    const step = this.firstUnasked()
    return step !== undefined && step.seq <= seq ? step : undefined
  }

  /** The highest step seq this execution has started (recorded, or allocated by this run). */
  lastSeq(): number {
    return this.nextSeq - 1
  }

  /** The recorded step that followed `fiber`'s last step, if the fiber never asked it. */
  skippedAfter(fiber: object): StepRecord | undefined {
    const previous = this.previousOf(fiber)
    const next = previous === null ? undefined : this.byPrevious.get(previous)
    return next === undefined || this.asked.has(next.stepKey) ? undefined : next
  }

  /**
   * Whether `fiber` is replaying history recorded before it: a step it has not asked yet was
   * recorded right after its last step (or, for a fiber's first step, a recorded first step is
   * still unasked). A `Workflow.version` check that finds no record of itself there was added to
   * the code after that history was written.
   */
  inRecordedHistory(fiber: object): boolean {
    const previous = this.previousOf(fiber)
    if (previous !== null) {
      const next = this.byPrevious.get(previous)
      return next !== undefined && !this.asked.has(next.stepKey)
    }
    return this.firstUnasked(true) !== undefined
  }

  /**
   * The earliest recorded step (by seq) that this run has not asked for, if any; with
   * `fiberFirst`, only among steps that were the first of their fiber.
   */
  firstUnasked(fiberFirst = false): StepRecord | undefined {
    if (!fiberFirst) return this.bySeq[this.askedPrefix]
    let first: StepRecord | undefined
    for (const step of this.recorded.values()) {
      if (this.asked.has(step.stepKey) || step.previous !== null) continue
      if (first === undefined || step.seq < first.seq) first = step
    }
    return first
  }

  allocateSeq(): number {
    return this.nextSeq++
  }

  private describeExpected(previous: string | null): string {
    if (previous !== null) {
      const next = this.byPrevious.get(previous)
      return next === undefined ? `nothing after "${previous}"` : describe(next)
    }
    const first = this.firstUnasked(true)
    return first === undefined ? "no further step" : describe(first)
  }
}

/** `"charge-card" (recorded step 2)` */
export const describe = (step: StepRecord): string => `"${step.stepKey}" (recorded step ${step.seq})`
