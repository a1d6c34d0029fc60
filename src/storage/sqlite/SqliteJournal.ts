/**
 * The embedded durable store: `DurableExecutionJournal` in one SQLite file (WAL mode,
 * `synchronous=FULL`) on Node's built-in `node:sqlite`. No server, no native build. The layer also
 * provides the `ShardStore` (ownership) in the same file, so several processes on one machine can
 * share the journal as pods of one cluster; each pod proves it is alive with a lock file of its own
 * (`PodLockFile`). And the `EntityStore` (entities' messages and states), fenced by those shards.
 *
 * A journal written by a process that was killed opens cleanly in the next one: SQLite's WAL
 * recovery discards the uncommitted tail, and every outcome the engine acknowledged was committed
 * with an fsync. Concurrent writes from many executions share commits (group commit).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { SqliteJournal, WorkflowEngine } from "effect-cluster"
 *
 * program.pipe(Effect.provide(SqliteJournal.layer({ filename: ".data/journal.db" })))
 * ```
 */
import { mkdirSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { Cause, Context, Effect, Layer, Scheduler, type Scope } from "effect"
import { SqlClient } from "effect/sql/SqlClient"
import type { SqlError } from "effect/sql/SqlError"
import * as BudgetScheduler from "../../internal/BudgetScheduler.ts"
import * as NodePodNetwork from "../../node/NodePodNetwork.ts"
import { EntityStore } from "../../sharding/EntityStore.ts"
import { PodNetworkFactory } from "../../sharding/PodNetwork.ts"
import { ShardStore } from "../../sharding/ShardStore.ts"
import { DurableExecutionJournal } from "../../workflow/DurableExecutionJournal.ts"
import { JournalError, SchemaVersionError } from "../../workflow/WorkflowErrors.ts"
import type { GroupCommitStats } from "../sql/GroupCommit.ts"
import { describeSqlError } from "../sql/internal/errors.ts"
import * as SqlEntityStore from "../sql/SqlEntityStore.ts"
import * as SqlJournal from "../sql/SqlJournal.ts"
import * as SqlShardStore from "../sql/SqlShardStore.ts"
import * as PodLockFile from "./PodLockFile.ts"
import * as SqliteClient from "./SqliteClient.ts"

/** Where and how to store the journal. */
export interface SqliteJournalOptions {
  /** The database file; its directory is created if missing. */
  readonly filename: string
  /** Prefix of the table names. Default `effect_cluster_`. */
  readonly tablePrefix?: string | undefined
}

/**
 * Advisory writes (attempt markers) commit with `synchronous=NORMAL`: in WAL mode they survive a
 * process crash and only a power loss can drop them. Everything else waits for the fsync.
 */
const durabilityToggle = (sql: SqlClient) => {
  let current = true
  return (durable: boolean): Effect.Effect<void, SqlError> =>
    Effect.suspend(() => {
      if (durable === current) return Effect.void
      // Remember the new mode only once SQLite applied it: a failed switch back to FULL must be
      // retried before the next durable commit.
      return sql.unsafe(`PRAGMA synchronous = ${durable ? "FULL" : "NORMAL"}`).pipe(
        Effect.tap(() => Effect.sync(() => (current = durable))),
        Effect.asVoid
      )
    })
}

/**
 * The journal on the `SqlClient` in context (a `SqliteClient`), migrating the schema first, or with
 * `migrate: false` only checking it (`SchemaVersionError` unless it is at this build's version).
 */
export const make = (
  options: Omit<SqliteJournalOptions, "filename"> & { readonly migrate?: boolean | undefined } = {}
): Effect.Effect<
  DurableExecutionJournal["Service"] & { readonly stats: GroupCommitStats },
  SqlError | SchemaVersionError,
  SqlClient | Scope.Scope
> =>
  Effect.gen(function* () {
    const sql = yield* SqlClient
    return yield* SqlJournal.make({
      tablePrefix: options.tablePrefix,
      dialect: "sqlite",
      setDurability: durabilityToggle(sql),
      migrate: options.migrate
    })
  })

/**
 * The shard store in the same file, on the `SqlClient` in context (make the journal first: its
 * migrations create the tables). Pods' lock files go in a folder next to the file
 * (`<file>-pods/`); an in-memory database uses the OS temporary folder.
 */
export const makeShardStore = (
  options: Omit<SqliteJournalOptions, "filename"> = {}
): Effect.Effect<ShardStore["Service"], SqlError, SqlClient> =>
  Effect.gen(function* () {
    const sql = yield* SqlClient
    const [main] = yield* sql<{
      readonly file: string | null
    }>`SELECT file FROM pragma_database_list WHERE name = 'main'`
    const file = main?.file ?? ""
    const directory = file === "" ? join(tmpdir(), "effect-cluster-pods") : PodLockFile.directoryOf(file)
    return yield* SqlShardStore.make({
      tablePrefix: options.tablePrefix,
      dialect: "sqlite",
      liveness: PodLockFile.make(directory)
    })
  })

/**
 * The entity store in the same file, on the `SqlClient` in context (make the journal first: its
 * migrations create the tables).
 */
export const makeEntityStore = (
  options: Omit<SqliteJournalOptions, "filename"> = {}
): Effect.Effect<
  EntityStore["Service"] & { readonly stats: SqlEntityStore.EntityStoreStats },
  never,
  SqlClient | Scope.Scope
> => SqlEntityStore.make({ tablePrefix: options.tablePrefix, dialect: "sqlite" })

/** The layer could not open the file (nothing retries it); the detail says when the disk is full. */
const toJournalError = (operation: string) => (error: SqlError) =>
  new JournalError({ operation, detail: describeSqlError(error), transient: false })

/**
 * The journal, the shard store and the entity store in the SQLite file `filename`, created and
 * migrated if needed.
 */
export const layer = (
  options: SqliteJournalOptions
): Layer.Layer<DurableExecutionJournal | ShardStore | EntityStore | PodNetworkFactory, JournalError> =>
  // Migrating, the schema cannot be at another version.
  open(options, true).pipe(
    Layer.catchTag("SchemaVersionError", (error) => Layer.effectContext(Effect.die(error)))
  )

/**
 * The same on a store that must already exist at this build's schema version, for tools (the CLI,
 * the dashboard): the schema is checked, never migrated, so a typo in the prefix or a store of
 * another version fails with `SchemaVersionError` and changes nothing.
 */
export const layerExisting = (
  options: SqliteJournalOptions
): Layer.Layer<
  DurableExecutionJournal | ShardStore | EntityStore | PodNetworkFactory,
  JournalError | SchemaVersionError
> => open(options, false)

const open = (
  options: SqliteJournalOptions,
  migrate: boolean
): Layer.Layer<
  DurableExecutionJournal | ShardStore | EntityStore | PodNetworkFactory,
  JournalError | SchemaVersionError
> =>
  Layer.effectContext(
    Effect.gen(function* () {
      const journal = yield* make({ ...options, migrate })
      const shards = yield* makeShardStore(options)
      const entities = yield* makeEntityStore(options)
      return Context.make(DurableExecutionJournal, journal).pipe(
        Context.add(ShardStore, shards),
        Context.add(EntityStore, entities),
        // The direct path between the pods of this store (see NodePodNetwork): on by default.
        Context.add(PodNetworkFactory, NodePodNetwork.factory),
        // Fibers run a budget at a time, so a flood of work never holds the event loop (and the
        // pod's lease renewals) for long: see BudgetScheduler.
        Context.add(Scheduler.Scheduler, BudgetScheduler.shared)
      )
      // The store's own fibers (the group commit's writer) too.
    }).pipe(Effect.provideService(Scheduler.Scheduler, BudgetScheduler.shared))
  ).pipe(
    Layer.provide(
      Layer.unwrap(
        Effect.try({
          try: () => {
            mkdirSync(dirname(options.filename), { recursive: true })
            return SqliteClient.layer({ filename: options.filename })
          },
          catch: (error) =>
            new JournalError({
              operation: `open ${options.filename}`,
              detail: `its directory cannot be created: ${error instanceof Error ? error.message : String(error)}`,
              transient: false
            })
        })
      )
    ),
    Layer.catchCause((cause) =>
      Layer.effectContext<
        DurableExecutionJournal | ShardStore | EntityStore | PodNetworkFactory,
        JournalError | SchemaVersionError,
        never
      >(
        Effect.failCause(
          Cause.map(cause, (error) =>
            error instanceof JournalError || error instanceof SchemaVersionError
              ? error
              : toJournalError(`open ${options.filename}`)(error)
          )
        )
      )
    )
  )
