/**
 * One run of the `effect-cluster` command: the command tree on Node with `args`, its output and
 * logs written where the caller says, its environment (`DATABASE_URL`, the dashboard's token) read
 * from `env`. `main.ts` runs it with the process's arguments, streams and environment; tests run
 * it in-process, which is what the command does, without the start-up of a Node process per case.
 *
 * @example
 * ```ts
 * const out: Array<string> = []
 * const code = await run(["pods", "--file", "journal.db"], {
 *   env: {},
 *   stdout: (text) => out.push(text),
 *   stderr: (text) => process.stderr.write(text)
 * })
 * ```
 */

import { Console as NodeConsole } from "node:console"
import { readFileSync } from "node:fs"
import { Writable } from "node:stream"
import * as NodeServices from "@effect/platform-node/NodeServices"
import { ConfigProvider, Console, Effect, Logger, References } from "effect"
import { CliOutput, Command } from "effect/cli"
import { cli } from "./commands.ts"
import { ending } from "./internal/exit.ts"

/** Where a run writes, and what it reads from its environment. */
export interface RunOptions {
  /** The environment variables the command reads (`DATABASE_URL`, `EFFECT_CLUSTER_*`). */
  readonly env: Readonly<Record<string, string | undefined>>
  /** Receives what the command prints: tables, JSON, help. */
  readonly stdout: (text: string) => void
  /** Receives logs and the one line of a user error. */
  readonly stderr: (text: string) => void
}

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

const sink = (write: (text: string) => void) =>
  new Writable({
    write(chunk, _encoding, done) {
      write(String(chunk))
      done()
    }
  })

/** Runs the command with `args` (the arguments after the command's name); resolves with the exit code. */
export const run = async (args: ReadonlyArray<string>, options: RunOptions): Promise<number> => {
  const console = new NodeConsole({ stdout: sink(options.stdout), stderr: sink(options.stderr) })
  const env = Object.fromEntries(
    Object.entries(options.env).filter((entry): entry is [string, string] => entry[1] !== undefined)
  )
  const program = Command.runWith(cli, { version })(args).pipe(
    Effect.provide([NodeServices.layer, presenter]),
    // Logs (a store's warnings) go to stderr: stdout is the command's output (tables, JSON).
    Effect.provideService(Logger.LogToStderr, true),
    Effect.provideService(References.MinimumLogLevel, "Warn"),
    Effect.provideService(Console.Console, console),
    Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromEnv({ env }))
  )
  const { code, line, cause } = ending(await Effect.runPromiseExit(program))
  if (line !== undefined) options.stderr(`${line}\n`)
  if (cause !== undefined && env.EFFECT_CLUSTER_DEBUG) options.stderr(`${cause}\n`)
  return code
}
