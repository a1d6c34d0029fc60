/**
 * The inbox's push notifications outlive their session: when the server ends the LISTEN session
 * (`pg_terminate_backend`, a server restart), an owner listens again and is woken by the next
 * arrival at once, instead of falling back to polling for the rest of its life. The poll interval
 * here is a minute, so only a pushed arrival can deliver in time.
 */
import { describe, expect, it } from "@effect/vitest"
import { Context, Deferred, Effect, Exit, Layer, Schedule } from "effect"
import { SqlClient } from "effect/sql/SqlClient"
import { inject } from "vitest"
import { DurableExecutionJournal } from "../../../src/index.ts"
import { PostgresJournal } from "../../../src/postgres.ts"
import * as Deliveries from "../../../src/workflow/internal/Deliveries.ts"
import { unfenced } from "../../../src/workflow/internal/FencedJournal.ts"

describe("PostgreSQL inbox notifications", () => {
  it.live(
    "an owner whose LISTEN session the server ended listens again and is woken by the next arrival",
    () =>
      Effect.gen(function* () {
        const url = inject("postgresUrl")
        const tablePrefix = `relisten_${Math.random().toString(36).slice(2, 8)}_`
        const journal = Context.get(
          yield* Layer.build(PostgresJournal.layer({ url, tablePrefix })),
          DurableExecutionJournal.DurableExecutionJournal
        )
        const admin = Context.get(yield* Layer.build(PostgresJournal.clientLayer({ url })), SqlClient)
        const delivered = new Map<string, Deferred.Deferred<void>>()
        const arrival = (executionId: string) => {
          const deferred = Deferred.makeUnsafe<void>()
          delivered.set(executionId, deferred)
          return deferred
        }
        const first = arrival("first")
        const second = arrival("second")
        yield* Effect.forkScoped(
          Deliveries.loop({
            journal: unfenced(journal),
            intervalMillis: 60_000,
            shards: () => [0],
            deliver: (entry) =>
              Effect.sync(() => {
                const deferred = delivered.get(entry.executionId)
                if (deferred !== undefined) Deferred.doneUnsafe(deferred, Exit.void)
              })
          })
        )
        /** The backends listening on this journal's channel. */
        const listeners = admin<{ readonly pid: number }>`SELECT pid FROM pg_stat_activity
          WHERE query LIKE ${`LISTEN %${tablePrefix}%`} AND pid <> pg_backend_pid()`
        /** Waits for a delivery; the poll (every 60 s) cannot make it within the backstop. */
        const deliveredPushed = (deferred: Deferred.Deferred<void>, executionId: string) =>
          Deferred.await(deferred).pipe(
            Effect.timeoutOrElse({
              duration: "10 seconds",
              orElse: () =>
                Effect.die(new Error(`${executionId} was not delivered within 10 s: no arrival was pushed`))
            })
          )
        const start = (executionId: string) =>
          journal.start({
            executionId,
            workflow: "W",
            request: "{}",
            shard: 0,
            notify: true,
            now: Date.now()
          })

        // Listening: an arrival is pushed (the first take, at start, found the inbox empty).
        yield* Effect.repeat(listeners, {
          until: (rows) => rows.length > 0,
          schedule: Schedule.spaced("20 millis")
        })
        yield* start("first")
        yield* deliveredPushed(first, "first")

        // The server ends the LISTEN session; the next arrival still wakes the owner.
        const ended = yield* listeners
        expect(ended.length).toBe(1)
        yield* admin`SELECT pg_terminate_backend(${ended[0]!.pid})`
        const again = yield* Effect.repeat(listeners, {
          until: (rows) => rows.some((row) => row.pid !== ended[0]!.pid),
          schedule: Schedule.spaced("20 millis")
        })
        expect(again.length).toBe(1)
        yield* start("second")
        yield* deliveredPushed(second, "second")
      }).pipe(Effect.scoped),
    30_000
  )
})
