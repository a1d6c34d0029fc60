/**
 * The verification runner's short profile (`npm run verify`, issue #20): three pods as child
 * processes under a seeded schedule of SIGKILLs, pauses past the lease and graceful restarts, on
 * SQLite and on PostgreSQL; the runner's checkers must find no anomaly (it exits 1 with the seed
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
    ["postgres", "11"]
  ])(
    "%s, seed %s: faults injected, every acknowledged execution ends, no anomaly",
    (backend, seed) => {
      const result = verify(["--seed", seed, "--seconds", "12", "--backend", backend])
      const output = `${result.stdout}\n${result.stderr}`
      expect(result.status, output).toBe(0)
      const summary =
        /verify: (\d+) executions acknowledged, (\d+) stored, (\d+) activity attempts, (\d+) faults, 0 anomalies/.exec(
          output
        )
      expect(summary, output).not.toBeNull()
      const [, acknowledged, , attempts, faults] = summary!.map(Number)
      expect(acknowledged).toBeGreaterThan(100)
      expect(attempts).toBeGreaterThanOrEqual(2 * acknowledged!)
      expect(faults).toBeGreaterThanOrEqual(2)
    },
    180_000
  )
})
