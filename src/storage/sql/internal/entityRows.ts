/**
 * The rows of the SQL entity store (`<prefix>entity_messages`, `<prefix>entity_state`): their
 * schemas, what a row says about its message, and the one query both the writes and the reads use
 * to learn the outcomes of many messages at once.
 */
import { Effect, Schema } from "effect"
import type { SqlClient } from "effect/sql/SqlClient"
import type { SqlError } from "effect/sql/SqlError"
import type * as Statement from "effect/sql/Statement"
import type { DeadLetter, MessageKey, MessageOutcome, StoredMessage } from "../../../sharding/EntityStore.ts"
import { SqlNumber } from "./columns.ts"

/** A message's key as one string, for sets and maps. */
export const keyOf = (key: MessageKey): string =>
  `${key.entityType}\u0000${key.entityId}\u0000${key.messageId}`

/** The columns of a row that say where its message stands. */
export const OutcomeRow = Schema.Struct({
  status: Schema.Literals(["pending", "processed", "dead"]),
  reply: Schema.NullOr(Schema.String),
  error: Schema.NullOr(Schema.String)
})

/** A row's outcome columns as the store read them, not decoded yet. */
export interface RawOutcome {
  readonly status: unknown
  readonly reply: unknown
  readonly error: unknown
}

/** What a pending message's row says (a duplicate of a message stored by the same batch). */
export const pendingRow: RawOutcome = { status: "pending", reply: null, error: null }

export const toOutcome = (row: typeof OutcomeRow.Type): MessageOutcome =>
  row.status === "pending"
    ? { status: "pending" }
    : row.status === "processed"
      ? { status: "processed", reply: row.reply }
      : { status: "dead", error: row.error ?? "" }

export const PendingRow = Schema.Struct({
  entity_type: Schema.String,
  entity_id: Schema.String,
  message_id: Schema.String,
  shard: SqlNumber,
  seq: SqlNumber,
  payload: Schema.String,
  created_at: SqlNumber
})

export const toStoredMessage = (row: typeof PendingRow.Type): StoredMessage => ({
  entityType: row.entity_type,
  entityId: row.entity_id,
  messageId: row.message_id,
  shard: row.shard,
  seq: row.seq,
  payload: row.payload,
  createdAt: row.created_at
})

export const DeadRow = Schema.Struct({
  entity_type: Schema.String,
  entity_id: Schema.String,
  message_id: Schema.String,
  shard: SqlNumber,
  seq: SqlNumber,
  payload: Schema.String,
  error: Schema.NullOr(Schema.String),
  created_at: SqlNumber,
  done_at: SqlNumber
})

export const toDeadLetter = (row: typeof DeadRow.Type): DeadLetter => ({
  entityType: row.entity_type,
  entityId: row.entity_id,
  messageId: row.message_id,
  shard: row.shard,
  seq: row.seq,
  payload: row.payload,
  error: row.error ?? "",
  createdAt: row.created_at,
  deadAt: row.done_at
})

/**
 * PostgreSQL: the row of the key `e.v` (a JSON array `[entity_type, entity_id, message_id]`), as a
 * lateral subquery: a primary-key lookup per key, whatever the planner believes of the table's
 * size. As a plain join it was planned as a hash join over a sequential scan of the whole table
 * (the keys' JSON counts as 100 rows, and a table never analyzed looks small), once per message at
 * concurrency 1: a process slowed down as the table grew (769 → 303 asks/s over 18,000 messages).
 */
const rowOfKey = (sql: SqlClient, table: Statement.Identifier, columns: Statement.Fragment) =>
  sql`(SELECT ${columns} FROM ${table}
    WHERE entity_type = e.v->>0 AND entity_id = e.v->>1 AND message_id = e.v->>2 LIMIT 1)`

/**
 * The outcome columns of the row of each key (undefined: no row), in one query: the keys travel as
 * one JSON parameter, so the statement's text does not depend on how many there are.
 */
export const selectOutcomes = (
  sql: SqlClient,
  dialect: "sqlite" | "pg",
  prefix: string,
  keys: ReadonlyArray<MessageKey>
): Effect.Effect<Array<RawOutcome | undefined>, SqlError> => {
  if (keys.length === 0) return Effect.succeed([])
  return Effect.map(outcomesStatement(sql, dialect, prefix, keys), (rows) => {
    const found = new Array<RawOutcome | undefined>(keys.length).fill(undefined)
    for (const row of rows) found[Number(row.i)] = row
    return found
  })
}

