/**
 * A thin effect `SqlClient` on Node's built-in `node:sqlite` (`DatabaseSync`): one connection to
 * one SQLite file, no native build and no dependency beyond `effect`.
 *
 * The file is opened in WAL mode with `synchronous=FULL` (every commit is fsynced),
 * `foreign_keys=ON` and a busy timeout. Statements run synchronously on the single connection and
 * are serialized through a semaphore: a transaction holds it from `BEGIN` to `COMMIT`/`ROLLBACK`,
 * so statements and transactions of other fibers wait instead of landing inside it.
 *
 * Prepared statements are cached by SQL text. Rows come back as plain objects.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { SqlClient } from "effect/sql/SqlClient"
 * import * as SqliteClient from "./SqliteClient.ts"
 *
 * const program = Effect.gen(function* () {
 *   const sql = yield* SqlClient
 *   return yield* sql`SELECT 1 AS one`
 * })
 *
 * program.pipe(Effect.provide(SqliteClient.layer({ filename: ".data/app.db" })))
 * ```
 */
import type { DatabaseSync, SQLInputValue, StatementSync } from "node:sqlite"
import { Duration, Effect, Layer, Option, Schedule, type Scope, Semaphore, Stream } from "effect"
import * as Reactivity from "effect/reactivity/Reactivity"
import * as SqlClient from "effect/sql/SqlClient"
import type { Connection } from "effect/sql/SqlConnection"
import {
  AuthenticationError,
  AuthorizationError,
  ConnectionError,
  ConstraintError,
  LockTimeoutError,
  SqlError,
  type SqlErrorReason,
  SqlSyntaxError,
  UniqueViolation,
  UnknownError
} from "effect/sql/SqlError"
import * as Statement from "effect/sql/Statement"
import { isDiskFull } from "../sql/transient.ts"

/** How to open the database. */
export interface SqliteClientConfig {
  /** The database file. It is created if missing; its directory must exist. */
  readonly filename: string
  /** How long a statement waits for a lock held by another connection. Default 5000 ms. */
  readonly busyTimeoutMillis?: number | undefined
  /** Renames the columns of result rows, e.g. snake_case to camelCase. */
  readonly transformResultNames?: ((name: string) => string) | undefined
  /** Renames identifiers interpolated with `sql(name)` and `sql.insert`, e.g. camelCase to snake_case. */
  readonly transformQueryNames?: ((name: string) => string) | undefined
}

type TransformRows = (<A extends object>(rows: ReadonlyArray<A>) => ReadonlyArray<A>) | undefined

/** Prepared statements kept per connection; the oldest is dropped beyond this. */
const statementCacheSize = 256

const sqlForMessage = (sql: string): string => {
  const flat = sql.replace(/\s+/g, " ").trim()
  return flat.length > 200 ? `${flat.slice(0, 200)}…` : flat
}

const errorCode = (cause: unknown): number | undefined => {
  if (typeof cause !== "object" || cause === null || !("errcode" in cause)) return undefined
  return typeof cause.errcode === "number" ? cause.errcode : undefined
}

const errorMessage = (cause: unknown): string =>
  cause instanceof Error ? cause.message : typeof cause === "string" ? cause : String(cause)

/**
 * `node:sqlite` reports the SQLite result code as `errcode` (extended code), which effect's
 * `classifySqliteError` does not read, so the reason is chosen here.
 */
const reasonOf = (cause: unknown, message: string, operation: string): SqlErrorReason => {
  const props = { cause, message, operation }
  const code = errorCode(cause)
  if (code === undefined) return new UnknownError(props)
  // SQLITE_CONSTRAINT_UNIQUE, SQLITE_CONSTRAINT_PRIMARYKEY
  if (code === 2067 || code === 1555) {
    const match = /constraint failed:\s*(.+)$/.exec(errorMessage(cause))
    return new UniqueViolation({ ...props, constraint: match?.[1]?.trim() || "unknown" })
  }
  switch (code & 0xff) {
    case 1:
      return /syntax error|incomplete input/.test(errorMessage(cause))
        ? new SqlSyntaxError(props)
        : new UnknownError(props)
    case 3:
      return new AuthorizationError(props)
    case 5:
    case 6:
      return new LockTimeoutError(props)
    case 14:
      return new ConnectionError(props)
    case 19:
      return new ConstraintError(props)
    case 23:
      return new AuthenticationError(props)
    default:
      return new UnknownError(props)
  }
}

