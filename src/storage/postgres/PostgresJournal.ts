/**
 * `DurableExecutionJournal` on PostgreSQL, through effect's SQL stack (`@effect/sql-pg`).
 *
 * The same SQL as the embedded store (`SqlJournal`): versioned migrations run at start (in one
 * transaction under an advisory lock, so several processes may start at once), concurrent writes
 * share transactions (group commit), and attempt markers commit with `synchronous_commit = off`.
 * A table prefix lets the journal share a database. A wrong URL fails the layer at start with one
 * `JournalError` (after `connectTimeout`, or the URL's `connect_timeout`), it does not hang.
 *
 * The layer also provides the `ShardStore` in the same database: every process started on it is a
 * pod of one cluster. Leases are judged by the server's clock; a pod holds a session for its
 * lifetime (`PodSession`), so a pod whose process died is known to be gone at once. Inbox arrivals
 * are pushed with `LISTEN/NOTIFY` (`inboxArrivals`). And the `EntityStore` (entities' messages and
 * states), fenced by those shards.
 *
 * @example
 * ```ts
 * import { Effect, Redacted } from "effect"
 * import { PostgresJournal } from "effect-cluster/postgres"
 *
 * program.pipe(Effect.provide(PostgresJournal.layer({ url: Redacted.make("postgres://app@db/orders") })))
 * ```
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import { Cause, Config, Context, Duration, Effect, Layer, Redacted, Scheduler, type Scope } from "effect"
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
import * as SqlEntityStore from "../sql/SqlEntityStore.ts"
import * as SqlJournal from "../sql/SqlJournal.ts"
import * as SqlShardStore from "../sql/SqlShardStore.ts"
import * as PodSession from "./PodSession.ts"

/** Where the journal lives and how to reach it. */
export interface PostgresJournalOptions {
  /** `postgres://user:password@host:port/database` */
  readonly url: Redacted.Redacted | string
  /** Prefix of the table names, so the journal can share a database. Default `effect_cluster_`. */
  readonly tablePrefix?: string | undefined
  /** Connections in the pool (the group-commit writer uses one at a time). Default 10. */
  readonly maxConnections?: number | undefined
  /**
   * How long to wait for a connection before failing. Default: the URL's `connect_timeout`
   * (seconds) if it has one, else 10 s.
   */
  readonly connectTimeout?: Duration.Input | undefined
  /**
   * The server cancels any statement of the journal that runs longer (PostgreSQL's
   * `statement_timeout`, set on every connection). The operation fails with a `JournalError`
   * naming the statement's purpose and the timeout (`timeoutMillis`); the engine retries it a few
   * times with backoff, then fails the call. Default: the server's setting.
   */
  readonly statementTimeout?: Duration.Input | undefined
  /**
   * The server ends a transaction of the journal left idle longer, with its connection, and
   * releases its locks (PostgreSQL's `idle_in_transaction_session_timeout`, set on every
   * connection). The journal's transactions never wait between statements; one stays idle only
   * when its process is frozen (SIGSTOP, a long GC pause, a suspended VM), and then the shard rows
   * it holds would keep the other pods from taking the frozen pod's shards. Keep it at most half
   * the pods' lease TTL. `0`: never. Default 5 s (half the default TTL). Ownership transactions
   * use TTL/2 whatever this is.
   */
  readonly idleInTransactionTimeout?: Duration.Input | undefined
  /** Batch concurrent writes into shared transactions. Default true. */
  readonly groupCommit?: boolean | undefined
}

/** Whether the `SqlClient` is `@effect/sql-pg`'s, which can `LISTEN`. */
const isPgClient = (sql: SqlClient): sql is PgClient.PgClient => PgClient.TypeId in sql

/**
 * The journal on the PostgreSQL `SqlClient` in context, migrating first. With `@effect/sql-pg`'s
 * client it has `inboxArrivals` (`LISTEN`).
 */
export const make = (
  options: Omit<PostgresJournalOptions, "url" | "maxConnections" | "connectTimeout"> & {
    /** false: check the schema instead of migrating it (`SchemaVersionError` unless current). */
    readonly migrate?: boolean | undefined
  } = {}
): Effect.Effect<
  DurableExecutionJournal["Service"] & { readonly stats: GroupCommitStats },
  SqlError | SchemaVersionError,
  SqlClient | Scope.Scope
