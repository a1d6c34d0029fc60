/**
 * Golden journals: executions recorded by earlier versions, checked into `test/fixtures/journals`,
 * must still resume with the current code. A change to the journal format, the step keys, the
 * outcome encoding or the replay rules that breaks running executions fails here.
 */
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Schema } from "effect"
import { SqlClient } from "effect/sql/SqlClient"
import { DurableExecutionJournal, WorkflowEngine } from "../../src/index.ts"
import * as SqliteClient from "../../src/storage/sqlite/SqliteClient.ts"
import * as SqliteJournal from "../../src/storage/sqlite/SqliteJournal.ts"
import { testTempDir } from "../support/tempDir.ts"
import { GoldenRequest, goldenWorkflow } from "./golden.ts"

const Row = Schema.Record(Schema.String, Schema.Union([Schema.String, Schema.Number, Schema.Null]))
const Fixture = Schema.Struct({ executions: Schema.Array(Row), steps: Schema.Array(Row) })

const loadFixture = (name: string) =>
  Schema.decodeUnknownSync(Fixture)(
    JSON.parse(readFileSync(join(import.meta.dirname, "..", "fixtures", "journals", name), "utf8"))
  )

describe("golden journals", () => {
  it.live("golden-v1: crashed in the refund compensation; resumes, replays the rest, refunds once", () =>
    Effect.gen(function* () {
      const fixture = loadFixture("golden-v1.json")
      const journal = yield* SqliteJournal.make()
      const sql = yield* SqlClient
      for (const row of fixture.executions)
        yield* sql`INSERT INTO effect_cluster_executions ${sql.insert(row)}`
      for (const row of fixture.steps) yield* sql`INSERT INTO effect_cluster_steps ${sql.insert(row)}`
      const ran: Array<string> = []
      const result = yield* Effect.scoped(
        Effect.flatMap(WorkflowEngine.makeScoped(goldenWorkflow((id) => ran.push(id), false)), (engine) =>
          engine.send(new GoldenRequest({ orderId: "o-1", cardNumber: "4242" }))
        )
      ).pipe(Effect.provide(Layer.succeed(DurableExecutionJournal.DurableExecutionJournal, journal)))
      expect(result).toEqual({ refunded: true, total: 42.5 })
      expect(ran).toEqual(["refund"])
      const refund = (yield* journal.steps("golden@o-1")).find((step) => step.stepKey === "refund")
      expect(refund?.attempt).toBe(2)
    }).pipe(
      Effect.provide(SqliteClient.layer({ filename: join(testTempDir("golden-"), "j.db") })),
      Effect.scoped
    )
  )
})