const toSqlError = (cause: unknown, operation: string, sql: string | undefined): SqlError =>
  new SqlError({
    reason: reasonOf(
      cause,
      sql === undefined
        ? `${operation}: ${errorMessage(cause)}`
        : `${errorMessage(cause)} (in ${operation} of: ${sqlForMessage(sql)})`,
      operation
    )
  })

/**
 * `node:sqlite` binds only null, numbers, bigints, strings and byte arrays. The statement compiler
 * passes interpolated values through, so booleans, `undefined` and dates are converted here.
 */
const bindable = (value: unknown): SQLInputValue => {
  switch (typeof value) {
    case "boolean":
      return value ? 1 : 0
    case "undefined":
      return null
    default:
      if (value instanceof Date) return value.toISOString()
      // Anything else is handed to node:sqlite, which throws (and we map to SqlError) if it can't bind it.
      return value as SQLInputValue
  }
}

const bindAll = (params: ReadonlyArray<unknown>): Array<SQLInputValue> => {
  const out = new Array<SQLInputValue>(params.length)
  for (let i = 0; i < params.length; i++) out[i] = bindable(params[i])
  return out
}

/** `node:sqlite` returns rows with a null prototype; callers get ordinary objects. */
const plainRows = (rows: ReadonlyArray<object>): Array<Record<string, unknown>> => {
  const out = new Array<Record<string, unknown>>(rows.length)
  for (let i = 0; i < rows.length; i++) out[i] = { ...rows[i] }
  return out
}

/**
 * `DatabaseSync#prepare` compiles the first statement of the text and silently ignores the rest,
 * so `sql.unsafe("A; B")` would run only `A`. Refuse such text instead; `.unprepared` runs it all.
 */
const checkSingleStatement = (sql: string, statement: StatementSync): StatementSync => {
  const source = statement.sourceSQL
  if (source.length < sql.length && sql.startsWith(source)) {
    const rest = sql.slice(source.length).replace(/--[^\n]*|\/\*[\s\S]*?(?:\*\/|$)|[\s;]+/g, "")
    if (rest.length > 0) {
      throw new Error(
        "The SQL text holds more than one statement, and node:sqlite would run only the first; " +
          "split it, or run it without parameters through `.unprepared`"
      )
    }
  }
  return statement
}

