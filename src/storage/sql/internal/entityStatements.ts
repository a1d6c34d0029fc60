/**
 * The statements of the SQL entity store's writes, per dialect: storing the messages of a batch
 * that have no row yet, applying a round of owner writes (fence check, done mark or insertion, the
 * entities' states), and replaying a dead letter. Each batch travels as ONE JSON parameter
 * (`json_each` on SQLite, `json_to_recordset` on PostgreSQL), so a statement's text does not depend
 * on the batch's size and stays prepared, and a batch costs a few statements, not a few per row.
 *
 * Sequence numbers must follow the commit order of pending messages, or an owner paging `pending`
 * by `afterSeq` could pass over a message that committed late. SQLite commits one writer at a time
 * and numbers messages from a counter row (`entity_seq` in `<prefix>cluster`). PostgreSQL numbers
 * them from the column's identity sequence, and a statement that makes messages pending (store,
 * replay) first takes a transaction-level advisory lock, held until its commit, so numbers are
 * drawn in commit order. Rows inserted done (an owner's write of a message with no row) need no
 * order and take no lock.
 */
import { Effect } from "effect"
import type { SqlClient } from "effect/sql/SqlClient"
import type { EntityFence, MessageKey, NewMessage } from "../../../sharding/EntityStore.ts"
import { advisoryLockKey } from "../Migrations.ts"
import { keyOf } from "./entityRows.ts"
import { lockedEpochs } from "./epochGate.ts"
import { inIntegers } from "./lists.ts"
import { inTransaction } from "./transaction.ts"

/** A `complete` or `deadLetter` item, in one shape. */
export interface OwnerWrite extends MessageKey {
  readonly fence: EntityFence | undefined
  readonly shard: number
  readonly payload: string
  readonly status: "processed" | "dead"
  readonly reply: string | null
  readonly error: string | null
  /** `complete` only: the entity's state after the message, written with it. */
  readonly state: string | undefined
  readonly now: number
}

export interface EntityStatementsOptions {
  readonly sql: SqlClient
  readonly prefix: string
  readonly dialect: "sqlite" | "pg"
}

interface MessageKeyRow {
  readonly entity_type: string
  readonly entity_id: string
  readonly message_id: string
}

const keyOfRow = (row: MessageKeyRow): string =>
  keyOf({ entityType: row.entity_type, entityId: row.entity_id, messageId: row.message_id })

/** The entity of each write that carries a state, with its last such write (by position). */
const lastStates = (writes: ReadonlyArray<OwnerWrite>) => {
  const last = new Map<string, OwnerWrite & { readonly state: string }>()
  for (const write of writes) {
    if (write.state !== undefined)
      last.set(`${write.entityType}\u0000${write.entityId}`, { ...write, state: write.state })
  }
  return [...last.values()]
}

