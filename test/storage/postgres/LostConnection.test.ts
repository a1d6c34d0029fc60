/**
 * Connections lost in the middle of a transaction: the driver's ROLLBACK (or a failed COMMIT's
 * cleanup) fails on the dead connection too, and `withTransaction` reports that as a defect. The
 * journal must keep it what it is, a typed transient `JournalError` that callers retry, not a
 * defect that passes every retry and kills the caller's fiber (a pod's senders died of it when the
 * server ended their sessions). Every call either succeeds or fails typed, and what succeeded is
 * stored.
 */
import { describe, expect, it } from "@effect/vitest"
import { Cause, Context, Effect, Exit, Layer } from "effect"
import { inject } from "vitest"
import { DurableExecutionJournal, WorkflowErrors } from "../../../src/index.ts"
import { PostgresJournal } from "../../../src/postgres.ts"
import * as TcpProxy from "../../support/TcpProxy.ts"

const EXECUTIONS = 40
const ROUNDS = 12

describe("PostgreSQL connections lost inside transactions", () => {
  it.live(
    "signals stored while connections are reset fail typed and transient, never as defects; the stored ones are kept",
    () =>
      Effect.gen(function* () {
        const target = new URL(inject("postgresUrl"))
        const proxy = yield* TcpProxy.scoped({ targetHost: target.hostname, targetPort: Number(target.port) })
        const via = new URL(target)
        via.host = `127.0.0.1:${proxy.port}`
        const tablePrefix = `lost_${Math.random().toString(36).slice(2, 8)}_`
        const context = yield* Layer.build(
          PostgresJournal.layer({ url: via.toString(), tablePrefix, connectTimeout: "2 seconds" })
        )
        const journal = Context.get(context, DurableExecutionJournal.DurableExecutionJournal)
        const ids = Array.from({ length: EXECUTIONS }, (_, i) => `lost-${i}`)
        for (const executionId of ids) {
          yield* journal.start({ executionId, workflow: "W", request: "{}", shard: 0, now: Date.now() })
        }

        // Each round: a signal to every execution (each one transaction), with every connection
        // reset while they are in flight.
        const exits: Array<Exit.Exit<boolean, WorkflowErrors.JournalError>> = []
        const stored = new Set<string>()
        for (let round = 0; round < ROUNDS; round++) {
          const resetting = setTimeout(() => proxy.reset(), 2 + (round % 6) * 3)
          const calls = yield* Effect.forEach(
            ids,
            (executionId) =>
              Effect.exit(
                journal.signal({ executionId, name: `s${round}`, payload: `"${round}"`, now: Date.now() })
              ).pipe(
                Effect.tap((exit) =>
                  Effect.sync(() => {
                    if (Exit.isSuccess(exit)) stored.add(`${executionId}/s${round}`)
                  })
                )
              ),
            { concurrency: 8 }
          )
          clearTimeout(resetting)
          exits.push(...calls)
        }

        const defects = exits.filter((exit) => Exit.isFailure(exit) && Cause.hasDies(exit.cause))
        expect(
          defects.map((exit) => (Exit.isFailure(exit) ? Cause.pretty(exit.cause).split("\n")[0] : "")),
          "no call may die of a lost connection"
        ).toEqual([])
        const failed = exits.flatMap((exit) =>
          Exit.isFailure(exit) ? [Cause.findErrorOption(exit.cause)] : []
        )
        // The resets hit transactions in flight (else this test shows nothing)...
        expect(failed.length).toBeGreaterThan(0)
        // ...and each failure is the typed, transient error that callers retry.
        for (const error of failed) {
          expect(error._tag).toBe("Some")
          if (error._tag === "Some") {
            expect(error.value).toBeInstanceOf(WorkflowErrors.JournalError)
            expect(error.value.transient).toBe(true)
          }
        }
        // What a call reported stored is stored.
        for (const key of stored) {
          const [executionId, name] = key.split("/") as [string, string]
          const payload = yield* journal.getSignal(executionId, name)
          expect(payload._tag, key).toBe("Some")
        }
      }).pipe(Effect.scoped),
    60_000
  )
})