/** The single `Connection` over an open `DatabaseSync`. */
const makeConnection = (db: DatabaseSync): Connection => {
  const cache = new Map<string, StatementSync>()

  const prepare = (sql: string): StatementSync => {
    const cached = cache.get(sql)
    if (cached !== undefined) return cached
    const statement = checkSingleStatement(sql, db.prepare(sql))
    if (cache.size >= statementCacheSize) {
      const oldest = cache.keys().next()
      if (oldest.done !== true) cache.delete(oldest.value)
    }
    cache.set(sql, statement)
    return statement
  }

  /**
   * Runs `f` on the statement for `sql` (cached, or freshly prepared and unchecked when `fresh`),
   * honouring `SqlClient.SafeIntegers`.
   */
  const run = <A>(
    operation: string,
    sql: string,
    fresh: boolean,
    f: (statement: StatementSync) => A
  ): Effect.Effect<A, SqlError> =>
    Effect.withFiber((fiber) => {
      try {
        const statement = fresh ? db.prepare(sql) : prepare(sql)
        statement.setReadBigInts(fiber.getRef(SqlClient.SafeIntegers))
        return Effect.succeed(f(statement))
      } catch (cause) {
        return Effect.fail(toSqlError(cause, operation, sql))
      }
    })

  const execute = (sql: string, params: ReadonlyArray<unknown>, transformRows: TransformRows) =>
    run("execute", sql, false, (statement) => {
      const result = plainRows(statement.all(...bindAll(params)))
      return transformRows === undefined ? result : transformRows(result)
    })

  const values = (operation: string, fresh: boolean) => (sql: string, params: ReadonlyArray<unknown>) =>
    run(operation, sql, fresh, (statement) => {
      if (fresh) checkSingleStatement(sql, statement)
      statement.setReturnArrays(true)
      try {
        // With setReturnArrays(true) node:sqlite returns each row as an array of column values.
        return statement.all(...bindAll(params)) as unknown as ReadonlyArray<ReadonlyArray<unknown>>
      } finally {
        statement.setReturnArrays(false)
      }
    })

  return {
    execute,
    executeRaw: (sql, params) =>
      run("executeRaw", sql, false, (statement) =>
        statement.columns().length > 0
          ? plainRows(statement.all(...bindAll(params)))
          : statement.run(...bindAll(params))
      ),
    executeValues: values("executeValues", false),
    executeValuesUnprepared: values("executeValuesUnprepared", true),
    executeUnprepared: (sql, params, transformRows) =>
      run("executeUnprepared", sql, true, (statement) => {
        // `prepare` compiles only the first statement of the text and ignores the rest; without
        // parameters and result rows, run the whole text so that multi-statement scripts work.
        if (params.length === 0 && statement.columns().length === 0) {
          db.exec(sql)
          return []
        }
        checkSingleStatement(sql, statement)
        const result = plainRows(statement.all(...bindAll(params)))
        return transformRows === undefined ? result : transformRows(result)
      }),
    executeStream: (sql, params, transformRows) =>
      Stream.unwrap(Effect.map(execute(sql, params, transformRows), (result) => Stream.fromIterable(result)))
  }
}

/**
 * `node:sqlite` is loaded when a database is opened, not when effect-cluster is imported: on Node 22
 * loading it prints an ExperimentalWarning, which programs on the memory or PostgreSQL journal
 * should not see.
 */
const loadSqlite = (config: SqliteClientConfig) =>
  Effect.tryPromise({
    try: () => import("node:sqlite"),
    catch: (cause) => toSqlError(cause, `open ${config.filename}`, undefined)
  })

/** A lock held elsewhere (`SQLITE_BUSY`, `SQLITE_LOCKED`) or a full disk; not a file that cannot be opened. */
const passingAtOpen = (error: SqlError): boolean =>
  error.reason._tag === "LockTimeoutError" || isDiskFull(error)

/** 100 ms doubling to 2 s apart, for 30 s; each try logged. */
const openRetry = Schedule.min([Schedule.exponential(100), Schedule.spaced(2_000)]).pipe(
  Schedule.upTo({ duration: "30 seconds" }),
  Schedule.setInputType<SqlError>(),
  Schedule.tap(({ input, duration }) =>
    passingAtOpen(input)
      ? Effect.logWarning(`${input.message}; trying again in ${Duration.toMillis(duration)} ms`)
      : Effect.void
  )
)

/**
 * Opens the file, tried again (`openRetry`) while it fails for a passing reason: the file locked
 * by another process (a pod frozen inside a transaction, another one switching the file to WAL)
 * or the disk full (WAL's shared memory cannot be made). A pod started meanwhile waits, logging,
 * instead of exiting; any other failure (a directory that does not exist, a file that is no
 * database) is reported at once.
 */
const open = (config: SqliteClientConfig): Effect.Effect<DatabaseSync, SqlError, Scope.Scope> =>
  Effect.retry(openOnce(config), { while: passingAtOpen, schedule: openRetry })

