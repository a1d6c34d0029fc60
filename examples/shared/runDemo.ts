/**
 * For the demos' tests: runs a demo's `main.ts` as `npm run <demo>` does ("effect-cluster"
 * resolves to this repository's sources), in `cwd`, and returns its exit code and its output.
 */
import { execFile } from "node:child_process"
import { nodeBinary } from "../../test/support/ChildPod.ts"

export const runDemo = (main: string, cwd: string, args: ReadonlyArray<string>) =>
  new Promise<{ code: number | null; output: string }>((resolve) => {
    execFile(
      nodeBinary,
      ["--no-warnings", "--conditions=@effect-cluster/source", main, ...args],
      { cwd, encoding: "utf8" },
      (error, stdout, stderr) =>
        resolve({ code: error === null ? 0 : (error.code as number | null), output: stdout + stderr })
    )
  })
