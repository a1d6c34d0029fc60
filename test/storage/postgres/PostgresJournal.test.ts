/**
 * What only the PostgreSQL backend has: connection URLs and `Config`, table prefixes sharing one
 * database, and values the server rejects. The journal contract itself is in the conformance suite.
 */
import { createServer, type Socket } from "node:net"
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Context, Deferred, Effect, Exit, Fiber, Layer, Option, Redacted } from "effect"
import { SqlClient } from "effect/sql/SqlClient"
import { inject } from "vitest"
import { DurableExecutionJournal } from "../../../src/index.ts"
import { PostgresJournal } from "../../../src/postgres.ts"

/** Builds the journal layer; returns the service or the error it failed with. */
const open = <E>(layer: Layer.Layer<DurableExecutionJournal.DurableExecutionJournal, E>) =>
  Effect.map(Layer.build(layer), (context) =>
    Context.get(context, DurableExecutionJournal.DurableExecutionJournal)
  )

const openError = (options: PostgresJournal.PostgresJournalOptions) =>
  Effect.scoped(Effect.flip(open(PostgresJournal.layer({ connectTimeout: "5 seconds", ...options }))))

/** A loopback port with nothing listening. */
const closedPort = Effect.promise(
  () =>
    new Promise<number>((resolve) => {
      const server = createServer().listen(0, "127.0.0.1", () => {
        const address = server.address()
        server.close(() => resolve(typeof address === "object" && address !== null ? address.port : 1))
      })
    })
)

/** A loopback port that accepts connections and never answers (a black-holed server). */
const silentPort = Effect.acquireRelease(
  Effect.promise(
    () =>
      new Promise<{ readonly port: number; readonly close: () => void }>((resolve) => {
        const sockets = new Set<Socket>()
        const server = createServer((socket) => {
          sockets.add(socket)
          socket.on("close", () => sockets.delete(socket))
        })
        server.listen(0, "127.0.0.1", () => {
          const address = server.address()
          resolve({
            port: typeof address === "object" && address !== null ? address.port : 1,
            close: () => {
              for (const socket of sockets) socket.destroy()
              server.close()
            }
          })
        })
      })
  ),
  (server) => Effect.sync(server.close)
)

const serverUrl = () => new URL(inject("postgresUrl"))

const prefix = (name: string) => `${name}_${Math.random().toString(36).slice(2, 8)}_`