const openOnce = (config: SqliteClientConfig): Effect.Effect<DatabaseSync, SqlError, Scope.Scope> =>
  Effect.flatMap(loadSqlite(config), (sqlite) =>
    Effect.acquireRelease(
      Effect.try({
        try: () => {
          const db = new sqlite.DatabaseSync(config.filename)
          try {
            db.exec(`PRAGMA busy_timeout = ${Math.max(0, Math.trunc(config.busyTimeoutMillis ?? 5000))}`)
            db.exec("PRAGMA journal_mode = WAL")
            db.exec("PRAGMA synchronous = FULL")
            db.exec("PRAGMA foreign_keys = ON")
          } catch (error) {
            db.close()
            throw error
          }
          return db
        },
        catch: (cause) => toSqlError(cause, `open ${config.filename}`, undefined)
      }),
      (db) =>
        Effect.sync(() => {
          if (db.isOpen) db.close()
        })
    )
  )

/**
 * Opens `config.filename` and returns a `SqlClient` on it. The database is closed when the scope
 * closes. Uses the `Reactivity` service in context if there is one, otherwise a private one.
 */
export const make = (config: SqliteClientConfig): Effect.Effect<SqlClient.SqlClient, SqlError, Scope.Scope> =>
  Effect.gen(function* () {
    const db = yield* open(config)
    const connection = makeConnection(db)
    const semaphore = yield* Semaphore.make(1)
    const acquirers = SqlClient.makeSqliteAcquirers({
      connection: Effect.succeed(connection),
      semaphore,
      isTransaction: () => db.isTransaction
    })
    const transformRows =
      config.transformResultNames === undefined
        ? undefined
        : Statement.defaultTransforms(config.transformResultNames, false).array
    const reactivity = yield* Effect.serviceOption(Reactivity.Reactivity)
    return yield* SqlClient.make({
      acquirer: acquirers.acquirer,
      borrower: acquirers.borrower,
      transactionAcquirer: acquirers.transactionAcquirer,
      onCommitFailure: acquirers.onCommitFailure,
      isTransaction: acquirers.isTransaction,
      compiler: Statement.makeCompilerSqlite(config.transformQueryNames),
      driver: "node-sqlite",
      spanAttributes: [
        ["db.system.name", "sqlite"],
        ["db.namespace", config.filename]
      ],
      prepareTransactionControls: true,
      // IMMEDIATE takes the write lock up front, so the busy timeout applies at BEGIN instead of a
      // read-to-write upgrade failing with SQLITE_BUSY when another process writes the same file.
      beginTransaction: "BEGIN IMMEDIATE",
      releaseSavepoint: (name) => `RELEASE SAVEPOINT ${name}`,
      transformRows
    }).pipe(
      Option.isSome(reactivity)
        ? Effect.provideService(Reactivity.Reactivity, reactivity.value)
        : Effect.provideServiceEffect(Reactivity.Reactivity, Reactivity.make)
    )
  })

/**
 * A layer providing effect's `SqlClient` on the SQLite file `config.filename`, closed when the
 * layer is released.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { SqlClient } from "effect/sql/SqlClient"
 * import * as SqliteClient from "./SqliteClient.ts"
 *
 * const program = Effect.gen(function* () {
 *   const sql = yield* SqlClient
 *   yield* sql`CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v TEXT NOT NULL)`
 *   yield* sql.withTransaction(sql`INSERT INTO kv ${sql.insert({ k: "a", v: "1" })}`)
 *   return yield* sql<{ k: string; v: string }>`SELECT k, v FROM kv WHERE k IN ${sql.in(["a", "b"])}`
 * })
 *
 * Effect.runPromise(program.pipe(Effect.provide(SqliteClient.layer({ filename: "/tmp/app.db" }))))
 * ```
 */
export const layer = (config: SqliteClientConfig): Layer.Layer<SqlClient.SqlClient, SqlError> =>
  Layer.effect(SqlClient.SqlClient, make(config))
