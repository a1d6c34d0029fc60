/**
 * The verification runner's short profile (`npm run verify`, issue #20): three pods as child
 * processes running workflows (activities, durable sleeps, signals, child workflows) and entities
 * (persisted counters, volatile asks) under a seeded schedule of faults, on SQLite and on
 * PostgreSQL; the runner's checkers must find no anomaly (it exits 1 with the seed
 * and the schedule when one does). Fixed seeds, so a failure here replays with the printed command.
 */
import { spawnSync } from "node:child_process"
import { describe, expect, it } from "vitest"
import { nodeBinary, repoRoot } from "../support/ChildPod.ts"

const verify = (args: ReadonlyArray<string>) =>
  spawnSync(nodeBinary, ["--no-warnings", "--conditions=@effect-cluster/source", "verify/run.ts", ...args], {
    cwd: repoRoot,
    encoding: "utf8",
    timeout: 170_000
  })

describe("npm run verify, short profile", () => {
  it.each([
    ["sqlite", "7"],
    // Seed 11: every pod's sessions ended by the server (pg_terminate_backend), pods restarted
    // with their clocks ahead and behind, a rolling restart. A pod process that dies of its
    // connections being cut is an anomaly (VERIFY.md, finding 7).
    ["postgres", "11"]
  ])(
    "%s, seed %s: faults injected, every acknowledged execution ends, no anomaly",
    (backend, seed) => {
      const result = verify(["--seed", seed, "--seconds", "15", "--backend", backend])
      const output = `${result.stdout}\n${result.stderr}`
      expect(result.status, output).toBe(0)
      const line = /verify-summary (.*)/.exec(output)
      expect(line, output).not.toBeNull()
      const summary = JSON.parse(line![1]!) as {
        readonly [count in
          | "executions"
          | "stored"
          | "attempts"
          | "incrementsAcked"
          | "reads"
          | "asks"
          | "signals"
          | "anomalies"]: number
      } & { readonly faults: Record<string, number> }
      expect(summary.anomalies).toBe(0)
      // The workload ran in full: workflows (with their children and signals), increments, reads, asks.
      expect(summary.executions, output).toBeGreaterThan(10)
      expect(summary.attempts).toBeGreaterThanOrEqual(2 * summary.executions)
      expect(summary.stored).toBeGreaterThan(summary.executions)
      expect(summary.signals).toBeGreaterThan(0)
      expect(summary.incrementsAcked).toBeGreaterThan(0)
      expect(summary.reads).toBeGreaterThan(0)
      expect(summary.asks).toBeGreaterThan(0)
      expect(Object.values(summary.faults).reduce((sum, n) => sum + n, 0)).toBeGreaterThanOrEqual(2)
    },
    180_000
  )
})
