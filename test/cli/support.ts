/**
 * Runs the `effect-cluster` command in this process (`src/cli/run.ts`, what `main.ts` runs with
 * the process's streams), or the real binary (bin/effect-cluster.js, as `npx effect-cluster` does
 * in this repository: the shim re-executes Node on src/cli/main.ts) as a child process for the
 * cases that are about the process (`Binary.test.ts`: start-up, exit codes). And checks what a
 * user error must look like: a non-zero exit, ONE line on stderr, no stack trace.
 */
import { execFile } from "node:child_process"
import { join } from "node:path"
import { expect } from "vitest"
import { run } from "../../src/cli/run.ts"
import { nodeBinary, repoRoot } from "../support/ChildPod.ts"

/** What a run printed and how it exited. */
export interface CliRun {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

/** The environment of the runs: the test's, without DATABASE_URL unless a test gives one. */
const baseEnv = Object.fromEntries(Object.entries(process.env).filter(([name]) => name !== "DATABASE_URL"))

/** Runs `effect-cluster args...` in this process. */
export const cli = async (
  args: ReadonlyArray<string>,
  env: Readonly<Record<string, string>> = {}
): Promise<CliRun> => {
  let stdout = ""
  let stderr = ""
  const code = await run(args, {
    env: { ...baseEnv, ...env },
    stdout: (text) => {
      stdout += text
    },
    stderr: (text) => {
      stderr += text
    }
  })
  return { code, stdout, stderr }
}

/** Runs `effect-cluster args...` as a process of its own: the real binary. */
export const binary = (
  args: ReadonlyArray<string>,
  env: Readonly<Record<string, string>> = {}
): Promise<CliRun> =>
  new Promise((resolve, reject) => {
    execFile(
      nodeBinary,
      [join(repoRoot, "bin", "effect-cluster.js"), ...args],
      { cwd: repoRoot, env: { ...baseEnv, ...env }, encoding: "utf8", maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error !== null && typeof error.code !== "number") return reject(error)
        resolve({ code: error === null ? 0 : (error.code as number), stdout, stderr })
      }
    )
  })

/** Runs a command that must succeed and returns its stdout. */
export const ok = async (
  args: ReadonlyArray<string>,
  env?: Readonly<Record<string, string>>
): Promise<string> => {
  const run = await cli(args, env)
  expect(run, `effect-cluster ${args.join(" ")}`).toMatchObject({ code: 0, stderr: "" })
  return run.stdout
}

/** Runs a command that must succeed with `--json` and returns the parsed document. */
export const okJson = async (
  args: ReadonlyArray<string>,
  env?: Readonly<Record<string, string>>
): Promise<any> => JSON.parse(await ok([...args, "--json"], env))

/**
 * Runs a command that must fail as a user error: exit `code`, nothing on stdout, exactly one line
 * on stderr that contains every `expected` fragment, and no stack trace. Returns that line.
 */
export const userError = async (
  args: ReadonlyArray<string>,
  code: number,
  expected: ReadonlyArray<string>,
  env?: Readonly<Record<string, string>>
): Promise<string> => {
  const run = await cli(args, env)
  const what = `effect-cluster ${args.join(" ")}: ${JSON.stringify(run)}`
  expect(run.code, what).toBe(code)
  expect(run.stdout, what).toBe("")
  const lines = run.stderr.split("\n").filter((line) => line !== "")
  expect(lines, what).toHaveLength(1)
  expect(run.stderr, what).not.toMatch(/\n\s+at /)
  for (const fragment of expected) expect(lines[0], what).toContain(fragment)
  return lines[0]!
}

/** Retries `check` until it passes (every 200 ms, for at most `timeoutMs`). */
export const eventually = async <A>(check: () => Promise<A>, timeoutMs = 30_000): Promise<A> => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try {
      return await check()
    } catch (error) {
      if (Date.now() > deadline) throw error
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
  }
}
