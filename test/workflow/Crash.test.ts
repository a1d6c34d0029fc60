/**
 * I1/I2 with real processes: a child runs a workflow on the embedded store or on PostgreSQL and is
 * SIGKILLed in the middle of an activity; a new process resumes it from the journal.
 */
import { spawn } from "node:child_process"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { freshDatabase } from "../support/freshDatabase.ts"
import { testTempDir } from "../support/tempDir.ts"

const worker = join(import.meta.dirname, "crash", "worker.ts")

/** Runs the worker; with `killOn`, SIGKILLs it as soon as it prints that line. */
const runWorker = (args: ReadonlyArray<string>, killOn?: string) =>
  new Promise<{ stdout: string; code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    // The worker imports "effect-cluster": the condition resolves it to this repository's sources.
    const child = spawn(
      process.execPath,
      ["--no-warnings", "--conditions=@effect-cluster/source", worker, ...args],
      {
        stdio: ["ignore", "pipe", "pipe"]
      }
    )
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (chunk) => {
      stdout += chunk
      if (killOn !== undefined && stdout.includes(killOn)) child.kill("SIGKILL")
    })
    child.stderr.on("data", (chunk) => {
      stderr += chunk
    })
    child.on("error", reject)
    child.on("exit", (code, signal) => {
      if (code !== 0 && signal === null) reject(new Error(`worker failed (${code}): ${stderr}`))
      else resolve({ stdout, code, signal })
    })
  })

const sideEffects = (log: string) =>
  readFileSync(log, "utf8")
    .trim()
    .split("\n")
    .map((line) => line.split(" "))

/** Where each backend's journal lives: a file, or a fresh database of the test server. */
const stores = {
  sqlite: async (dir: string) => join(dir, "journal.db"),
  postgres: (_dir: string) => freshDatabase("crash")
}

