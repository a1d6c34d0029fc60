/**
 * A new, empty database on the test run's PostgreSQL server (see `postgresSetup.ts`), for tests
 * whose child processes need a URL of their own.
 */
import { randomUUID } from "node:crypto"
import { Effect } from "effect"
import { SqlClient } from "effect/sql/SqlClient"
import { inject } from "vitest"
import { PostgresJournal } from "../../src/postgres.ts"

/** Creates the database and returns its URL. */
export const freshDatabase = (name: string): Promise<string> => {
  const database = `${name.replace(/[^a-z0-9_]/gi, "_").toLowerCase()}_${randomUUID().slice(0, 8)}`
  const url = new URL(inject("postgresUrl"))
  return Effect.runPromise(
    Effect.gen(function* () {
      const sql = yield* SqlClient
      yield* sql.unsafe(`CREATE DATABASE ${database}`)
    }).pipe(Effect.provide(PostgresJournal.clientLayer({ url: url.toString(), maxConnections: 1 })))
  ).then(() => {
    url.pathname = `/${database}`
    return url.toString()
  })
}
