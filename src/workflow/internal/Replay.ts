/**
 * Replay bookkeeping of one execution run: which recorded steps the workflow has asked for, how
 * many outcomes it has consumed, and the determinism check (I7).
 *
 * The check is causal rather than a strict sequence, so that concurrent activities (forEach,
 * race) replay in whatever order the scheduler asks them: each step records `after`, the number of
 * outcomes the workflow had consumed when it first asked the step. A deterministic workflow can
 * only ask a recorded step once it has consumed at least that many outcomes again, and it asks no
 * new step while a recorded step that it should already have reached is still un-asked.
 */
import type { StepRecord } from "../DurableExecutionJournal.ts"

/** A divergence between the journal and the workflow code. */
export interface Divergence {
  readonly expected: string
  readonly actual: string
}

export class Replay {
  private readonly recorded: Map<string, StepRecord>
  private readonly occurrences = new Map<string, number>()
  private readonly asked = new Set<string>()
  private nextSeq: number
  /** Outcomes handed to the workflow so far in this run (replayed or fresh). */
  delivered = 0

  constructor(steps: ReadonlyArray<StepRecord>) {
    this.recorded = new Map(steps.map((step) => [step.stepKey, step]))
    this.nextSeq = steps.reduce((max, step) => Math.max(max, step.seq), 0) + 1
  }

  /** The key of the next occurrence of `activityId` in this run: `id`, then `id#2`, `id#3`, ... */
  nextStepKey(activityId: string): string {
    const n = (this.occurrences.get(activityId) ?? 0) + 1
    this.occurrences.set(activityId, n)
    return n === 1 ? activityId : `${activityId}#${n}`
  }

  recordedStep(stepKey: string): StepRecord | undefined {
    return this.recorded.get(stepKey)
  }

  /** Checks that asking the recorded `step` now is consistent with the journal. */
  checkRecorded(step: StepRecord): Divergence | undefined {
    if (this.delivered >= step.after) return undefined
    const expected = this.firstUnasked((candidate) => candidate.seq < step.seq)
    return { expected: describe(expected), actual: describe(step) }
  }

  /**
   * A recorded step with an outcome that the workflow should already have asked for, but has not:
   * asking a new step while it exists means the code skipped it.
   */
  overdueStep(): StepRecord | undefined {
    return this.firstUnasked((candidate) => candidate.after <= this.delivered)
  }

  /** A recorded outcome that this run never asked for (checked when the workflow completes). */
  unaskedOutcome(): StepRecord | undefined {
    return this.firstUnasked(() => true)
  }

  markAsked(stepKey: string): void {
    this.asked.add(stepKey)
  }

  allocateSeq(): number {
    return this.nextSeq++
  }

  private firstUnasked(predicate: (step: StepRecord) => boolean): StepRecord | undefined {
    let first: StepRecord | undefined
    for (const step of this.recorded.values()) {
      if (step.outcome === null || this.asked.has(step.stepKey) || !predicate(step)) continue
      if (first === undefined || step.seq < first.seq) first = step
    }
    return first
  }
}

/** `"charge-card" (step 2)` */
export const describe = (step: StepRecord | undefined): string =>
  step === undefined ? "an earlier step" : `"${step.stepKey}" (recorded step ${step.seq})`
