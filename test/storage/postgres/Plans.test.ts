/**
 * The plans PostgreSQL makes for the statements that look rows up by key, on tables never analyzed
 * (a process that has just started storing: autovacuum's analyze comes a minute later at best).
 * A join of the keys' JSON (100 rows to the planner) with such a table was planned as a sequential
 * scan of the whole table, once per call: a process slowed down as its tables grew.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import type { SqlClient } from "effect/sql/SqlClient"
import type * as Statement from "effect/sql/Statement"
import type { DurableExecutionJournal } from "../../../src/index.ts"
import { outcomesStatement, selectOutcomesAhead } from "../../../src/storage/sql/internal/entityRows.ts"
import { stepsOfMany } from "../../../src/storage/sql/internal/stepsOfMany.ts"
import { completeAll, rowPassesFence } from "../../../src/storage/sql/internal/writes.ts"
import { postgres } from "../backends.ts"

/** The (node type, relation) of every node of an `EXPLAIN (FORMAT JSON)` plan. */
const nodesOf = (plan: unknown): Array<string> => {
  if (typeof plan !== "object" || plan === null) return []
  const node = plan as Record<string, unknown>
  const own =
    typeof node["Node Type"] === "string" ? [`${node["Node Type"]} ${node["Relation Name"] ?? ""}`] : []
  return [
    ...own,
    ...Object.values(node).flatMap((value) =>
      Array.isArray(value) ? value.flatMap(nodesOf) : nodesOf(value)
    )
  ]
}

/**
 * The nodes of `statement`'s plan for its parameters (a custom plan), and of the generic plan a
 * prepared statement settles on (`plan_cache_mode = force_generic_plan`). Not run: `EXPLAIN` only.
 */
const plans = (sql: SqlClient, statement: Statement.Statement<unknown>) =>
  Effect.gen(function* () {
    const [text, params] = statement.compile()
    const custom = yield* sql.unsafe<{ "QUERY PLAN": unknown }>(`EXPLAIN (FORMAT JSON) ${text}`, params)
    const literals = params.map((param) => `'${String(param).replaceAll("'", "''")}'`).join(", ")
    const generic = yield* sql.withTransaction(
      Effect.gen(function* () {
        yield* sql.unsafe(`PREPARE plan_check AS ${text}`)
        yield* sql.unsafe("SET LOCAL plan_cache_mode = force_generic_plan")
        const plan = yield* sql.unsafe<{ "QUERY PLAN": unknown }>(
          `EXPLAIN (FORMAT JSON) EXECUTE plan_check(${literals})`
        )
        yield* sql.unsafe("DEALLOCATE plan_check")
        return plan
      })
    )
    return [
      ["custom", nodesOf(custom[0]?.["QUERY PLAN"])],
      ["generic", nodesOf(generic[0]?.["QUERY PLAN"])]
    ] as const
  })

/** Neither plan of `statement` reads `table` whole. */
const expectNoScanOf = (
  sql: SqlClient,
  name: string,
  statement: Statement.Statement<unknown>,
  table: string
) =>
  Effect.gen(function* () {
    for (const [mode, nodes] of yield* plans(sql, statement)) {
      expect(nodes.length, `${name}, ${mode}`).toBeGreaterThan(0)
      expect(
        nodes.filter((node) => node === `Seq Scan ${table}`),
        `${name}, ${mode}: ${nodes.join(", ")}`
      ).toEqual([])
    }
  })

/** Executions `x-0` … `x-4999` of shard 1, 64 at a time; `then` runs after each one's start. */
const startMany = (
  journal: DurableExecutionJournal.DurableExecutionJournal["Service"],
  then?: (executionId: string) => Effect.Effect<unknown, unknown>
) =>
  Effect.forEach(
    Array.from({ length: 5_000 }, (_, i) => `x-${i}`),
    (executionId) => {
      const started = journal.start({ executionId, workflow: "W", request: "{}", shard: 1, now: 1 })
      return then === undefined ? started : Effect.andThen(started, then(executionId))
    },
    { concurrency: 64, discard: true }
  )

