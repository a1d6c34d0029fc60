import { describe, expect, it } from "vitest"
import * as Lines from "./lines.ts"

interface Line {
  readonly sent?: number
  readonly counts?: number
}

describe("a demo supervisor's view of a child's lines", () => {
  it("a wait for a line the child printed before the wait began ends at once", async () => {
    const lines = Lines.make<Line>()
    lines.push({ sent: 450 })
    lines.push({ sent: 500 })
    // The supervisor restarted another pod meanwhile: the line came before it waited.
    expect(await lines.reached((line) => line.sent === 500)).toEqual({ sent: 500 })
  })

  it("a wait for a line to come ends when it comes", async () => {
    const lines = Lines.make<Line>()
    const waited = lines.reached((line) => line.sent === 500)
    lines.push({ sent: 500 })
    expect(await waited).toEqual({ sent: 500 })
  })

  it("an answer to what was just asked is a later line, not an earlier answer", async () => {
    const lines = Lines.make<Line>()
    lines.push({ counts: 1 })
    const answer = lines.next((line) => line.counts !== undefined)
    lines.push({ counts: 2 })
    expect(await answer).toEqual({ counts: 2 })
  })

  it("a wait still open when the child exits fails, and so does one begun after", async () => {
    const lines = Lines.make<Line>()
    const waited = lines.next((line) => line.sent === 500)
    lines.close(new Error("pod east exited"))
    await expect(waited).rejects.toThrow("pod east exited")
    await expect(lines.reached((line) => line.sent === 500)).rejects.toThrow("pod east exited")
  })
})
