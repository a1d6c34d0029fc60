/**
 * The command tree of `effect-cluster`: the root command and its subcommands, in the order
 * `--help` lists them. To add a command, write it in a file of its own in this folder (read the
 * shared store flags with `withAdmin` from `internal/store.ts`, take `json` from `root.ts`) and add
 * it to `subcommands`.
 */
import { Command } from "effect/cli"
import { pods, shards } from "./cluster.ts"
import { dashboard } from "./dashboard.ts"
import { deadLetters } from "./deadLetters.ts"
import { entities } from "./entities.ts"
import { executions } from "./executions.ts"
import { root } from "./root.ts"
import { signal } from "./signal.ts"

/** Every subcommand of `effect-cluster`. */
export const subcommands = [executions, signal, pods, shards, entities, deadLetters, dashboard] as const

/** `effect-cluster` with all its subcommands. */
export const cli = root.pipe(Command.withSubcommands(subcommands))
