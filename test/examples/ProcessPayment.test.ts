/**
 * The README's demo (`npm start`, and `npm start -- --postgres URL`) as a newcomer runs it: the
 * worker is SIGKILLed mid-charge, a new one resumes, and the card is charged exactly once.
 */
import { execFile } from "node:child_process"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { freshDatabase } from "../support/freshDatabase.ts"
import { testTempDir } from "../support/tempDir.ts"

const main = join(import.meta.dirname, "..", "..", "examples", "process-payment", "main.ts")

const runDemo = (args: ReadonlyArray<string>) =>
  new Promise<{ code: number | null; output: string }>((resolve) => {
    // From a fresh directory: the embedded store goes to its .data folder.
    const cwd = testTempDir("demo-")
    execFile(
      process.execPath,
      // As `npm start` runs it: "effect-cluster" resolves to this repository's sources, not dist/.
      ["--no-warnings", "--conditions=@effect-cluster/source", main, ...args],
      { cwd, encoding: "utf8" },
      (error, stdout, stderr) =>
        resolve({ code: error === null ? 0 : (error.code as number | null), output: stdout + stderr })
    )
  })

describe("the ProcessPayment demo", () => {
  it("on the embedded store: killed mid-charge, resumed, charged exactly once", async () => {
    const { code, output } = await runDemo([])
    expect(output).toContain("was killed by SIGKILL")
    expect(output).toContain("✔ card 4242-4242 was charged exactly once for order-1")
    expect(code).toBe(0)
  })

  it("on PostgreSQL with --postgres URL, twice in a row", async () => {
    const url = await freshDatabase("demo")
    for (let run = 0; run < 2; run++) {
      const { code, output } = await runDemo(["--postgres", url])
      expect(output).toContain("journal: postgres://")
      expect(output).toContain("was killed by SIGKILL")
      expect(output).toContain("✔ card 4242-4242 was charged exactly once for order-1")
      expect(code).toBe(0)
    }
  })

  it("a malformed --postgres value is refused with a usage line", async () => {
    const { code, output } = await runDemo(["--postgres", "localhost:5432"])
    expect(code).toBe(2)
    expect(output).toContain("expected a PostgreSQL URL")
    expect(output).toContain("usage: npm start [-- --postgres URL]")
  })
})