/** The statement of `selectOutcomes` (exported for the tests that check its plan). */
export const outcomesStatement = (
  sql: SqlClient,
  dialect: "sqlite" | "pg",
  prefix: string,
  keys: ReadonlyArray<MessageKey>
) => {
  const table = sql(`${prefix}entity_messages`)
  const json = JSON.stringify(keys.map((key) => [key.entityType, key.entityId, key.messageId]))
  return dialect === "pg"
    ? sql<RawOutcome & { readonly i: unknown }>`SELECT (e.i - 1)::int AS i, m.status, m.reply, m.error
          FROM json_array_elements(${json}::json) WITH ORDINALITY AS e(v, i)
          CROSS JOIN LATERAL ${rowOfKey(sql, table, sql`status, reply, error`)} AS m`
    : sql<RawOutcome & { readonly i: unknown }>`SELECT j.key AS i, m.status, m.reply, m.error
          FROM json_each(${json}) AS j
          JOIN ${table} AS m ON m.entity_type = json_extract(j.value, '$[0]')
            AND m.entity_id = json_extract(j.value, '$[1]') AND m.message_id = json_extract(j.value, '$[2]')`
}

/**
 * A row of `selectOutcomesAhead`: key `i`'s outcome columns (null: no row), and the messages ahead
 * of it, `[message_id, shard, seq, payload, created_at]` each, by seq, as JSON (text on SQLite, an
 * array on PostgreSQL); null when there are none.
 */
export interface RawAhead {
  readonly i: unknown
  readonly status: unknown
  readonly reply: unknown
  readonly error: unknown
  readonly ahead: unknown
}

/** Above every seq: the bound of a key with no row (every pending message of its entity is ahead). */
const NO_SEQ = Number.MAX_SAFE_INTEGER

/**
 * For each key, in ONE query: its row's outcome columns, and the pending messages of its entity
 * stored before it (`seq` below its own when it is pending, every pending one when it has no row;
 * none when it is done), at most `limit` per key, by seq, through the partial index
 * `entity_messages_pending_by_entity` (migration 14). A key with no row and nothing ahead (a local
 * ask's message, the common case) returns no row.
 */
export const selectOutcomesAhead = (
  sql: SqlClient,
  dialect: "sqlite" | "pg",
  prefix: string,
  keys: ReadonlyArray<MessageKey>,
  limit: number
): Statement.Statement<RawAhead> => {
  const table = sql(`${prefix}entity_messages`)
  const json = JSON.stringify(keys.map((key) => [key.entityType, key.entityId, key.messageId]))
  // Both constants are written into the text, not bound: SQLite plans `seq < COALESCE(m.seq, ?)`
  // and `LIMIT ?` ~10x slower than with the numbers themselves (measured: 136 against 11 µs for
  // one key). The text stays the same from call to call, so the statement stays prepared.
  const noSeq = sql.literal(String(NO_SEQ))
  const max = sql.literal(String(Math.max(1, Math.trunc(limit))))
  return dialect === "pg"
    ? sql<RawAhead>`SELECT (e.i - 1)::int AS i, m.status, m.reply, m.error, a.ahead
        FROM json_array_elements(${json}::json) WITH ORDINALITY AS e(v, i)
        LEFT JOIN LATERAL ${rowOfKey(sql, table, sql`status, reply, error, seq`)} AS m ON true
        LEFT JOIN LATERAL (SELECT json_agg(json_build_array(q.message_id, q.shard, q.seq, q.payload, q.created_at)
            ORDER BY q.seq) AS ahead
          FROM (SELECT r.message_id, r.shard, r.seq, r.payload, r.created_at FROM ${table} AS r
            WHERE (m.status IS NULL OR m.status = 'pending') AND r.entity_type = e.v->>0 AND r.entity_id = e.v->>1
              AND r.status = 'pending' AND r.seq < COALESCE(m.seq, ${noSeq})
            ORDER BY r.seq LIMIT ${max}) AS q) AS a ON true
        WHERE m.status IS NOT NULL OR a.ahead IS NOT NULL`
    : sql<RawAhead>`SELECT i, status, reply, error, ahead FROM (SELECT j.key AS i, m.status, m.reply, m.error,
          CASE WHEN m.status IS NULL OR m.status = 'pending' THEN (
            SELECT json_group_array(json_array(r.message_id, r.shard, r.seq, r.payload, r.created_at)) FROM (
              SELECT r.message_id, r.shard, r.seq, r.payload, r.created_at FROM ${table} AS r
              WHERE r.entity_type = json_extract(j.value, '$[0]') AND r.entity_id = json_extract(j.value, '$[1]')
                AND r.status = 'pending' AND r.seq < COALESCE(m.seq, ${noSeq})
              ORDER BY r.seq LIMIT ${max}) AS r HAVING count(*) > 0)
          END AS ahead
        FROM json_each(${json}) AS j
        LEFT JOIN ${table} AS m ON m.entity_type = json_extract(j.value, '$[0]')
          AND m.entity_id = json_extract(j.value, '$[1]') AND m.message_id = json_extract(j.value, '$[2]'))
        WHERE status IS NOT NULL OR ahead IS NOT NULL`
}