describe("PostgresJournal", () => {
  it.live("a wrong URL fails at start with one clear error naming what is wrong", () =>
    Effect.gen(function* () {
      const port = yield* closedPort
      const refused = yield* openError({ url: `postgres://app:secret@127.0.0.1:${port}/orders` })
      expect(refused._tag).toBe("JournalError")
      expect(refused.message).toContain(`127.0.0.1:${port}/orders`)
      expect(refused.message).toContain("ECONNREFUSED")
      expect(refused.message).not.toContain("secret")
      const inQuery = yield* openError({ url: `postgres://app@127.0.0.1:${port}/orders?password=hunter2` })
      expect(inQuery.message).not.toContain("hunter2")

      const noDatabase = serverUrl()
      noDatabase.pathname = "/no_such_database"
      const missing = yield* openError({ url: Redacted.make(noDatabase.toString()) })
      expect(missing.message).toContain('database "no_such_database" does not exist')

      const noRole = serverUrl()
      noRole.username = "nobody"
      const role = yield* openError({ url: noRole.toString() })
      expect(role.message).toContain('role "nobody" does not exist')

      const garbage = yield* openError({ url: "postgres//missing-colon" })
      expect(garbage.message).toContain("<not a URL>")
      expect(garbage.message).toMatch(/invalid connection url/i)
    })
  )

  it.live("layerConfig reads the URL from DATABASE_URL", () =>
    Effect.gen(function* () {
      const journal = yield* open(
        PostgresJournal.layerConfig(undefined, { tablePrefix: prefix("config") })
      ).pipe(
        Effect.provideService(
          ConfigProvider.ConfigProvider,
          ConfigProvider.fromUnknown({ DATABASE_URL: inject("postgresUrl") })
        )
      )
      yield* journal.start({ executionId: "from-config", workflow: "W", request: "{}", shard: 1, now: 1 })
      expect(Option.isSome(yield* journal.get("from-config"))).toBe(true)
      const missing = yield* Effect.flip(
        open(PostgresJournal.layerConfig()).pipe(
          Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromUnknown({}))
        )
      )
      expect(String(missing)).toContain("DATABASE_URL")
    }).pipe(Effect.scoped)
  )

  it.live("two table prefixes share one database without seeing each other", () =>
    Effect.gen(function* () {
      const url = inject("postgresUrl")
      const orders = yield* open(PostgresJournal.layer({ url, tablePrefix: prefix("orders") }))
      const billing = yield* open(PostgresJournal.layer({ url, tablePrefix: prefix("billing") }))
      yield* orders.start({ executionId: "same-id", workflow: "Orders", request: "{}", shard: 1, now: 1 })
      const other = yield* billing.start({
        executionId: "same-id",
        workflow: "Billing",
        request: "{}",
        shard: 1,
        now: 2
      })
      expect(other.created).toBe(true)
      expect(Option.map(yield* orders.get("same-id"), (e) => e.workflow)).toEqual(Option.some("Orders"))
      expect((yield* billing.listRunning).map((e) => e.workflow)).toEqual(["Billing"])
    }).pipe(Effect.scoped)
  )

  it.live("a value the server rejects fails only its own writer, not the others in its batch", () =>
    Effect.gen(function* () {
      const journal = yield* open(
        PostgresJournal.layer({ url: inject("postgresUrl"), tablePrefix: prefix("nul") })
      )
      // PostgreSQL text cannot hold NUL; SQLite and memory can. Concurrent starts share a commit.
      const ids = [...Array.from({ length: 20 }, (_, i) => `fine-${i}`), "bad\u0000id"]
      const exits = yield* Effect.forEach(
        ids,
        (executionId) =>
          Effect.exit(journal.start({ executionId, workflow: "W", request: "{}", shard: 1, now: 1 })),
        { concurrency: "unbounded" }
      )
      const failed = ids.filter((_, i) => Exit.isFailure(exits[i]!))
      expect(failed).toEqual(["bad\u0000id"])
      const error = yield* Effect.flip(
        journal.start({ executionId: "bad\u0000id", workflow: "W", request: "{}", shard: 1, now: 1 })
      )
      expect(error.transient).toBe(false)
      expect((yield* journal.listRunning).map((e) => e.executionId).sort()).toEqual(ids.slice(0, 20).sort())
    }).pipe(Effect.scoped)
  )

  it.live(
    "one batch mixing starts, outcomes, completions and several status changes of one execution loses none",
    () =>
      Effect.gen(function* () {
        const journal = yield* open(
          PostgresJournal.layer({ url: inject("postgresUrl"), tablePrefix: prefix("mixed") })
        )
        const ids = Array.from({ length: 20 }, (_, i) => `mixed-${i}`)
        for (const id of ids)
          yield* journal.start({ executionId: id, workflow: "W", request: "{}", shard: 1, now: 1 })
        const write = (
          executionId: string,
          status?: DurableExecutionJournal.StatusChange,
          outcome?: string
        ) =>
          journal.write({
            executionId,
            outcomes:
              outcome === undefined
                ? []
                : [
                    {
                      executionId,
                      stepKey: "a",
                      activityId: "a",
                      seq: 1,
                      previous: null,
                      attempt: 1,
                      outcome
                    }
                  ],
            status,
            now: 2
          })
        // All at once: they share batches, and one execution gets two status changes in one batch.
        yield* Effect.all(
          [
            ...ids
              .slice(0, 10)
              .flatMap((id, i) => [
                write(id, { _tag: "Sleep", wakeAt: 1_000 + i }),
                write(id, { _tag: "RequestInterrupt" })
              ]),
            ...ids
              .slice(10)
              .flatMap((id) => [
                write(id, undefined, "1"),
                write(id, { _tag: "Complete", status: "succeeded", result: "7" })
              ]),
            ...Array.from({ length: 5 }, (_, i) =>
              journal.start({ executionId: `late-${i}`, workflow: "W", request: "{}", shard: 1, now: 3 })
            )
          ],
          { concurrency: "unbounded" }
        )
        for (const [i, id] of ids.slice(0, 10).entries()) {
          const row = Option.getOrThrow(yield* journal.get(id))
          expect(row).toMatchObject({ status: "sleeping", wakeAt: 1_000 + i, interruptRequested: true })
        }
        for (const id of ids.slice(10)) {
          expect(Option.getOrThrow(yield* journal.get(id))).toMatchObject({
            status: "succeeded",
            result: "7"
          })
          expect((yield* journal.steps(id)).map((s) => s.outcome)).toEqual(["1"])
        }
        expect((yield* journal.listRunning).map((e) => e.executionId).sort()).toEqual(
          Array.from({ length: 5 }, (_, i) => `late-${i}`)
        )
      }).pipe(Effect.scoped)
  )

  it.live("connect_timeout in the URL is honoured when connectTimeout is not given", () =>
    Effect.gen(function* () {
      const { port } = yield* silentPort
      const url = `postgres://app@127.0.0.1:${port}/orders?connect_timeout=1`
      // Bounded well below the 10 s default: the URL's 1 s applies.
      const error = yield* Effect.flip(open(PostgresJournal.layer({ url }))).pipe(
        Effect.timeoutOrElse({
          duration: "8 seconds",
          orElse: () => Effect.die(new Error("still connecting"))
        })
      )
      expect(error._tag).toBe("JournalError")
      expect(error.message).toMatch(/timed out/i)
      expect(error.message).toContain("connect_timeout=1 s in the URL")
      // The option, when given, wins over the URL.
      const explicit = yield* Effect.flip(open(PostgresJournal.layer({ url, connectTimeout: "500 millis" })))
      expect(explicit.message).toMatch(/timed out \(after connectTimeout 500/)
    }).pipe(Effect.scoped)
  )

  it.live(
    "statementTimeout: the server cancels a longer statement; a journal operation fails with a JournalError",
    () =>
      Effect.gen(function* () {
        const url = inject("postgresUrl")
        const tablePrefix = prefix("stmt")
        const options: PostgresJournal.PostgresJournalOptions = {
          url,
          tablePrefix,
          statementTimeout: "300 millis"
        }
        const context = yield* Layer.build(
          Layer.merge(PostgresJournal.layer(options), PostgresJournal.clientLayer(options))
        )
        const journal = Context.get(context, DurableExecutionJournal.DurableExecutionJournal)
        const sql = Context.get(context, SqlClient)
        const [setting] = yield* sql<{ readonly statement_timeout: string }>`SHOW statement_timeout`
        expect(setting?.statement_timeout).toBe("300ms")
        const slept = yield* Effect.flip(sql`SELECT pg_sleep(3)`)
        expect(slept.reason._tag).toBe("StatementTimeoutError")

        // Another client (no timeout) holds a lock on the journal's table longer than the timeout.
        const other = Context.get(yield* Layer.build(PostgresJournal.clientLayer({ url })), SqlClient)
        yield* journal.start({ executionId: "locked", workflow: "W", request: "{}", shard: 1, now: 1 })
        const locked = yield* Deferred.make<void>()
        const holder = yield* Effect.forkChild(
          other.withTransaction(
            Effect.gen(function* () {
              yield* other.unsafe(`LOCK TABLE ${tablePrefix}executions IN ACCESS EXCLUSIVE MODE`)
              yield* Deferred.succeed(locked, undefined)
              yield* other`SELECT pg_sleep(2)`
            })
          )
        )
        yield* Deferred.await(locked)
        const error = yield* Effect.flip(journal.get("locked"))
        expect(error._tag).toBe("JournalError")
        expect(error.message).toMatch(/statement timeout/)
        yield* Fiber.join(holder)
        expect(Option.isSome(yield* journal.get("locked"))).toBe(true)
      }).pipe(Effect.scoped)
  )
  it.live(
    "idleInTransactionTimeout: the server ends a transaction left idle (a frozen process) and frees its locks before it resumes; 5 s by default",
    () =>
      Effect.gen(function* () {
        const url = inject("postgresUrl")
        const tablePrefix = prefix("idle")
        const options: PostgresJournal.PostgresJournalOptions = {
          url,
          tablePrefix,
          idleInTransactionTimeout: "300 millis"
        }
        const context = yield* Layer.build(
          Layer.merge(PostgresJournal.layer(options), PostgresJournal.clientLayer(options))
        )
        const journal = Context.get(context, DurableExecutionJournal.DurableExecutionJournal)
        const sql = Context.get(context, SqlClient)
        const [setting] = yield* sql<{
          readonly idle_in_transaction_session_timeout: string
        }>`SHOW idle_in_transaction_session_timeout`
        expect(setting?.idle_in_transaction_session_timeout).toBe("300ms")
        const other = Context.get(yield* Layer.build(PostgresJournal.clientLayer({ url })), SqlClient)
        const [fallback] = yield* other<{
          readonly idle_in_transaction_session_timeout: string
        }>`SHOW idle_in_transaction_session_timeout`
        expect(fallback?.idle_in_transaction_session_timeout).toBe("5s")

        yield* journal.start({ executionId: "held", workflow: "W", request: "{}", shard: 1, now: 1 })
        const table = other(`${tablePrefix}executions`)
        const locked = yield* Deferred.make<void>()
        let resumed = false
        // Holds the row, then stays idle inside its transaction, as a process frozen there would.
        const holder = yield* Effect.forkChild(
          sql
            .withTransaction(
              Effect.gen(function* () {
                yield* sql`SELECT 1 FROM ${table} WHERE execution_id = 'held' FOR UPDATE`
                yield* Deferred.succeed(locked, undefined)
                yield* Effect.sleep("3 seconds")
                resumed = true
                yield* sql`SELECT 1`
              })
            )
            .pipe(Effect.exit)
        )
        yield* Deferred.await(locked)
        const free = other.withTransaction(
          other`SELECT 1 FROM ${table} WHERE execution_id = 'held' FOR UPDATE NOWAIT`
        )
        // Another session gets the row while the holder is still "frozen".
        let freed = yield* Effect.exit(free)
        for (let i = 0; i < 100 && Exit.isFailure(freed) && !resumed; i++) {
          yield* Effect.sleep("20 millis")
          freed = yield* Effect.exit(free)
        }
        expect(Exit.isSuccess(freed)).toBe(true)
        expect(resumed).toBe(false)
        // The holder's transaction is gone: resumed, it fails instead of committing.
        expect(Exit.isFailure(yield* Fiber.join(holder))).toBe(true)
        expect(Option.isSome(yield* journal.get("held"))).toBe(true)
      }).pipe(Effect.scoped)
  )
})
