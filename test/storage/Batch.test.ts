/**
 * How a group-commit batch merges the rows of its writes (`describeBatch`): an attempt's outcome
 * that lands in the same batch as its own marker keeps the marker's start times, so the journal
 * still knows when that attempt started.
 */
import { describe, expect, it } from "vitest"
import { describeBatch } from "../../src/storage/sql/internal/batch.ts"

const attempt = (n: number) => ({
  executionId: "e",
  stepKey: "charge",
  activityId: "charge",
  seq: 1,
  previous: null,
  attempt: n
})

describe("describeBatch", () => {
  it("an outcome in the batch of its attempt's marker keeps the marker's start times", () => {
    const batch = describeBatch([
      { _tag: "Write", write: { executionId: "e", outcomes: [], attempt: attempt(2), now: 10 } },
      {
        _tag: "Write",
        write: { executionId: "e", outcomes: [{ ...attempt(2), outcome: '{"_tag":"Success"}' }], now: 20 }
      }
    ])
    expect(batch.steps).toEqual([
      expect.objectContaining({ attempt: 2, started_at: 10, attempt_started_at: 10, completed_at: 20 })
    ])
  })

  it("a marker sets the attempt's start; an outcome alone leaves it to the stored row (null)", () => {
    const marker = describeBatch([
      { _tag: "Write", write: { executionId: "e", outcomes: [], attempt: attempt(3), now: 30 } }
    ])
    expect(marker.steps).toEqual([
      expect.objectContaining({ attempt: 3, attempt_started_at: 30, outcome: null })
    ])
    const outcome = describeBatch([
      {
        _tag: "Write",
        write: { executionId: "e", outcomes: [{ ...attempt(3), outcome: '{"_tag":"Success"}' }], now: 40 }
      }
    ])
    expect(outcome.steps).toEqual([expect.objectContaining({ attempt_started_at: null, completed_at: 40 })])
    // An outcome of another attempt than the marker's in the batch does not take its time.
    const other = describeBatch([
      { _tag: "Write", write: { executionId: "e", outcomes: [], attempt: attempt(1), now: 50 } },
      {
        _tag: "Write",
        write: { executionId: "e", outcomes: [{ ...attempt(2), outcome: '{"_tag":"Success"}' }], now: 60 }
      }
    ])
    expect(other.steps).toEqual([expect.objectContaining({ attempt: 2, attempt_started_at: null })])
  })
})
