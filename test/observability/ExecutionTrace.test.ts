/**
 * The trace ids of executions are part of what operators see (a trace looked up by id, before and
 * after a deploy): pinned by test vectors, so that a change of the derivation is deliberate.
 */
import { describe, expect, it } from "@effect/vitest"
import { ExecutionTrace } from "effect-cluster"

describe("ExecutionTrace", () => {
  it("derives a 32-hex-digit trace id and a 16-hex-digit span id from the execution id", () => {
    const vectors = ["ProcessPayment@order-1", "ProcessPayment@order-2", "x", "日本語/é"].map((id) => [
      id,
      ExecutionTrace.traceIdOf(id),
      ExecutionTrace.spanIdOf(id)
    ])
    expect(vectors).toMatchInlineSnapshot(`
      [
        [
          "ProcessPayment@order-1",
          "8d75831511a28bc129bc0075d27daf4b",
          "6af6c569a7629952",
        ],
        [
          "ProcessPayment@order-2",
          "0640f7ef3498792c58e7a827f4fbab65",
          "6d36ff5ad41655d7",
        ],
        [
          "x",
          "0048bd7cb6b8514d3a660241ec3620fc",
          "0bc9469f3a00b695",
        ],
        [
          "日本語/é",
          "75580da4161ea358cff2d68a3b3db357",
          "788116e0263e703f",
        ],
      ]
    `)
    for (const [, traceId, spanId] of vectors) {
      expect(traceId).toMatch(/^[0-9a-f]{32}$/)
      expect(spanId).toMatch(/^[0-9a-f]{16}$/)
    }
    const span = ExecutionTrace.spanOf("x")
    expect([span.traceId, span.spanId, span.sampled]).toEqual([
      ExecutionTrace.traceIdOf("x"),
      ExecutionTrace.spanIdOf("x"),
      true
    ])
  })

  it("the ids of executions one character apart look unrelated", () => {
    const a = ExecutionTrace.traceIdOf("order-10")
    const b = ExecutionTrace.traceIdOf("order-11")
    const same = [...a].filter((digit, i) => digit === b[i]).length
    // 32 random hex digits share ~2 positions; a weak mix would share most of them.
    expect(same).toBeLessThan(10)
  })
})
