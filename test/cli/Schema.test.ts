/**
 * The tool never changes a store's schema on its own: `effect-cluster` (every command, the
 * dashboard too) checks the schema version of the store it opens and refuses one that is not at
 * this build's version in one line (which version it found, which it needs), creating and changing
 * nothing: a `--table-prefix` typo creates no empty schema, an older store is not migrated behind
 * the operator's back. `--migrate` opts in.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { DatabaseSync } from "node:sqlite"
import { Effect } from "effect"
import { SqlClient } from "effect/sql/SqlClient"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { PostgresJournal } from "../../src/postgres.ts"
import { latestVersion, migrate, migrations } from "../../src/storage/sql/Migrations.ts"
import * as SqliteClient from "../../src/storage/sqlite/SqliteClient.ts"
import { freshDatabase } from "../support/freshDatabase.ts"
import { okJson, userError } from "./support.ts"

let dir: string
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "effect-cluster-cli-schema-"))
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** The tables of a SQLite file, read without the library. */
const tablesOf = (file: string): Array<string> => {
  const db = new DatabaseSync(file, { readOnly: true })
  try {
    return db
      .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
      .all()
      .map((row) => String(row.name))
  } finally {
    db.close()
  }
}

/** The highest migration recorded in a SQLite file. */
const versionOf = (file: string): number => {
  const db = new DatabaseSync(file, { readOnly: true })
  try {
    return Number(db.prepare("SELECT MAX(version) AS v FROM effect_cluster_migrations").get()?.v)
  } finally {
    db.close()
  }
}

/** A store as an older effect-cluster left it: the migrations up to `version`. */
const migratedTo = (file: string, version: number) =>
  Effect.runPromise(
    Effect.scoped(
      Effect.flatMap(SqliteClient.make({ filename: file }), (sql) =>
        migrate(
          sql,
          "effect_cluster_",
          "sqlite",
          migrations.filter((migration) => migration.version <= version)
        )
      )
    )
  )

describe("effect-cluster and the schema version of a store", () => {
  it("SQLite: a file with no schema, an older and a newer schema are refused in one line, unchanged; --migrate migrates", async () => {
    const empty = join(dir, "empty.db")
    new DatabaseSync(empty).close()
    const noSchema = [
      'no effect-cluster tables with the prefix "effect_cluster_"',
      `needs schema version ${latestVersion}`,
      "nothing was created",
      "--migrate"
    ]
    await userError(["executions", "list", "--file", empty], 1, noSchema)
    await userError(["dashboard", "--file", empty, "--port", "0"], 1, noSchema)
    expect(tablesOf(empty)).toEqual([])

    const older = join(dir, "older.db")
    await migratedTo(older, 5)
    const before = tablesOf(older)
    await userError(["pods", "--file", older], 1, [
      "at schema version 5",
      `needs schema version ${latestVersion}`,
      "nothing was changed",
      "--migrate"
    ])
    expect(tablesOf(older)).toEqual(before)
    expect(versionOf(older)).toBe(5)
    // Opting in: migrated, then served as any current store (no flag needed any more).
    expect(await okJson(["executions", "list", "--file", older, "--migrate"])).toEqual({
      executions: [],
      next: null
    })
    expect(versionOf(older)).toBe(latestVersion)
    expect(await okJson(["executions", "list", "--file", older])).toEqual({ executions: [], next: null })

    // Migrated by a newer effect-cluster: refused (with --migrate it is opened as an engine of this
    // version would open it, which is how rolling upgrades work: nothing to apply).
    const db = new DatabaseSync(older)
    db.prepare(
      "INSERT INTO effect_cluster_migrations (version, name, applied_at) VALUES (?, 'future', 0)"
    ).run(latestVersion + 1)
    db.close()
    await userError(["executions", "list", "--file", older], 1, [
      `at schema version ${latestVersion + 1}, newer than the version ${latestVersion} this effect-cluster needs`,
      "nothing was changed"
    ])
  }, 60_000)

  it("PostgreSQL: a --table-prefix typo creates nothing; --migrate creates the tables", async () => {
    const url = await freshDatabase("cli_schema")
    const tables = (pattern: string) =>
      Effect.runPromise(
        Effect.scoped(
          Effect.gen(function* () {
            const sql = yield* SqlClient
            const rows = yield* sql<{
              readonly tablename: string
            }>`SELECT tablename FROM pg_tables WHERE tablename LIKE ${pattern} ORDER BY tablename`
            return rows.map((row) => row.tablename)
          }).pipe(Effect.provide(PostgresJournal.clientLayer({ url, maxConnections: 1 })))
        )
      )
    // A store an engine (or --migrate) created.
    expect(await okJson(["executions", "list", "--postgres", url, "--migrate"])).toEqual({
      executions: [],
      next: null
    })
    expect((await tables("effect_cluster_%")).length).toBeGreaterThan(5)
    const typo = ["--postgres", url, "--table-prefix", "efect_cluster_"]
    const noSchema = [
      'no effect-cluster tables with the prefix "efect_cluster_"',
      `needs schema version ${latestVersion}`
    ]
    await userError(["executions", "list", ...typo], 1, noSchema)
    await userError(["dashboard", ...typo, "--port", "0"], 1, noSchema)
    expect(await tables("efect%")).toEqual([])
    // Asked for, the prefix gets its tables.
    expect(await okJson(["executions", "list", ...typo, "--migrate"])).toEqual({ executions: [], next: null })
    expect(await tables("efect_cluster_migrations")).toEqual(["efect_cluster_migrations"])
  }, 60_000)
})
