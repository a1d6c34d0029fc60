/**
 * The root command `effect-cluster` and the flags every subcommand shares: where the store is
 * (`--file PATH`, `--postgres URL` or the `DATABASE_URL` variable, `--table-prefix`) and whether
 * to migrate its schema (`--migrate`; without it a store of another version is refused). Shared flags
 * are accepted before or after the subcommand (`effect-cluster --file x.db pods` and
 * `effect-cluster pods --file x.db`). Subcommands read them with `yield* root`.
 */
import { Command, Flag } from "effect/cli"

/** The root command, without its subcommands (`commands.ts` adds them). */
export const root = Command.make("effect-cluster").pipe(
  Command.withDescription(
    "Operate effect-cluster stores: list and inspect executions, resume / interrupt / signal them, look at pods, shards, entities and dead letters."
  ),
  Command.withSharedFlags({
    file: Flag.String("file").pipe(
      Flag.withMetavar("PATH"),
      Flag.withDescription("The embedded store: a SQLite file an engine created (it must exist)."),
      Flag.optional
    ),
    postgres: Flag.String("postgres").pipe(
      Flag.withMetavar("URL"),
      Flag.withDescription(
        "A PostgreSQL store: postgres://user:password@host:port/database (default: $DATABASE_URL)."
      ),
      Flag.optional
    ),
    tablePrefix: Flag.String("table-prefix").pipe(
      Flag.withMetavar("PREFIX"),
      Flag.withDescription("The prefix of the store's tables (default effect_cluster_)."),
      Flag.optional
    ),
    migrate: Flag.Boolean("migrate").pipe(
      Flag.withDescription(
        "Apply the store's schema migrations if it is older than this effect-cluster (default: only check the schema version and fail, changing nothing)."
      ),
      Flag.withDefault(false)
    )
  })
)

/**
 * `--json`: machine-readable output instead of tables. A flag of each command rather than a
 * shared one, because `signal` takes its payload with `--json PAYLOAD` (as the issue specifies).
 */
export const json = Flag.Boolean("json").pipe(
  Flag.withDescription("Print machine-readable JSON (stable field names) instead of tables."),
  Flag.withDefault(false)
)
