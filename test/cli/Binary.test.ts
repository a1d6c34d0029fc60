/**
 * The real `effect-cluster` binary (bin/effect-cluster.js, a process of its own), for what only a
 * process shows: it starts, prints to its own streams, and exits with the code of the outcome —
 * 0 done, 1 the command could not do what was asked, 2 a wrong command line. The other CLI tests
 * run the same command in-process (`support.ts`).
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Layer } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { SqliteJournal } from "../../src/index.ts"
import { binary, cli } from "./support.ts"

let dir: string
let file: string

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "effect-cluster-cli-binary-"))
  file = join(dir, "store.db")
  await Effect.runPromise(Effect.scoped(Layer.build(SqliteJournal.layer({ filename: file }))))
})

afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe("the effect-cluster binary", () => {
  it("starts, prints to its streams and exits 0, 1 or 2 as the outcome says; in-process runs say the same", async () => {
    const cases: ReadonlyArray<readonly [ReadonlyArray<string>, number]> = [
      [["--version"], 0],
      [["executions", "list", "--file", file, "--json"], 0],
      [["executions", "show", "no-such-execution", "--file", file], 1],
      [["executions", "list"], 1],
      [["executions", "list", "--file", file, "--limit", "many"], 2],
      [["no-such-command"], 2]
    ]
    const runs = await Promise.all(cases.map(([args]) => binary(args)))
    for (const [index, [args, code]] of cases.entries()) {
      const run = runs[index]!
      const what = `effect-cluster ${args.join(" ")}: ${JSON.stringify(run)}`
      expect(run.code, what).toBe(code)
      if (code === 0) {
        expect(run.stdout, what).not.toBe("")
        expect(run.stderr, what).toBe("")
      } else {
        expect(run.stdout, what).toBe("")
        expect(run.stderr.trim().split("\n"), what).toHaveLength(1)
        expect(run.stderr, what).toMatch(/^effect-cluster: /)
      }
      // The in-process run of the other tests is the same command: same code, same output.
      expect(await cli(args), what).toEqual(run)
    }
    expect(runs[0]!.stdout).toMatch(/^effect-cluster v\d+\.\d+\.\d+/)
    expect(JSON.parse(runs[1]!.stdout)).toMatchObject({ executions: [] })
  }, 60_000)
})
