/**
 * A statement that the server cancels at the journal's statement timeout, every time (another
 * session holds a lock on the table for longer): the engine retries it a few times, then the
 * caller's call fails with a `JournalError` naming the statement's purpose and the timeout, instead
 * of retrying forever. Nothing the cancelled statements wrote is kept, and the execution completes
 * once the lock is gone.
 */
import { describe, expect, it } from "@effect/vitest"
import { Context, Deferred, Effect, Fiber, Layer, Option, Schema } from "effect"
import { SqlClient } from "effect/sql/SqlClient"
import { inject } from "vitest"
import { Activity, DurableExecutionJournal, Workflow } from "../../../src/index.ts"
import { PostgresJournal } from "../../../src/postgres.ts"
import { STATEMENT_TIMEOUT_ATTEMPTS } from "../../../src/workflow/internal/ReliableJournal.ts"
import { Calls, withEngine } from "../../workflow/fixtures.ts"

class Charge extends Workflow.TaggedRequest<Charge>()("Charge", {
  payload: { id: Schema.String },
  success: Schema.String,
  failure: Schema.Never
}) {}

const TIMEOUT_MILLIS = 50

describe("PostgreSQL statement timeout", () => {
  it.live(
    "a statement that times out every time fails the call with its purpose and the timeout; nothing is corrupted",
    () =>
      Effect.gen(function* () {
        const url = inject("postgresUrl")
        const tablePrefix = `stmt_${Math.random().toString(36).slice(2, 8)}_`
        const context = yield* Layer.build(
          PostgresJournal.layer({ url, tablePrefix, statementTimeout: `${TIMEOUT_MILLIS} millis` })
        )
        const journal = Context.get(context, DurableExecutionJournal.DurableExecutionJournal)
        // Another session, with no statement timeout, holds the locks.
        const other = Context.get(yield* Layer.build(PostgresJournal.clientLayer({ url })), SqlClient)
        /** Holds an exclusive lock on `table` until the returned release is run. */
        const lock = (table: string) =>
          Effect.gen(function* () {
            const locked = yield* Deferred.make<void>()
            const release = yield* Deferred.make<void>()
            const holder = yield* Effect.forkChild(
              other.withTransaction(
                Effect.gen(function* () {
                  yield* other.unsafe(`LOCK TABLE ${tablePrefix}${table} IN ACCESS EXCLUSIVE MODE`)
                  yield* Deferred.succeed(locked, undefined)
                  yield* Deferred.await(release)
                })
              )
            )
            yield* Deferred.await(locked)
            return Effect.andThen(Deferred.succeed(release, undefined), Fiber.join(holder))
          })

        const calls = new Calls()
        const started = yield* Deferred.make<void>()
        const proceed = yield* Deferred.make<void>()
        const workflow = Workflow.make(
          Charge,
          (r) => `charge@${r.id}`,
          () =>
            calls
              .tracked(
                "charge",
                Effect.andThen(Deferred.succeed(started, undefined), Effect.as(Deferred.await(proceed), "ok"))
              )
              .pipe(Activity.make("charge", Schema.String, Schema.Never))
        )

        yield* withEngine(journal, workflow, (engine) =>
          Effect.gen(function* () {
            // The start's insert waits for the lock on the executions table, every time.
            const unlockExecutions = yield* lock("executions")
            const startError = yield* Effect.flip(engine.send(new Charge({ id: "a" })))
            yield* unlockExecutions
            expect(startError._tag).toBe("JournalError")
            if (startError._tag !== "JournalError") return
            expect(startError.operation).toBe('start of execution "charge@a"')
            expect(startError.timeoutMillis).toBe(TIMEOUT_MILLIS)
            expect(startError.transient).toBe(false)
            expect(startError.message).toContain('statement for the start of execution "charge@a"')
            expect(startError.message).toContain(`statement timeout (${TIMEOUT_MILLIS} ms)`)
            expect(startError.message).toContain(
              `cancelled on ${STATEMENT_TIMEOUT_ATTEMPTS} attempts in a row`
            )
            // Not stored: the call can be made again.
            expect(Option.isNone(yield* journal.get("charge@a"))).toBe(true)

            // In the middle of a run: the activity's outcome cannot be written.
            const first = yield* Effect.forkChild(Effect.flip(engine.send(new Charge({ id: "a" }))))
            yield* Deferred.await(started)
            const unlockSteps = yield* lock("steps")
            yield* Deferred.succeed(proceed, undefined)
            const writeError = yield* Fiber.join(first)
            yield* unlockSteps
            expect(writeError._tag).toBe("JournalError")
            if (writeError._tag !== "JournalError") return
            expect(writeError.operation).toBe('write of execution "charge@a"')
            expect(writeError.timeoutMillis).toBe(TIMEOUT_MILLIS)
            expect(writeError.message).toContain(`statement timeout (${TIMEOUT_MILLIS} ms)`)

            // Nothing corrupted: the execution is unfinished, its activity has no outcome recorded.
            const row = yield* journal.get("charge@a")
            expect(Option.map(row, (r) => r.status)).toEqual(Option.some("running"))
            const steps = yield* journal.steps("charge@a")
            expect(steps.filter((step) => step.outcome !== null)).toEqual([])
            // Sent again once the lock is gone, it completes: the activity runs again (I2).
            expect(yield* engine.send(new Charge({ id: "a" }))).toBe("ok")
            expect(calls.count("charge")).toBe(2)
            expect(calls.attempts.get("charge")).toEqual([1, 2])
          })
        )
        const done = yield* journal.get("charge@a")
        expect(Option.map(done, (r) => r.status)).toEqual(Option.some("succeeded"))
      }).pipe(Effect.scoped),
    60_000
  )
})