describe("PostgreSQL plans on tables never analyzed", () => {
  it.live("a message's outcome is looked up by its key, never by scanning the table", () =>
    Effect.gen(function* () {
      const storage = yield* postgres.storage
      const { sql, prefix } = storage.raw!
      const cluster = yield* storage.openCluster
      for (let i = 0; i < 10; i++) {
        yield* cluster.entities.enqueue(
          Array.from({ length: 500 }, (_, j) => ({
            entityType: "Cart",
            entityId: "cart-1",
            messageId: `m-${i}-${j}`,
            shard: 1,
            payload: "{}",
            now: 1
          }))
        )
      }
      const keys = [{ entityType: "Cart", entityId: "cart-1", messageId: "m-3-7" }]
      const table = `${prefix}entity_messages`
      yield* expectNoScanOf(sql, "outcomes", outcomesStatement(sql, "pg", prefix, keys), table)
      yield* expectNoScanOf(sql, "outcomesAhead", selectOutcomesAhead(sql, "pg", prefix, keys, 10), table)
    }).pipe(Effect.scoped)
  )

  it.live("a batch's completions find their executions by key, never by scanning the table", () =>
    Effect.gen(function* () {
      const storage = yield* postgres.storage
      const { sql, prefix } = storage.raw!
      const journal = yield* storage.open
      yield* startMany(journal)
      const completion = { status: "succeeded", result: "1", updated_at: 2, fs: null, fe: null }
      const statement = completeAll(sql, sql(`${prefix}executions`), [
        { execution_id: "x-7", ...completion },
        { execution_id: "x-8", ...completion }
      ])
      yield* expectNoScanOf(sql, "completions", statement, `${prefix}executions`)
    }).pipe(Effect.scoped)
  )

  it.live("a fenced batch's completions parse their rows once, never once per execution", () =>
    Effect.gen(function* () {
      const storage = yield* postgres.storage
      const { sql, prefix } = storage.raw!
      const journal = yield* storage.open
      yield* storage.openCluster
      yield* startMany(journal)
      const completion = { status: "succeeded", result: "1", updated_at: 2, fs: 1, fe: 1 }
      // As the batch statement has it: a `fence` CTE, the completions in a CTE of their own.
      const statement = sql`WITH fence AS (SELECT shard_id, epoch FROM ${sql(`${prefix}shards`)}
          WHERE shard_id = ANY(ARRAY[1]) ORDER BY shard_id FOR SHARE),
        w0 AS (${completeAll(
          sql,
          sql(`${prefix}executions`),
          Array.from({ length: 200 }, (_, i) => ({ execution_id: `x-${i}`, ...completion })),
          { passes: rowPassesFence(sql) }
        )})
        SELECT 1`
      yield* expectNoScanOf(sql, "fenced completions", statement, `${prefix}executions`)
      // The fence filtered the JSON rows of the join: the planner looped over the executions found
      // and ran `json_to_recordset` again under each (n² rows parsed per batch).
      for (const [mode, nodes] of yield* plans(sql, statement)) {
        expect(
          nodes.filter((node) => node.startsWith("Nested Loop")),
          `${mode}: ${nodes.join(", ")}`
        ).toEqual([])
      }
    }).pipe(Effect.scoped)
  )

  it.live("the steps of a page of runs loading are looked up by execution, never by scanning the table", () =>
    Effect.gen(function* () {
      const storage = yield* postgres.storage
      const { sql, prefix } = storage.raw!
      const journal = yield* storage.open
      yield* startMany(journal, (executionId) =>
        journal.write({
          executionId,
          outcomes: [],
          attempt: { executionId, stepKey: "a", activityId: "a", seq: 1, previous: null, attempt: 1 },
          now: 2
        })
      )
      const ids = Array.from({ length: 64 }, (_, i) => `x-${i * 7}`)
      yield* expectNoScanOf(sql, "stepsMany", stepsOfMany(sql, "pg", prefix, ids), `${prefix}steps`)
      expect((yield* journal.stepsMany!(ids)).map((step) => step.executionId).sort()).toEqual([...ids].sort())
    }).pipe(Effect.scoped)
  )
})