export const make = ({ sql, prefix, dialect }: EntityStatementsOptions) => {
  const messages = sql(`${prefix}entity_messages`)
  const states = sql(`${prefix}entity_state`)
  const shards = sql(`${prefix}shards`)
  const cluster = sql(`${prefix}cluster`)
  const sequenceLock = advisoryLockKey(`${prefix}:entity_seq`)

  /** SQLite: reserves `count` sequence numbers; returns the first. */
  const allocate = (count: number) =>
    Effect.map(
      sql<{ readonly value: unknown }>`INSERT INTO ${cluster} (name, value) VALUES ('entity_seq', ${count})
        ON CONFLICT (name) DO UPDATE SET value = value + excluded.value RETURNING value`,
      (rows) => Number(rows[0]?.value) - count + 1
    )

  /** The stored epochs of `shardIds` (SQLite; PostgreSQL reads them in `pgWriteDone`). */
  const readEpochs = (shardIds: ReadonlyArray<number>) =>
    shardIds.length === 0
      ? Effect.succeed(new Map<number, number>())
      : Effect.map(
          sql<{ readonly shard_id: unknown; readonly epoch: unknown }>`SELECT shard_id, epoch FROM ${shards}
            WHERE ${inIntegers(sql, dialect, "shard_id", shardIds)}`,
          (rows) => new Map(rows.map((row) => [Number(row.shard_id), Number(row.epoch)]))
        )

  // --- storing messages ---

  const sqliteInsertPending = (batch: ReadonlyArray<NewMessage>) =>
    Effect.gen(function* () {
      const first = yield* allocate(batch.length)
      const rows = yield* sql<MessageKeyRow>`INSERT INTO ${messages}
        (entity_type, entity_id, message_id, shard, seq, payload, status, created_at)
        SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, ${first} + key, value ->> 4, 'pending', value ->> 5
        FROM json_each(${JSON.stringify(
          batch.map((message) => [
            message.entityType,
            message.entityId,
            message.messageId,
            message.shard,
            message.payload,
            message.now
          ])
        )}) WHERE true ORDER BY key
        ON CONFLICT (entity_type, entity_id, message_id) DO NOTHING
        RETURNING entity_type, entity_id, message_id`
      return new Set(rows.map(keyOfRow))
    })

  const pgInsertPending = (batch: ReadonlyArray<NewMessage>) =>
    Effect.map(
      sql<MessageKeyRow>`WITH lock AS (SELECT pg_advisory_xact_lock(${sequenceLock}))
        INSERT INTO ${messages} (entity_type, entity_id, message_id, shard, payload, status, created_at)
        SELECT r.entity_type, r.entity_id, r.message_id, r.shard, r.payload, 'pending', r.created_at
        FROM lock, json_to_recordset(${JSON.stringify(
          batch.map((message, n) => ({
            n,
            entity_type: message.entityType,
            entity_id: message.entityId,
            message_id: message.messageId,
            shard: message.shard,
            payload: message.payload,
            created_at: message.now
          }))
        )}::json) AS r(n int, entity_type text, entity_id text, message_id text, shard int, payload text,
          created_at bigint)
        ORDER BY r.n
        ON CONFLICT (entity_type, entity_id, message_id) DO NOTHING
        RETURNING entity_type, entity_id, message_id`,
      (rows) => new Set(rows.map(keyOfRow))
    )

  // --- owner writes ---

  /**
   * SQLite, in the batch's transaction: the fence check, then pending rows marked done, missing
   * rows inserted done, and the states of the entities whose messages were written.
   */
  const sqliteWriteDone = (batch: ReadonlyArray<OwnerWrite>, fenced: ReadonlyArray<number>) =>
    Effect.gen(function* () {
      const epochs = yield* readEpochs(fenced)
      const passing = batch.filter(
        (write) => write.fence === undefined || epochs.get(write.fence.shard) === write.fence.epoch
      )
      const written = new Set<string>()
      if (passing.length > 0) {
        const updated = yield* sql<MessageKeyRow>`UPDATE ${messages}
          SET status = j.value ->> 3, reply = j.value ->> 4, error = j.value ->> 5, done_at = j.value ->> 6
          FROM json_each(${JSON.stringify(
            passing.map((write) => [
              write.entityType,
              write.entityId,
              write.messageId,
              write.status,
              write.reply,
              write.error,
              write.now
            ])
          )}) AS j
          WHERE entity_type = j.value ->> 0 AND entity_id = j.value ->> 1 AND message_id = j.value ->> 2
            AND status = 'pending'
          RETURNING entity_type, entity_id, message_id`
        for (const row of updated) written.add(keyOfRow(row))
      }
      // The rest have no row (inserted done) or a done one (left alone: the caller reads it).
      const missing = passing.filter((write) => !written.has(keyOf(write)))
      if (missing.length > 0) {
        const first = yield* allocate(missing.length)
        const inserted = yield* sql<MessageKeyRow>`INSERT INTO ${messages}
          (entity_type, entity_id, message_id, shard, seq, payload, status, reply, error, created_at, done_at)
          SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, ${first} + key, value ->> 4, value ->> 5,
            value ->> 6, value ->> 7, value ->> 8, value ->> 8
          FROM json_each(${JSON.stringify(
            missing.map((write) => [
              write.entityType,
              write.entityId,
              write.messageId,
              write.shard,
              write.payload,
              write.status,
              write.reply,
              write.error,
              write.now
            ])
          )}) WHERE true ORDER BY key
          ON CONFLICT (entity_type, entity_id, message_id) DO NOTHING
          RETURNING entity_type, entity_id, message_id`
        for (const row of inserted) written.add(keyOfRow(row))
      }
      const stated = lastStates(passing.filter((write) => written.has(keyOf(write))))
      if (stated.length > 0) {
        yield* sql`INSERT INTO ${states} (entity_type, entity_id, shard, state, updated_at)
          SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4
          FROM json_each(${JSON.stringify(
            stated.map((write) => [write.entityType, write.entityId, write.shard, write.state, write.now])
          )}) WHERE true
          ON CONFLICT (entity_type, entity_id) DO UPDATE
          SET shard = excluded.shard, state = excluded.state, updated_at = excluded.updated_at`
      }
      return { epochs, written }
    })

  /**
   * PostgreSQL, ONE statement: a `fence` CTE share-locks the fenced shards in shard order (an
   * epoch bump waits for the statement) and reads their epochs; the writes that pass are upserted
   * (a pending row becomes done, a missing one is inserted done, a done one is left alone), in key
   * order so that two such statements lock rows in the same order; then the state of each entity
   * from its last write whose message was written.
   */
  const pgWriteDone = (batch: ReadonlyArray<OwnerWrite>, fenced: ReadonlyArray<number>) => {
    const rows = JSON.stringify(
      batch.map((write, n) => ({
        n,
        entity_type: write.entityType,
        entity_id: write.entityId,
        message_id: write.messageId,
        shard: write.shard,
        payload: write.payload,
        status: write.status,
        reply: write.reply,
        error: write.error,
        state: write.state ?? null,
        now: write.now,
        fs: write.fence?.shard ?? null,
        fe: write.fence?.epoch ?? null
      }))
    )
    const isFenced = fenced.length > 0
    const fence = isFenced ? sql`fence AS (${lockedEpochs(sql, prefix, fenced)}),` : sql``
    const passes = isFenced
      ? sql` WHERE r.fs IS NULL OR EXISTS (SELECT 1 FROM fence f WHERE f.shard_id = r.fs AND f.epoch = r.fe)`
      : sql``
    const epochs = isFenced
      ? sql`SELECT 'f' AS kind, NULL AS entity_type, NULL AS entity_id, NULL AS message_id, shard_id, epoch
          FROM fence UNION ALL `
      : sql``
    return Effect.map(
      sql<
        MessageKeyRow & { readonly kind: string; readonly shard_id: unknown; readonly epoch: unknown }
      >`WITH ${fence}
        ok AS (SELECT r.* FROM json_to_recordset(${rows}::json) AS r(n int, entity_type text, entity_id text,
          message_id text, shard int, payload text, status text, reply text, error text, state text, now bigint,
          fs int, fe bigint)${passes}),
        written AS (INSERT INTO ${messages} AS m
          (entity_type, entity_id, message_id, shard, payload, status, reply, error, created_at, done_at)
          SELECT entity_type, entity_id, message_id, shard, payload, status, reply, error, now, now FROM ok
          ORDER BY entity_type, entity_id, message_id
          ON CONFLICT (entity_type, entity_id, message_id) DO UPDATE
          SET status = excluded.status, reply = excluded.reply, error = excluded.error, done_at = excluded.done_at
          WHERE m.status = 'pending'
          RETURNING entity_type, entity_id, message_id),
        stated AS (INSERT INTO ${states} (entity_type, entity_id, shard, state, updated_at)
          SELECT DISTINCT ON (ok.entity_type, ok.entity_id) ok.entity_type, ok.entity_id, ok.shard, ok.state, ok.now
          FROM ok JOIN written USING (entity_type, entity_id, message_id)
          WHERE ok.state IS NOT NULL
          ORDER BY ok.entity_type, ok.entity_id, ok.n DESC
          ON CONFLICT (entity_type, entity_id) DO UPDATE
          SET shard = excluded.shard, state = excluded.state, updated_at = excluded.updated_at)
        ${epochs}SELECT 'w' AS kind, entity_type, entity_id, message_id, NULL::int AS shard_id,
          NULL::bigint AS epoch FROM written`,
      (result) => {
        const epochsRead = new Map<number, number>()
        const written = new Set<string>()
        for (const row of result) {
          if (row.kind === "f") epochsRead.set(Number(row.shard_id), Number(row.epoch))
          else written.add(keyOfRow(row))
        }
        return { epochs: epochsRead, written }
      }
    )
  }

  /** Makes a dead letter pending again with a new seq, drawn like a stored message's. */
  const replay = (key: MessageKey) => {
    const isDead = sql`entity_type = ${key.entityType} AND entity_id = ${key.entityId}
      AND message_id = ${key.messageId} AND status = 'dead'`
    const replayed =
      dialect === "pg"
        ? sql`WITH lock AS (SELECT pg_advisory_xact_lock(${sequenceLock}))
            UPDATE ${messages} SET status = 'pending', seq = DEFAULT, error = NULL, done_at = NULL
            FROM lock WHERE ${isDead} RETURNING 1 AS replayed`
        : inTransaction(
            sql,
            Effect.flatMap(
              allocate(1),
              (
                seq
              ) => sql`UPDATE ${messages} SET status = 'pending', seq = ${seq}, error = NULL, done_at = NULL
                WHERE ${isDead} RETURNING 1 AS replayed`
            )
          )
    return Effect.map(replayed, (rows) => rows.length > 0)
  }

  return {
    /** Stores the messages that have no row, pending, numbered in batch order; the keys stored. */
    insertPending: dialect === "pg" ? pgInsertPending : sqliteInsertPending,
    /**
     * Applies owner writes of distinct messages that pass their fence (`fenced`: the shards their
     * fences name, ascending); the epochs read and the keys written.
     */
    writeDone: dialect === "pg" ? pgWriteDone : sqliteWriteDone,
    replay
  }
}
