/**
 * The entry point of `npx effect-cluster`: runs the command (`run.ts`) with the process's
 * arguments, streams and environment, and sets the exit code (see `internal/exit.ts`). The only
 * module of the tool that touches `process`.
 */
import { run } from "./run.ts"

process.exitCode = await run(process.argv.slice(2), {
  env: process.env,
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text)
})
