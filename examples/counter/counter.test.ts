/**
 * The counter demo (`npm run counter`, and `-- --postgres URL`) as a newcomer runs it: three pods,
 * one SIGKILLed mid-stream and back, and every count read with `GetCurrent` equal to what the
 * messages add up to.
 */
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { freshDatabase } from "../../test/support/freshDatabase.ts"
import { testTempDir } from "../../test/support/tempDir.ts"
import { runDemo as run } from "../shared/runDemo.ts"

const main = join(import.meta.dirname, "main.ts")

const runDemo = (cwd: string, args: ReadonlyArray<string>) => run(main, cwd, args)

const expectExact = (code: number | null, output: string) => {
  expect(output).toContain("💥 SIGKILL east mid-stream")
  expect(output).toContain("✔ 1000 messages accepted")
  expect(output).toMatch(/\n1000 messages handled; \d+ handled again after the kill/)
  expect(output).toContain("✔ every count is exact")
  // The cross-pod asks went over the network, and the demo says what they cost.
  expect(output).toMatch(
    /to counters on other pods \(over the network\): [1-9]\d* asks, p50 [\d.]+ ms, slowest [\d.]+ ms/
  )
  // The table: 20 counters, each line's two figures equal.
  const rows = [...output.matchAll(/^(counter-\d+)\s+(-?\d+)\s+(-?\d+)$/gm)]
  expect(rows).toHaveLength(20)
  for (const [, , expected, actual] of rows) expect(actual).toBe(expected)
  expect(code, output).toBe(0)
}

describe("npm run counter", () => {
  it("on the embedded store: every count exact after a SIGKILL mid-stream", async () => {
    const data = testTempDir("counter-demo-")
    const { code, output } = await runDemo(data, ["--data", data])
    expectExact(code, output)
  })

  it("on PostgreSQL (-- --postgres URL)", async () => {
    const data = testTempDir("counter-demo-pg-")
    const url = await freshDatabase("counter_demo")
    const { code, output } = await runDemo(data, ["--postgres", url, "--data", data])
    expectExact(code, output)
  })

  it("a bad argument: one clear line and exit code 2, nothing started", async () => {
    const { code, output } = await runDemo(testTempDir("counter-demo-bad-"), ["--postgres", "localhost:5432"])
    expect(code).toBe(2)
    expect(output).toContain("✘ bad arguments")
    expect(output).toContain("usage: npm run counter")
    expect(output).not.toContain("is up")
  })
})
