/**
 * PostgreSQL server faults: the server is stopped (open connections cut) while executions run, and
 * started again. The engine retries the journal with backoff; no recorded outcome is lost, no
 * activity runs twice, and every execution completes once the server is back.
 */
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Fiber, Layer, Schema } from "effect"
import { afterAll, beforeAll } from "vitest"
import { Activity, DurableExecutionJournal, Workflow } from "../../../src/index.ts"
import { PostgresJournal } from "../../../src/postgres.ts"
import { type PostgresServer, startPostgres } from "../../support/PostgresServer.ts"
import { Calls, withEngine } from "../../workflow/fixtures.ts"

// A server of its own: stopping the shared one would break the other test files.
let server: PostgresServer
beforeAll(async () => {
  server = await startPostgres()
})
afterAll(() => server?.dispose())

class Pipeline extends Workflow.TaggedRequest<Pipeline>()("Pipeline", {
  payload: { id: Schema.String },
  success: Schema.String,
  failure: Schema.Never
}) {}

const STEPS = ["fetch", "resize", "store", "index", "notify"]
const EXECUTIONS = 30

const pipeline = (calls: Calls) =>
  Workflow.make(
    Pipeline,
    (r) => `pipeline@${r.id}`,
    ({ id }) =>
      Effect.gen(function* () {
        let trail = id
        for (const step of STEPS) {
          trail = yield* calls
            .tracked(step, Effect.as(Effect.sleep("40 millis"), `${trail}>${step}`))
            .pipe(Activity.make(step, Schema.String, Schema.Never))
        }
        return trail
      })
  )

describe("PostgreSQL server restart", () => {
  it.live(
    "executions running while the server restarts all complete; no outcome lost, no activity re-run",
    () =>
      Effect.gen(function* () {
        const context = yield* Layer.build(
          PostgresJournal.layer({ url: server.url, connectTimeout: "2 seconds" })
        )
        const journal = Context.get(context, DurableExecutionJournal.DurableExecutionJournal)
        const calls = new Calls()
        const ids = Array.from({ length: EXECUTIONS }, (_, i) => String(i))
        const results = yield* withEngine(journal, pipeline(calls), (engine) =>
          Effect.gen(function* () {
            const running = yield* Effect.forkChild(
              Effect.forEach(ids, (id) => engine.send(new Pipeline({ id })), { concurrency: "unbounded" })
            )
            // Let executions record a step or two, then take the server away for a while.
            yield* Effect.sleep("50 millis").pipe(
              Effect.repeat({ until: () => calls.count("fetch") > 0, times: 400 })
            )
            // The fault hits executions in the middle: some steps recorded, none finished.
            expect(calls.count("fetch")).toBeGreaterThan(0)
            expect(calls.count("notify")).toBe(0)
            yield* Effect.promise(() => server.stop())
            yield* Effect.sleep("1500 millis")
            yield* Effect.promise(() => server.start())
            return yield* Fiber.join(running)
          })
        )
        expect(results).toEqual(ids.map((id) => [id, ...STEPS].join(">")))
        // Each activity ran once per execution: nothing recorded was lost and run again.
        for (const step of STEPS) expect(calls.count(step)).toBe(EXECUTIONS)
        for (const id of ids) {
          const steps = yield* journal.steps(`pipeline@${id}`)
          expect(steps.map((s) => [s.stepKey, s.attempt, s.outcome !== null])).toEqual(
            STEPS.map((step) => [step, 1, true])
          )
          const row = yield* journal.get(`pipeline@${id}`)
          expect(row._tag === "Some" && row.value.status).toBe("succeeded")
        }
      }).pipe(Effect.scoped),
    60_000
  )
})
