/**
 * The steps of several executions in one statement (`stepsMany`), each execution's by `seq`.
 *
 * PostgreSQL looks each id up in the primary key as a lateral subquery, kept apart from the ids by
 * `OFFSET 0` (or the planner pulls it up into a hash join over the whole table): as
 * `execution_id = ANY(…)` the planner scanned the whole steps table for every page of runs loading
 * (a table never analyzed looks small; `EXPLAIN ANALYZE`: 4,936 of 5,000 rows read to return 64),
 * and resuming 50,000 executions took 3x as long as with one query per execution. SQLite probes the
 * key per value of `IN (…)` either way.
 */
import type { SqlClient } from "effect/sql/SqlClient"
import type * as Statement from "effect/sql/Statement"

/** The statement; `executionIds` travel as one JSON parameter (the text never changes). */
export const stepsOfMany = (
  sql: SqlClient,
  dialect: "sqlite" | "pg",
  prefix: string,
  executionIds: ReadonlyArray<string>
): Statement.Statement<Record<string, unknown>> => {
  const steps = sql(`${prefix}steps`)
  const ids = JSON.stringify(executionIds)
  return dialect === "pg"
    ? sql`SELECT s.* FROM (SELECT DISTINCT value AS id FROM json_array_elements_text(${ids}::json)) AS k
        CROSS JOIN LATERAL (SELECT * FROM ${steps} WHERE execution_id = k.id OFFSET 0) AS s
        ORDER BY s.execution_id, s.seq`
    : sql`SELECT * FROM ${steps} WHERE execution_id IN (SELECT value FROM json_each(${ids}))
        ORDER BY execution_id, seq`
}
