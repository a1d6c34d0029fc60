/**
 * The journal backends the conformance suite runs against: memory, the embedded SQLite store and
 * PostgreSQL (the server started by `test/support/postgresSetup.ts`). Each test gets fresh storage:
 * a new SQLite file, or a new table prefix in the shared Postgres database.
 */
import { execFile } from "node:child_process"
import { randomUUID } from "node:crypto"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { Context, Effect, Layer, type Scope } from "effect"
import { SqlClient } from "effect/sql/SqlClient"
import { inject } from "vitest"
import type { DurableExecutionJournal } from "../../src/index.ts"
import { MemoryJournal } from "../../src/index.ts"
import { PostgresJournal } from "../../src/postgres.ts"
import type { EntityStore } from "../../src/sharding/EntityStore.ts"
import type { ShardStore } from "../../src/sharding/ShardStore.ts"
import { migrate } from "../../src/storage/sql/Migrations.ts"
import type { EntityStoreStats } from "../../src/storage/sql/SqlEntityStore.ts"
import * as SqliteClient from "../../src/storage/sqlite/SqliteClient.ts"
import * as SqliteJournal from "../../src/storage/sqlite/SqliteJournal.ts"

export type Journal = DurableExecutionJournal.DurableExecutionJournal["Service"]

/** The entity store; the SQL ones count their group commits' transactions. */
export type Entities = EntityStore["Service"] & { readonly stats?: EntityStoreStats | undefined }

/** A journal with ownership: the shard store and the entity store in the same storage. */
export interface Cluster {
  readonly journal: Journal
  readonly shards: ShardStore["Service"]
  readonly entities: Entities
}

/** Fresh storage for one test. */
export interface Storage {
  /**
   * Opens a journal on this storage, closed with the given scope. Opening again after that scope
   * closed is a restart; two opens at once are two processes sharing the store (SQL backends).
   */
  readonly open: Effect.Effect<Journal, unknown, Scope.Scope>
  /**
   * Opens the journal, the shard store and the entity store on this storage (memory: one in-process
   * store with ownership, shared by every open). Two opens at once are two pods' processes.
   */
  readonly openCluster: Effect.Effect<Cluster, unknown, Scope.Scope>
  /** Raw SQL on the storage and its table prefix, to damage rows (SQL backends only). */
  readonly raw?:
    | { readonly sql: SqlClient; readonly prefix: string; readonly dialect: "sqlite" | "pg" }
    | undefined
  /**
   * Runs the migrations from `n` processes (or connections) at once on fresh tables; returns the
   * versions each applied (SQL backends only).
   */
  readonly migrateConcurrently?:
    | ((n: number) => Effect.Effect<ReadonlyArray<ReadonlyArray<number>>, unknown, Scope.Scope>)
    | undefined
}

export interface Backend {
  readonly name: string
  /** Whether two `open`s at once may race (separate connections to one server). */
  readonly sharedByProcesses: boolean
  readonly storage: Effect.Effect<Storage, unknown, Scope.Scope>
}

export const memory: Backend = {
  name: "memory",
  sharedByProcesses: false,
  storage: Effect.gen(function* () {
    const journal = yield* MemoryJournal.make
    const cluster = yield* MemoryJournal.makeCluster
    return { open: Effect.succeed(journal), openCluster: Effect.succeed(cluster) }
  })
}

const tempDir = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "conformance-"))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)

const MIGRATE_SCRIPT = fileURLToPath(new URL("./support/migrate-sqlite.ts", import.meta.url))

/** Runs the migrations of `filename` in a child process; returns the versions it applied. */
const migrateInChild = (filename: string, prefix: string) =>
  Effect.callback<ReadonlyArray<number>, Error>((resume) => {
    execFile(
      process.execPath,
      ["--no-warnings", MIGRATE_SCRIPT, filename, prefix],
      { encoding: "utf8" },
      (error, stdout, stderr) =>
        resume(
          error === null
            ? Effect.try({
                try: () => JSON.parse(stdout) as ReadonlyArray<number>,
                catch: () => new Error(`unexpected output: ${stdout}`)
              })
            : Effect.fail(new Error(`migration process failed: ${stderr}`))
        )
    )
  })

export const sqlite: Backend = {
  name: "sqlite",
  sharedByProcesses: false,
  storage: Effect.gen(function* () {
    const filename = join(yield* tempDir, "journal.db")
    const prefix = "effect_cluster_"
    const open = Effect.flatMap(SqliteClient.make({ filename }), (sql) =>
      Effect.provideService(SqliteJournal.make(), SqlClient, sql)
    )
    const openCluster = Effect.flatMap(SqliteClient.make({ filename }), (sql) =>
      Effect.provideService(
        Effect.all({
          journal: SqliteJournal.make(),
          shards: SqliteJournal.makeShardStore(),
          entities: SqliteJournal.makeEntityStore()
        }),
        SqlClient,
        sql
      )
    )
    // A connection of its own, open as long as the storage (SQLite sees the journal's tables).
    const raw = yield* SqliteClient.make({ filename })
    const storage: Storage = {
      open,
      openCluster,
      raw: { sql: raw, prefix, dialect: "sqlite" },
      migrateConcurrently: (n) =>
        Effect.forEach(
          Array.from({ length: n }, () => migrateInChild(filename, `${prefix}m_`)),
          (run) => run,
          { concurrency: "unbounded" }
        )
    }
    return storage
  })
}

/** A connection pool of its own on the test server's database. */
export const pgClient = (maxConnections = 4) =>
  Layer.build(PostgresJournal.clientLayer({ url: inject("postgresUrl"), maxConnections })).pipe(
    Effect.map((context) => Context.get(context, SqlClient))
  )

export const postgres: Backend = {
  name: "postgres",
  sharedByProcesses: true,
  storage: Effect.gen(function* () {
    const prefix = `t${randomUUID().replaceAll("-", "").slice(0, 12)}_`
    const sql = yield* pgClient(2)
    const open = Effect.flatMap(pgClient(), (client) =>
      Effect.provideService(PostgresJournal.make({ tablePrefix: prefix }), SqlClient, client)
    )
    const openCluster = Effect.flatMap(pgClient(), (client) =>
      Effect.provideService(
        Effect.all({
          journal: PostgresJournal.make({ tablePrefix: prefix }),
          shards: PostgresJournal.makeShardStore({ tablePrefix: prefix }),
          entities: PostgresJournal.makeEntityStore({ tablePrefix: prefix })
        }),
        SqlClient,
        client
      )
    )
    return {
      open,
      openCluster,
      raw: { sql, prefix, dialect: "pg" },
      migrateConcurrently: (n) =>
        Effect.forEach(
          Array.from({ length: n }, () =>
            Effect.flatMap(pgClient(1), (client) => migrate(client, `${prefix}m_`, "pg"))
          ),
          (run) => run,
          { concurrency: "unbounded" }
        )
    } satisfies Storage
  })
}

export const backends: ReadonlyArray<Backend> = [memory, sqlite, postgres]
