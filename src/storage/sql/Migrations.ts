/**
 * Versioned, append-only migrations of the SQL journal. Never edit a released migration: add a
 * new one. They run together in one transaction and each is recorded in `<prefix>migrations`, so
 * running them again against a migrated database does nothing.
 */
import { Clock, Effect } from "effect"
import type { SqlClient } from "effect/sql/SqlClient"
import type { SqlError } from "effect/sql/SqlError"

/**
 * One migration: statements with placeholders for the table prefix and for the few words that
 * differ between the dialects (see `placeholders`).
 */
export interface Migration {
  readonly version: number
  readonly name: string
  readonly statements: ReadonlyArray<string>
}

/**
 * The text each placeholder stands for, per dialect:
 * - `{withoutRowid}`: SQLite's `WITHOUT ROWID` (one B-tree per table instead of two: fewer pages
 *   per commit);
 * - `{autoincrementKey}`: an integer primary key that the database numbers in insertion order;
 * - `{collateC}`: PostgreSQL's byte-wise collation, so that ids sort as in memory and SQLite.
 */
const placeholders: Record<"sqlite" | "pg", Record<string, string>> = {
  sqlite: {
    "{withoutRowid}": " WITHOUT ROWID",
    "{autoincrementKey}": "INTEGER PRIMARY KEY",
    "{collateC}": ""
  },
  pg: {
    "{withoutRowid}": "",
    "{autoincrementKey}": "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
    "{collateC}": ' COLLATE "C"'
  }
}

/** `statement` for `dialect` with `prefix`: every placeholder replaced. */
const render = (statement: string, prefix: string, dialect: "sqlite" | "pg"): string =>
  Object.entries(placeholders[dialect]).reduce(
    (text, [placeholder, value]) => text.replaceAll(placeholder, value),
    statement.replaceAll("{prefix}", prefix)
  )

/** The append-only list of migrations, oldest first. */
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
  },
  {
    version: 7,
    name: "ownership",
    statements: [
      // The cluster's settings: `shard_count`, and `shards_backfilled` once every execution stored
      // before this migration has its shard.
      `CREATE TABLE IF NOT EXISTS {prefix}cluster (
        name TEXT PRIMARY KEY,
        value BIGINT NOT NULL
      ){withoutRowid}`,
      // `session`: the pod's liveness marker (PostgreSQL: backend pid and advisory lock key;
      // SQLite: the path of its lock file).
      `CREATE TABLE IF NOT EXISTS {prefix}pods (
        pod_id TEXT PRIMARY KEY,
        lease_until BIGINT NOT NULL,
        registered_at BIGINT NOT NULL,
        renewed_at BIGINT NOT NULL,
        session TEXT NOT NULL
      ){withoutRowid}`,
      `CREATE TABLE IF NOT EXISTS {prefix}shards (
        shard_id INTEGER PRIMARY KEY,
        owner TEXT,
        epoch BIGINT NOT NULL,
        next_owner TEXT,
        updated_at BIGINT NOT NULL
      )`,
      // One row, always present, so that taking the lease can lock it.
      `CREATE TABLE IF NOT EXISTS {prefix}manager (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        pod_id TEXT,
        lease_until BIGINT NOT NULL
      )`,
      `INSERT INTO {prefix}manager (id, pod_id, lease_until) VALUES (1, NULL, 0) ON CONFLICT (id) DO NOTHING`,
      `CREATE TABLE IF NOT EXISTS {prefix}inbox (
        id {autoincrementKey},
        shard INTEGER NOT NULL,
        execution_id TEXT NOT NULL,
        created_at BIGINT NOT NULL
      )`,
      `CREATE INDEX IF NOT EXISTS {prefix}inbox_by_shard ON {prefix}inbox (shard, id)`,
      // Null for executions stored before this migration, until `ShardStore.init` fills it in.
      `ALTER TABLE {prefix}executions ADD COLUMN shard INTEGER`,
      `CREATE INDEX IF NOT EXISTS {prefix}executions_by_shard
        ON {prefix}executions (shard, execution_id{collateC}) WHERE status = 'running'`
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
      if (dialect === "pg") yield* sql`SELECT pg_advisory_xact_lock(${advisoryLockKey(prefix)})`
      const table = `${prefix}migrations`
      yield* sql.unsafe(
        `CREATE TABLE IF NOT EXISTS ${table} (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`
      )
      const applied: Array<number> = []
      for (const migration of toApply) {
        const rows = yield* sql`SELECT version FROM ${sql(table)} WHERE version = ${migration.version}`
        if (rows.length > 0) continue
        for (const statement of migration.statements) {
          yield* sql.unsafe(render(statement, prefix, dialect))
        }
        const now = yield* Clock.currentTimeMillis
        yield* sql`INSERT INTO ${sql(table)} (version, name, applied_at) VALUES (${migration.version}, ${migration.name}, ${now})`
        applied.push(migration.version)
      }
      return applied
    })
  )

/**
 * A stable 31-bit key for a PostgreSQL advisory lock named `name`: the migration lock of a table
 * prefix is `advisoryLockKey(prefix)`.
 */
export const advisoryLockKey = (name: string): number => {
  let hash = 0x2a17
  for (const char of `effect-cluster:${name}`) hash = (Math.imul(hash, 31) + char.charCodeAt(0)) | 0
  return hash & 0x7fffffff
}
