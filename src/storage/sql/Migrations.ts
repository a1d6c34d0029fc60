/**
 * Versioned, append-only migrations of the SQL journal. Never edit a released migration: add a
 * new one. They run together in one transaction and each is recorded in `<prefix>migrations`, so
 * running them again against a migrated database does nothing.
 */
import { Clock, Effect } from "effect"
import type { SqlClient } from "effect/sql/SqlClient"
import type { SqlError } from "effect/sql/SqlError"

/**
 * One migration: statements with `{prefix}` standing for the table prefix and `{withoutRowid}` for
 * SQLite's `WITHOUT ROWID` (one B-tree per table instead of two: fewer pages per commit).
 */
export interface Migration {
  readonly version: number
  readonly name: string
  readonly statements: ReadonlyArray<string>
}

export const migrations: ReadonlyArray<Migration> = [
  {
    version: 1,
    name: "executions and steps",
    statements: [
      `CREATE TABLE IF NOT EXISTS {prefix}executions (
        execution_id TEXT PRIMARY KEY,
        workflow TEXT NOT NULL,
        request TEXT NOT NULL,
        status TEXT NOT NULL,
        result TEXT,
        reason TEXT,
        interrupt_requested INTEGER NOT NULL DEFAULT 0,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
      ){withoutRowid}`,
      `CREATE INDEX IF NOT EXISTS {prefix}executions_by_status ON {prefix}executions (created_at) WHERE status = 'running'`,
      `CREATE TABLE IF NOT EXISTS {prefix}steps (
        execution_id TEXT NOT NULL,
        step_key TEXT NOT NULL,
        activity_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        previous_step TEXT,
        attempt INTEGER NOT NULL,
        outcome TEXT,
        started_at BIGINT NOT NULL,
        completed_at BIGINT,
        PRIMARY KEY (execution_id, step_key)
      ){withoutRowid}`
    ]
  },
  {
    version: 2,
    name: "durable timers",
    statements: [
      `ALTER TABLE {prefix}executions ADD COLUMN wake_at BIGINT`,
      `CREATE INDEX IF NOT EXISTS {prefix}executions_by_wake_at ON {prefix}executions (wake_at) WHERE status = 'sleeping'`
    ]
  },
  {
    version: 3,
    name: "signals",
    statements: [
      `CREATE TABLE IF NOT EXISTS {prefix}signals (
        execution_id TEXT NOT NULL,
        name TEXT NOT NULL,
        payload TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        PRIMARY KEY (execution_id, name)
      ){withoutRowid}`
    ]
  },
  {
    version: 4,
    name: "activity heartbeats",
    statements: [`ALTER TABLE {prefix}steps ADD COLUMN heartbeat TEXT`]
  },
  {
    version: 5,
    name: "inspection",
    statements: [
      `CREATE INDEX IF NOT EXISTS {prefix}executions_by_workflow ON {prefix}executions (workflow, status, execution_id)`
    ]
  },
  {
    version: 6,
    name: "attempt history",
    statements: [
      `CREATE TABLE IF NOT EXISTS {prefix}attempts (
        execution_id TEXT NOT NULL,
        step_key TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        started_at BIGINT NOT NULL,
        ended_at BIGINT NOT NULL,
        outcome TEXT NOT NULL,
        PRIMARY KEY (execution_id, step_key, attempt)
      ){withoutRowid}`
    ]
  }
]

/**
 * Applies the migrations not yet recorded, all in one transaction, and returns the versions it
 * applied. Safe when several processes start at once: on PostgreSQL the transaction first takes
 * an advisory lock (per table prefix), on SQLite `BEGIN IMMEDIATE` already serializes writers.
 */
export const migrate = (
  sql: SqlClient,
  prefix: string,
  dialect: "sqlite" | "pg",
  /** The migrations to apply (tests pass a prefix of the list to build an older schema). */
  toApply: ReadonlyArray<Migration> = migrations
): Effect.Effect<ReadonlyArray<number>, SqlError> =>
  sql.withTransaction(
    Effect.gen(function* () {
      if (dialect === "pg") yield* sql`SELECT pg_advisory_xact_lock(${lockKey(prefix)})`
      const table = `${prefix}migrations`
      yield* sql.unsafe(
        `CREATE TABLE IF NOT EXISTS ${table} (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`
      )
      const applied: Array<number> = []
      for (const migration of toApply) {
        const rows = yield* sql`SELECT version FROM ${sql(table)} WHERE version = ${migration.version}`
        if (rows.length > 0) continue
        for (const statement of migration.statements) {
          yield* sql.unsafe(
            statement
              .replaceAll("{prefix}", prefix)
              .replaceAll("{withoutRowid}", dialect === "sqlite" ? " WITHOUT ROWID" : "")
          )
        }
        const now = yield* Clock.currentTimeMillis
        yield* sql`INSERT INTO ${sql(table)} (version, name, applied_at) VALUES (${migration.version}, ${migration.name}, ${now})`
        applied.push(migration.version)
      }
      return applied
    })
  )

/** A stable 31-bit key for the migration lock of one table prefix. */
const lockKey = (prefix: string): number => {
  let hash = 0x2a17
  for (const char of `effect-cluster:${prefix}`) hash = (Math.imul(hash, 31) + char.charCodeAt(0)) | 0
  return hash & 0x7fffffff
}
