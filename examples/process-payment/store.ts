/**
 * Where the demo keeps its journal: the embedded SQLite file by default, or a PostgreSQL database
 * given with `--postgres URL`. Each run starts from an empty journal.
 */
import { rmSync } from "node:fs"
import { resolve } from "node:path"
import { parseArgs } from "node:util"
import { Effect, Schema } from "effect"
import { SqlClient } from "effect/sql/SqlClient"
import { PostgresJournal } from "effect-cluster/postgres"

/** The demo's tables in a PostgreSQL database: it resets only these. */
export const DEMO_TABLE_PREFIX = "process_payment_demo_"

const PostgresUrl = Schema.String.check(
  Schema.isPattern(/^postgres(ql)?:\/\/\S+$/, {
    message: "expected a PostgreSQL URL such as postgres://user:password@localhost:5432/database"
  })
)

const Options = Schema.Struct({ postgres: Schema.optional(PostgresUrl) })

/** The journal location from the command line: a file path, or a `postgres://` URL. */
export const storeFromArgs = (args: ReadonlyArray<string>): string => {
  const { values } = parseArgs({ args: [...args], options: { postgres: { type: "string" } }, strict: true })
  const options = Schema.decodeUnknownSync(Options)(values)
  return options.postgres ?? resolve(".data", "process-payment.db")
}

/** Empties the journal so the demo starts from scratch. */
export const resetStore = async (store: string): Promise<void> => {
  if (!store.startsWith("postgres")) {
    // The journal, its WAL files, and the lock files of its pods.
    for (const suffix of ["", "-wal", "-shm", "-pods"])
      rmSync(store + suffix, { force: true, recursive: true })
    return
  }
  await Effect.runPromise(
    Effect.gen(function* () {
      const sql = yield* SqlClient
      const tables = yield* sql<{ readonly name: string }>`SELECT table_name AS name
        FROM information_schema.tables WHERE table_schema = current_schema()
        AND starts_with(table_name, ${DEMO_TABLE_PREFIX})`
      for (const { name } of tables) yield* sql.unsafe(`DROP TABLE IF EXISTS "${name}"`)
    }).pipe(Effect.provide(PostgresJournal.clientLayer({ url: store, maxConnections: 1 })))
  )
}

/** The store for messages: a PostgreSQL URL without its password. */
export const describeStore = (store: string): string => {
  if (!store.startsWith("postgres")) return store
  return `${PostgresJournal.redactUrl(store)} (tables ${DEMO_TABLE_PREFIX}*)`
}