> =>
  Effect.gen(function* () {
    const sql = yield* SqlClient
    return yield* SqlJournal.make({
      tablePrefix: options.tablePrefix,
      dialect: "pg",
      groupCommit: options.groupCommit,
      listen: isPgClient(sql) ? sql.listen : undefined,
      statementTimeoutMillis: yield* statementTimeoutMillis(sql),
      migrate: options.migrate
    })
  })

/**
 * The connections' `statement_timeout` in ms (0: none), as the server applies it: set by the
 * `statementTimeout` option, or by the role, the database or the server's configuration.
 */
const statementTimeoutMillis = (sql: SqlClient): Effect.Effect<number | undefined, SqlError> =>
  Effect.map(
    sql<{ readonly setting: string }>`SELECT setting FROM pg_settings WHERE name = 'statement_timeout'`,
    (rows) => {
      const millis = Number(rows[0]?.setting)
      return Number.isFinite(millis) && millis > 0 ? millis : undefined
    }
  )

/**
 * The shard store in the same database, on the `SqlClient` in context (make the journal first: its
 * migrations create the tables).
 */
export const makeShardStore = (
  options: Pick<PostgresJournalOptions, "tablePrefix"> = {}
): Effect.Effect<ShardStore["Service"], never, SqlClient> =>
  Effect.flatMap(SqlClient, (sql) => {
    const prefix = options.tablePrefix ?? "effect_cluster_"
    return SqlShardStore.make({ tablePrefix: prefix, dialect: "pg", liveness: PodSession.make(sql, prefix) })
  })

/**
 * The entity store in the same database, on the `SqlClient` in context (make the journal first: its
 * migrations create the tables).
 */
export const makeEntityStore = (
  options: Pick<PostgresJournalOptions, "tablePrefix" | "groupCommit"> = {}
): Effect.Effect<
  EntityStore["Service"] & { readonly stats: SqlEntityStore.EntityStoreStats },
  never,
  SqlClient | Scope.Scope
> =>
  SqlEntityStore.make({ tablePrefix: options.tablePrefix, dialect: "pg", groupCommit: options.groupCommit })

const DEFAULT_CONNECT_TIMEOUT = Duration.seconds(10)
const DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT = Duration.seconds(5)

/** The `connect_timeout` parameter of the URL (seconds, as libpq reads it), if it has one. */
const urlConnectTimeout = (url: Redacted.Redacted | string): string | undefined => {
  try {
    return (
      new URL(typeof url === "string" ? url : Redacted.value(url)).searchParams.get("connect_timeout") ??
      undefined
    )
  } catch {
    return undefined
  }
}

/** Which connect timeout applies, as errors name it. */
const describeConnectTimeout = (options: PostgresJournalOptions): string => {
  if (options.connectTimeout !== undefined)
    return `connectTimeout ${Duration.format(Duration.fromInputUnsafe(options.connectTimeout))}`
  const fromUrl = urlConnectTimeout(options.url)
  return fromUrl !== undefined
    ? `connect_timeout=${fromUrl} s in the URL`
    : `connectTimeout ${Duration.format(DEFAULT_CONNECT_TIMEOUT)} (the default)`
}

/** A `SqlClient` layer for the journal's database. */
export const clientLayer = (options: PostgresJournalOptions) =>
  PgClient.layer({
    url: typeof options.url === "string" ? Redacted.make(options.url) : options.url,
    maxConnections: options.maxConnections ?? 10,
    // Left undefined when the URL has connect_timeout: the driver reads it from the URL then.
    connectTimeout:
      options.connectTimeout ??
      (urlConnectTimeout(options.url) === undefined ? DEFAULT_CONNECT_TIMEOUT : undefined),
    startupParameters: {
      idle_in_transaction_session_timeout: String(
        Math.round(
          Duration.toMillis(
            Duration.fromInputUnsafe(options.idleInTransactionTimeout ?? DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT)
          )
        )
      ),
      ...(options.statementTimeout === undefined
        ? {}
        : {
            statement_timeout: String(Duration.toMillis(Duration.fromInputUnsafe(options.statementTimeout)))
          })
    },
    applicationName: "effect-cluster"
  })