for (const [backend, makeStore] of Object.entries(stores)) {
  describe(`crash recovery on ${backend} (SIGKILL)`, () => {
    for (const mode of ["block-in-b", "block-after-b"] as const) {
      it(`${mode}: completed activities are not re-run; b re-runs with the same persistenceId and attempt + 1`, async () => {
        const dir = testTempDir("effect-cluster-crash-")
        const journal = await makeStore(dir)
        const log = join(dir, "side-effects.log")
        const crashed = await runWorker([journal, log, mode], "BLOCKED")
        expect(crashed.signal).toBe("SIGKILL")
        const resumed = await runWorker([journal, log, "run"])
        expect(resumed.stdout).toContain("RESULT ABC")
        const effects = sideEffects(log)
        const expected =
          mode === "block-in-b"
            ? [
                ["a", "crashy@1/a", "1"],
                ["b", "crashy@1/b", "2"],
                ["c", "crashy@1/c", "1"]
              ]
            : [
                ["a", "crashy@1/a", "1"],
                ["b", "crashy@1/b", "1"],
                ["b", "crashy@1/b", "2"],
                ["c", "crashy@1/c", "1"]
              ]
        expect(effects).toEqual(expected)
        // A third process finds the execution complete: nothing runs again.
        const again = await runWorker([journal, log, "run"])
        expect(again.stdout).toContain("RESULT ABC")
        expect(sideEffects(log)).toEqual(expected)
      })
    }

    it("compensation: a crash between the charge and the refund resumes the refund, never re-charges", async () => {
      const dir = testTempDir("effect-cluster-crash-")
      const journal = await makeStore(dir)
      const log = join(dir, "side-effects.log")
      const crashed = await runWorker([journal, log, "block-in-refund"], "BLOCKED")
      expect(crashed.signal).toBe("SIGKILL")
      expect(sideEffects(log)).toEqual([
        ["charge", "compensating@1/charge", "1"],
        ["ship", "compensating@1/ship", "1"]
      ])
      const resumed = await runWorker([journal, log, "compensate"])
      expect(resumed.stdout).toContain("RESULT refunded")
      expect(sideEffects(log)).toEqual([
        ["charge", "compensating@1/charge", "1"],
        ["ship", "compensating@1/ship", "1"],
        ["refund", "compensating@1/refund", "2"]
      ])
    })

    it("Workflow.now and Workflow.random: a resumed process replays the values recorded before the kill", async () => {
      const dir = testTempDir("effect-cluster-crash-")
      const journal = await makeStore(dir)
      const log = join(dir, "side-effects.log")
      const crashed = await runWorker([journal, log, "values"], "BLOCKED")
      expect(crashed.signal).toBe("SIGKILL")
      const before = /VALUES (\S+) (\S+)/.exec(crashed.stdout)
      expect(before).not.toBeNull()
      await new Promise((resolve) => setTimeout(resolve, 20)) // the clock moves on
      const resumed = await runWorker([journal, log, "values"])
      expect(resumed.stdout).toContain(`VALUES ${before![1]} ${before![2]}`)
      expect(resumed.stdout).toContain(`RESULT ${before![1]} ${before![2]}`)
    })

    it("Workflow.sleep: killed while sleeping, a new process wakes it at the original deadline", async () => {
      const dir = testTempDir("effect-cluster-crash-")
      const journal = await makeStore(dir)
      const log = join(dir, "side-effects.log")
      const crashed = await runWorker([journal, log, "sleep"], "SLEEPING")
      expect(crashed.signal).toBe("SIGKILL")
      await new Promise((resolve) => setTimeout(resolve, 500)) // down for a while
      const resumed = await runWorker([journal, log, "sleep"])
      const [before, after] = /RESULT (\d+) (\d+)/.exec(resumed.stdout)!.slice(1).map(Number)
      const restartedAt = Number(/STARTED (\d+)/.exec(resumed.stdout)![1])
      expect(after).toBeGreaterThanOrEqual(before! + 2_500)
      // The deadline was kept: not a fresh 2.5 s from the restart (measured once the new engine
      // was ready, so that a slow start on a loaded machine does not count).
      expect(after).toBeLessThan(restartedAt + 2_500)
    })

    it("Signal.receive: killed while waiting, another process sends the signal and gets the result once", async () => {
      const dir = testTempDir("effect-cluster-crash-")
      const journal = await makeStore(dir)
      const log = join(dir, "side-effects.log")
      const crashed = await runWorker([journal, log, "signal-wait"], "WAITING")
      expect(crashed.signal).toBe("SIGKILL")
      const sender = await runWorker([journal, log, "signal-send"])
      expect(sender.stdout).toContain("SIGNALED true false")
      expect(sender.stdout).toContain("RESULT got now")
    })

    it("Saga: a crash in the middle of compensating resumes the compensation; none is skipped or repeated", async () => {
      const dir = testTempDir("effect-cluster-crash-")
      const journal = await makeStore(dir)
      const log = join(dir, "side-effects.log")
      const crashed = await runWorker([journal, log, "saga"], "BLOCKED")
      expect(crashed.signal).toBe("SIGKILL")
      const resumed = await runWorker([journal, log, "saga"])
      expect(resumed.stdout).toContain("RESULT compensated after declined")
      expect(sideEffects(log)).toEqual([
        ["reserve-hotel", "trip@1/reserve-hotel", "1"],
        ["reserve-flight", "trip@1/reserve-flight", "1"],
        ["charge", "trip@1/charge", "1"],
        ["cancel-flight", "trip@1/cancel-flight", "2"],
        ["cancel-hotel", "trip@1/cancel-hotel", "1"]
      ])
    })

    it("Activity.heartbeat: killed mid-upload, the retry in a new process resumes from the last heartbeat", async () => {
      const dir = testTempDir("effect-cluster-crash-")
      const journal = await makeStore(dir)
      const log = join(dir, "side-effects.log")
      const crashed = await runWorker([journal, log, "heartbeat"], "BLOCKED")
      expect(crashed.signal).toBe("SIGKILL")
      expect(crashed.stdout).toContain("RESUMING FROM 0")
      const resumed = await runWorker([journal, log, "heartbeat"])
      expect(resumed.stdout).toContain("RESUMING FROM 3")
      expect(resumed.stdout).toContain("RESULT uploaded from 3")
    })

    it("Workflow.executeChild: killed inside the child, a new process resumes both; one child, nothing repeated", async () => {
      const dir = testTempDir("effect-cluster-crash-")
      const journal = await makeStore(dir)
      const log = join(dir, "side-effects.log")
      const crashed = await runWorker([journal, log, "child"], "BLOCKED")
      expect(crashed.signal).toBe("SIGKILL")
      const resumed = await runWorker([journal, log, "child"])
      expect(resumed.stdout).toContain("RESULT delivered")
      expect(sideEffects(log)).toEqual([
        ["pay", "parent@1/pay", "1"],
        ["deliver", "deliver@1/deliver", "2"]
      ])
    })
  })
}
