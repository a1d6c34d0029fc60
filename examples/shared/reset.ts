/**
 * Starting a demo from scratch: an embedded store's file (with its WAL files and its pods' lock
 * files), or a PostgreSQL database's tables of one demo (by their prefix).
 */
import { rmSync } from "node:fs"
import { Effect } from "effect"
import { SqlClient } from "effect/sql/SqlClient"
import { PostgresJournal } from "effect-cluster/postgres"

/** Deletes the SQLite file at `location` and what lives beside it. */
export const resetSqlite = (location: string): void => {
  for (const suffix of ["", "-wal", "-shm", "-pods"])
    rmSync(location + suffix, { force: true, recursive: true })
}

/** Drops the tables whose names start with `prefix` in the database at `url`. */
export const dropTables = (url: string, prefix: string): Promise<void> =>
  Effect.runPromise(
    Effect.gen(function* () {
      const sql = yield* SqlClient
      const tables = yield* sql<{ readonly name: string }>`SELECT table_name AS name
        FROM information_schema.tables WHERE table_schema = current_schema()
        AND starts_with(table_name, ${prefix})`
      for (const { name } of tables) yield* sql.unsafe(`DROP TABLE IF EXISTS "${name}"`)
    }).pipe(Effect.provide(PostgresJournal.clientLayer({ url, maxConnections: 1 })))
  )