/**
 * A connection URL fit for logs and errors: the password (in the user info or `?password=`) is
 * replaced by `***`; text that is not a URL becomes `<not a URL>`.
 *
 * @example
 * ```ts
 * PostgresJournal.redactUrl("postgres://app:secret@db/orders") // "postgres://app:***@db/orders"
 * ```
 */
export const redactUrl = (url: Redacted.Redacted | string): string => {
  const text = typeof url === "string" ? url : Redacted.value(url)
  try {
    const parsed = new URL(text)
    if (parsed.password !== "") parsed.password = "***"
    // The driver also reads `?password=...`.
    if (parsed.searchParams.has("password")) parsed.searchParams.set("password", "***")
    return parsed.toString()
  } catch {
    return "<not a URL>"
  }
}

/** The driver's message and, if any, the underlying cause's (e.g. `connect ECONNREFUSED ...`). */
const describeError = (error: unknown): string => {
  if (!(error instanceof Error)) return String(error)
  const reason: unknown = (error as { reason?: unknown }).reason
  const cause: unknown = reason instanceof Error ? reason.cause : error.cause
  const detail =
    cause instanceof Error || (typeof cause === "object" && cause !== null && "message" in cause)
      ? String((cause as { message: unknown }).message)
      : undefined
  return detail === undefined || error.message.includes(detail)
    ? error.message
    : `${error.message}: ${detail}`
}

/** The driver's message, naming the connect timeout that applied when it is a timeout. */
const timedOut = (message: string, options: PostgresJournalOptions): string =>
  /timed out/i.test(message) ? `${message} (after ${describeConnectTimeout(options)})` : message

/**
 * The journal, the shard store and the entity store in the PostgreSQL database at `url`, migrated
 * if needed. The
 * layer fails at once with one `JournalError` naming the URL (without its password) when the
 * server cannot be reached or refuses the login: a misconfiguration is reported at start, not
 * retried forever. Once running, lost connections are transient errors that the engine retries
 * with backoff.
 */
export const layer = (
  options: PostgresJournalOptions
): Layer.Layer<DurableExecutionJournal | ShardStore | EntityStore | PodNetworkFactory, JournalError> =>
  // Migrating, the schema cannot be at another version.
  open(options, true).pipe(
    Layer.catchTag("SchemaVersionError", (error) => Layer.effectContext(Effect.die(error)))
  )

/**
 * The same on a database whose tables must already be at this build's schema version, for tools
 * (the CLI, the dashboard): the schema is checked, never migrated, so a typo in the table prefix or
 * a store of another version fails with `SchemaVersionError` and nothing is created or changed.
 */
export const layerExisting = (
  options: PostgresJournalOptions
): Layer.Layer<
  DurableExecutionJournal | ShardStore | EntityStore | PodNetworkFactory,
  JournalError | SchemaVersionError
> => open(options, false)

const open = (
  options: PostgresJournalOptions,
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
    Layer.provide(clientLayer(options)),
    Layer.catchCause((cause) =>
      Layer.effectContext<
        DurableExecutionJournal | ShardStore | EntityStore | PodNetworkFactory,
        JournalError | SchemaVersionError,
        never
      >(
        Effect.failCause(
          Cause.map(cause, (error) =>
            error instanceof SchemaVersionError
              ? error
              : new JournalError({
                  operation: "open",
                  message: `cannot open the PostgreSQL journal at ${redactUrl(options.url)}: ${timedOut(describeError(error), options)}. Check the URL, that the server runs and accepts connections from this host, and the role and its password.`,
                  transient: false
                })
          )
        )
      )
    )
  )

/**
 * The same, configured from `Config` (by default the `DATABASE_URL` variable).
 *
 * @example
 * ```ts
 * PostgresJournal.layerConfig(Config.Redacted("ORDERS_DATABASE_URL"))
 * ```
 */
export const layerConfig = (
  url: Config.Config<Redacted.Redacted> = Config.Redacted("DATABASE_URL"),
  options: Omit<PostgresJournalOptions, "url"> = {}
): Layer.Layer<
  DurableExecutionJournal | ShardStore | EntityStore | PodNetworkFactory,
  JournalError | Config.ConfigError
> => Layer.unwrap(Effect.map(url, (url) => layer({ ...options, url })))
