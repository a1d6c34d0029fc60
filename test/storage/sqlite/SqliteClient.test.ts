import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Layer, Logger, Scope, Stream } from "effect"
import { SqlClient } from "effect/sql/SqlClient"
import * as SqliteClient from "../../../src/storage/sqlite/SqliteClient.ts"

/** A fresh directory, removed when the test's scope closes (after the database is closed). */
const tempDir = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "sqlite-client-"))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)

/** A client on a new database file in a fresh temp directory. */
const client = Effect.gen(function* () {
  const dir = yield* tempDir
  const filename = join(dir, "test.db")
  const sql = yield* SqliteClient.make({ filename })
  return { sql, filename }
})

describe("SqliteClient", () => {
  it.effect("creates a table, inserts with parameters and selects back", () =>
    Effect.gen(function* () {
      const { sql } = yield* client
      yield* sql`CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT NOT NULL, age INTEGER, active INTEGER)`
      yield* sql`INSERT INTO people (id, name, age, active) VALUES (${1}, ${"Ada"}, ${36}, ${true})`
      yield* sql`INSERT INTO people ${sql.insert([
        { id: 2, name: "Grace", age: 45, active: false },
        { id: 3, name: "Robert'); DROP TABLE people;--", age: null, active: undefined }
      ])}`
      const rows = yield* sql<{ id: number; name: string; age: number | null; active: number | null }>`
        SELECT id, name, age, active FROM people WHERE id IN ${sql.in([1, 2, 3])} ORDER BY id`
      expect(rows).toEqual([
        { id: 1, name: "Ada", age: 36, active: 1 },
        { id: 2, name: "Grace", age: 45, active: 0 },
        { id: 3, name: "Robert'); DROP TABLE people;--", age: null, active: null }
      ])
      expect(Object.getPrototypeOf(rows[0])).toBe(Object.prototype)
      const values = yield* sql`SELECT name FROM ${sql("people")} WHERE age > ${40}`.values
      expect(values).toEqual([["Grace"]])
      const raw = yield* sql`UPDATE people SET age = age + 1 WHERE age IS NOT NULL`.raw
      expect(raw).toMatchObject({ changes: 2 })
      const streamed = yield* Stream.runCollect(sql<{ id: number }>`SELECT id FROM people ORDER BY id`.stream)
      expect(streamed.map((row) => row.id)).toEqual([1, 2, 3])
    })
  )

  it.effect("maps errors to SqlError with a useful message", () =>
    Effect.gen(function* () {
      const { sql } = yield* client
      yield* sql`CREATE TABLE t (id INTEGER PRIMARY KEY)`
      yield* sql`INSERT INTO t (id) VALUES (${1})`
      const duplicate = yield* Effect.flip(sql`INSERT INTO t (id) VALUES (${1})`)
      expect(duplicate._tag).toBe("SqlError")
      expect(duplicate.reason._tag).toBe("UniqueViolation")
      expect(duplicate.message).toContain("UNIQUE constraint failed: t.id")
      expect(duplicate.message).toContain("INSERT INTO t")
      const syntax = yield* Effect.flip(sql.unsafe("SELEC 1"))
      expect(syntax.reason._tag).toBe("SqlSyntaxError")
      const missing = yield* Effect.flip(SqliteClient.make({ filename: "/nonexistent-dir/x/y.db" }))
      expect(missing.reason._tag).toBe("ConnectionError")
      expect(missing.message).toContain("unable to open database file")
    })
  )

  it.effect("refuses multi-statement text that node:sqlite would cut short; .unprepared runs it all", () =>
    Effect.gen(function* () {
      const { sql } = yield* client
      const refused = yield* Effect.flip(sql.unsafe("CREATE TABLE a (x); CREATE TABLE b (y)"))
      expect(refused.message).toContain("more than one statement")
      yield* sql.unsafe("CREATE TABLE a (x); -- trailing comment\n;").pipe(Effect.asVoid)
      yield* sql.unsafe("CREATE TABLE b (x); CREATE TABLE c (y);").unprepared
      const tables = yield* sql<{
        name: string
      }>`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`
      expect(tables.map((t) => t.name)).toEqual(["a", "b", "c"])
    })
  )

  it.effect("withTransaction commits", () =>
    Effect.gen(function* () {
      const { sql } = yield* client
      yield* sql`CREATE TABLE t (id INTEGER PRIMARY KEY)`
      yield* sql.withTransaction(
        Effect.gen(function* () {
          yield* sql`INSERT INTO t (id) VALUES (${1})`
          yield* sql`INSERT INTO t (id) VALUES (${2})`
          // Nested transactions are savepoints.
          yield* sql.withTransaction(sql`INSERT INTO t (id) VALUES (${3})`)
        })
      )
      const rows = yield* sql<{ id: number }>`SELECT id FROM t ORDER BY id`
      expect(rows.map((r) => r.id)).toEqual([1, 2, 3])
    })
  )

  it.effect("a failing transaction rolls back", () =>
    Effect.gen(function* () {
      const { sql } = yield* client
      yield* sql`CREATE TABLE t (id INTEGER PRIMARY KEY)`
      yield* sql`INSERT INTO t (id) VALUES (${0})`
      const exit = yield* Effect.exit(
        sql.withTransaction(
          Effect.gen(function* () {
            yield* sql`INSERT INTO t (id) VALUES (${1})`
            // A failed savepoint rolls back only its own work.
            yield* Effect.exit(
              sql.withTransaction(Effect.andThen(sql`INSERT INTO t (id) VALUES (${2})`, Effect.fail("inner")))
            )
            yield* sql`INSERT INTO t (id) VALUES (${3})`
            return yield* Effect.fail("boom")
          })
        )
      )
      expect(Exit.isFailure(exit)).toBe(true)
      const rows = yield* sql<{ id: number }>`SELECT id FROM t ORDER BY id`
      expect(rows.map((r) => r.id)).toEqual([0])
      // The connection is usable again, outside any transaction.
      yield* sql.withTransaction(sql`INSERT INTO t (id) VALUES (${4})`)
      expect((yield* sql<{ n: number }>`SELECT count(*) AS n FROM t`)[0]?.n).toBe(2)
    })
  )

  it.effect("serializes concurrent transactions: 20 read-modify-write fibers count exactly", () =>
    Effect.gen(function* () {
      const { sql } = yield* client
      yield* sql`CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)`
      yield* sql`INSERT INTO counter (id, n) VALUES (1, 0)`
      const increment = sql.withTransaction(
        Effect.gen(function* () {
          const [row] = yield* sql<{ n: number }>`SELECT n FROM counter WHERE id = 1`
          // Let every other fiber run between the read and the write.
          yield* Effect.yieldNow
          yield* Effect.yieldNow
          yield* sql`UPDATE counter SET n = ${(row?.n ?? 0) + 1} WHERE id = 1`
        })
      )
      yield* Effect.all(
        Array.from({ length: 20 }, () => increment),
        { concurrency: "unbounded", discard: true }
      )
      const [row] = yield* sql<{ n: number }>`SELECT n FROM counter WHERE id = 1`
      expect(row?.n).toBe(20)
    })
  )

  it.effect("statements of other fibers wait for an open transaction instead of joining it", () =>
    Effect.gen(function* () {
      const { sql } = yield* client
      yield* sql`CREATE TABLE t (id INTEGER PRIMARY KEY)`
      const inTransaction = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      const transaction = yield* Effect.forkChild(
        Effect.exit(
          sql.withTransaction(
            Effect.gen(function* () {
              yield* sql`INSERT INTO t (id) VALUES (${1})`
              yield* Deferred.succeed(inTransaction, undefined)
              yield* Deferred.await(release)
              return yield* Effect.fail("roll back")
            })
          )
        )
      )
      yield* Deferred.await(inTransaction)
      let outsideDone = false
      const outside = yield* Effect.forkChild(
        Effect.tap(sql`INSERT INTO t (id) VALUES (${2})`, () =>
          Effect.sync(() => {
            outsideDone = true
          })
        )
      )
      for (let i = 0; i < 10; i++) yield* Effect.yieldNow
      expect(outsideDone).toBe(false)
      yield* Deferred.succeed(release, undefined)
      expect(Exit.isFailure(yield* Fiber.join(transaction))).toBe(true)
      yield* Fiber.join(outside)
      // Had the outside insert run on the connection inside the transaction, it would be rolled back too.
      const rows = yield* sql<{ id: number }>`SELECT id FROM t ORDER BY id`
      expect(rows.map((r) => r.id)).toEqual([2])
    })
  )

  it.effect("sets WAL journal mode, synchronous=FULL and foreign keys", () =>
    Effect.gen(function* () {
      const { sql } = yield* client
      const [journal] = yield* sql<{ journal_mode: string }>`PRAGMA journal_mode`
      const [sync] = yield* sql<{ synchronous: number }>`PRAGMA synchronous`
      const [fk] = yield* sql<{ foreign_keys: number }>`PRAGMA foreign_keys`
      const [busy] = yield* sql<{ timeout: number }>`PRAGMA busy_timeout`
      expect(journal?.journal_mode).toBe("wal")
      expect(sync?.synchronous).toBe(2)
      expect(fk?.foreign_keys).toBe(1)
      expect(busy?.timeout).toBe(5000)
    })
  )

  it.effect("the file survives close and reopen with its data", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const filename = join(dir, "persist.db")
      const first = yield* Scope.make()
      const sql1 = yield* Scope.provide(SqliteClient.make({ filename }), first)
      yield* sql1`CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT NOT NULL)`
      yield* sql1.withTransaction(sql1`INSERT INTO kv ${sql1.insert({ k: "a", v: "1" })}`)
      yield* sql1`INSERT INTO kv ${sql1.insert({ k: "b", v: "2" })}`
      yield* Scope.close(first, Exit.void)
      const closed = yield* Effect.flip(sql1`SELECT 1`)
      expect(closed.message).toContain("database is not open")

      const rows = yield* Effect.gen(function* () {
        const sql2 = yield* SqlClient
        return yield* sql2<{ k: string; v: string }>`SELECT k, v FROM kv ORDER BY k`
      }).pipe(Effect.provide(SqliteClient.layer({ filename })))
      expect(rows).toEqual([
        { k: "a", v: "1" },
        { k: "b", v: "2" }
      ])
    })
  )

  it.effect("transforms result and query names when configured", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const sql = yield* SqliteClient.make({
        filename: join(dir, "names.db"),
        transformQueryNames: (name) => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`),
        transformResultNames: (name) => name.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase())
      })
      yield* sql`CREATE TABLE t (user_id INTEGER, display_name TEXT)`
      yield* sql`INSERT INTO t ${sql.insert({ userId: 7, displayName: "x" })}`
      const rows = yield* sql`SELECT * FROM t`
      expect(rows).toEqual([{ userId: 7, displayName: "x" }])
    })
  )

  it.effect("layer builds and releases", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const layer = SqliteClient.layer({ filename: join(dir, "layer.db") })
      const one = yield* Effect.gen(function* () {
        const sql = yield* SqlClient
        return yield* sql<{ one: number }>`SELECT 1 AS one`
      }).pipe(Effect.provide(Layer.fresh(layer)))
      expect(one).toEqual([{ one: 1 }])
    })
  )

  it.live("a file locked by another process at open is opened once it is free, not refused", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const filename = join(dir, "locked.db")
      // Another process's connection, the file in rollback mode, inside an exclusive transaction:
      // switching the file to WAL needs the lock it holds.
      const { DatabaseSync } = yield* Effect.promise(() => import("node:sqlite"))
      const holder = new DatabaseSync(filename)
      holder.exec("CREATE TABLE t (x INTEGER); BEGIN EXCLUSIVE; INSERT INTO t VALUES (1)")
      const warnings: Array<string> = []
      const logger = Logger.make(({ message }) => {
        warnings.push(Array.isArray(message) ? message.map(String).join(" ") : String(message))
      })
      const opening = yield* SqliteClient.make({ filename, busyTimeoutMillis: 20 }).pipe(
        Effect.provide(Logger.layer([logger])),
        Effect.forkChild
      )
      // It waits for the lock (the attempts are logged) rather than failing.
      while (warnings.length < 2 && opening.pollUnsafe() === undefined) yield* Effect.sleep("10 millis")
      expect(opening.pollUnsafe()).toBeUndefined()
      expect(warnings[0]).toMatch(/database is locked; trying again in \d+ ms/)
      holder.exec("COMMIT")
      holder.close()
      const sql = yield* Fiber.join(opening)
      expect(yield* sql<{ x: number }>`SELECT x FROM t`).toEqual([{ x: 1 }])
    })
  )

  it.effect("a file that cannot be opened for good is refused at once", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      // On the test clock: a retry's pause would never end, and the test would time out.
      const exit = yield* Effect.exit(SqliteClient.make({ filename: join(dir, "missing", "x.db") }))
      expect(Exit.isFailure(exit)).toBe(true)
      expect(String(exit)).toMatch(/unable to open database file/)
    })
  )
})
