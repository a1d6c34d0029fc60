/**
 * `column IN (list)` with the whole list as ONE parameter, so that a statement's text does not
 * depend on the list's length (PostgreSQL keeps it prepared; no parameter limit).
 *
 * On PostgreSQL the list is a JSON parameter turned into an array by an init plan and compared with
 * `= ANY`: the planner can serve it from the column's index, and its estimate does not depend on
 * the parameter, so the server keeps one generic plan. (`= ANY($1::int[])` is re-planned at every
 * execution: its custom plans look cheaper than the generic one. Measured on the fence of a write:
 * ~430 µs per statement against ~300 µs.) A one-element integer list is `column = $1`, the
 * cheapest of all (~240 µs): a pod's lone write names one shard.
 */
import type { SqlClient } from "effect/sql/SqlClient"
import type * as Statement from "effect/sql/Statement"

/** `column` is one of the integers `values`. */
export const inIntegers = (
  sql: SqlClient,
  dialect: "sqlite" | "pg",
  column: string,
  values: ReadonlyArray<number>
): Statement.Fragment =>
  dialect === "pg"
    ? values.length === 1
      ? sql`${sql(column)} = ${values[0]!}`
      : sql`${sql(column)} = ANY(ARRAY(SELECT value::int FROM json_array_elements_text(${JSON.stringify(values)}::json)))`
    : sql`${sql(column)} IN (SELECT value FROM json_each(${JSON.stringify(values)}))`

/** `column` is one of the strings `values`. */
export const inTexts = (
  sql: SqlClient,
  dialect: "sqlite" | "pg",
  column: string,
  values: ReadonlyArray<string>
): Statement.Fragment =>
  dialect === "pg"
    ? sql`${sql(column)} = ANY(ARRAY(SELECT json_array_elements_text(${JSON.stringify(values)}::json)))`
    : sql`${sql(column)} IN (SELECT value FROM json_each(${JSON.stringify(values)}))`
