/**
 * The entry point of `npx effect-cluster`: runs the command tree on Node with the process's
 * arguments, prints user errors as one line on stderr (never a stack trace) and sets the exit code
 * (see `internal/exit.ts`). The only module of the tool that touches `process`.
 */
import { readFileSync } from "node:fs"
import * as NodeServices from "@effect/platform-node/NodeServices"
import { Effect, Logger, References } from "effect"
import { CliOutput, Command } from "effect/cli"
import { cli } from "./commands.ts"
import { ending } from "./internal/exit.ts"

const version = (() => {
  try {
    return String(JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")).version)
  } catch {
    return "unknown"
  }
})()

/** Usage errors are printed by `internal/exit.ts` as one line, not with the whole help. */
const presenter = CliOutput.layerPresenter({
  present: (event) =>
    event._tag === "InvalidInvocation" ? Effect.void : CliOutput.defaultPresenter.present(event)
})

const program = Command.runWith(cli, { version })(process.argv.slice(2)).pipe(
  Effect.provide([NodeServices.layer, presenter]),
  // Logs (a store's warnings) go to stderr: stdout is the command's output (tables, JSON).
  Effect.provideService(Logger.LogToStderr, true),
  Effect.provideService(References.MinimumLogLevel, "Warn")
)

const exit = await Effect.runPromiseExit(program)
const { code, line, cause } = ending(exit)
if (line !== undefined) process.stderr.write(`${line}\n`)
if (cause !== undefined && process.env.EFFECT_CLUSTER_DEBUG) process.stderr.write(`${cause}\n`)
process.exitCode = code
