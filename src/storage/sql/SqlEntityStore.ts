/**
 * `EntityStore` on effect's `SqlClient`: entities' messages and states in the journal's own
 * database (SQLite or PostgreSQL, tables of migration 8), so that an owner's write is fenced by the
 * shard epochs of the `ShardStore` in the same transaction.
 *
 * Writes (`enqueue`, and the owner's `complete` and `deadLetter`) go through group commit:
 * concurrent callers share one transaction, turned into one statement per batch on PostgreSQL and
 * into prepared statements in one transaction on SQLite (`internal/entityWrites.ts`). Messages and
 * owner writes have a group commit each, so on PostgreSQL a batch of each can be in flight at once.
 * Reads are plain queries, decoded with schemas: a row edited by hand into nonsense gives a
 * non-transient `EntityStoreError` naming it, except in `pending`, which leaves it out (logged) so
 * that the other messages of its shards are still delivered.
 */
import { Effect, Schema, type Scope } from "effect"
import { SqlClient } from "effect/sql/SqlClient"
import type { SqlError } from "effect/sql/SqlError"
import {
  type Enqueued,
  EntityStore,
  type EntityStoreError,
  type MessageKey,
  type OutcomeAhead,
  type OwnerWriteResult,
  type StoredMessage
} from "../../sharding/EntityStore.ts"
import * as GroupCommit from "./GroupCommit.ts"
import { SqlNumber } from "./internal/columns.ts"
import {
  DeadRow,
  OutcomeRow,
  PendingRow,
  type RawAhead,
  selectOutcomes,
  selectOutcomesAhead,
  toDeadLetter,
  toOutcome,
  toStoredMessage
} from "./internal/entityRows.ts"
import * as Writes from "./internal/entityWrites.ts"
import { entityStoreError } from "./internal/errors.ts"
import { inIntegers } from "./internal/lists.ts"
import { inTransaction } from "./internal/transaction.ts"

/** What the store needs besides the `SqlClient`. The journal's migrations must have run. */
export interface SqlEntityStoreOptions {
  /** The journal's table prefix. Default `effect_cluster_`. */
  readonly tablePrefix?: string | undefined
  readonly dialect: "sqlite" | "pg"
  /** Batch concurrent writes into shared transactions (default true). */
  readonly groupCommit?: boolean | undefined
}

/** The counters of the store's two group commits, for benchmarks and tests. */
export interface EntityStoreStats {
  readonly enqueue: GroupCommit.GroupCommitStats
  readonly owner: GroupCommit.GroupCommitStats
}

/** Runs `write` on every item's elements at once; gives each item its own results back. */
const flattened =
  <I, A>(write: (all: ReadonlyArray<I>) => Effect.Effect<ReadonlyArray<A>, SqlError>) =>
  (items: ReadonlyArray<ReadonlyArray<I>>): Effect.Effect<ReadonlyArray<ReadonlyArray<A>>, SqlError> =>
    Effect.map(write(items.flat()), (results) => {
      let offset = 0
      return items.map((item) => {
        offset += item.length
        return results.slice(offset - item.length, offset)
      })
    })

const OutcomeRows = Schema.Array(Schema.UndefinedOr(OutcomeRow))

/** The messages ahead of a key: `[message_id, shard, seq, payload, created_at]` each. */
const AheadList = Schema.Array(Schema.Tuple([Schema.String, SqlNumber, SqlNumber, Schema.String, SqlNumber]))

/** The rows of `selectOutcomesAhead`, decoded (the list of messages ahead is JSON text on SQLite). */
const AheadRows = Schema.Array(
  Schema.Struct({
    i: SqlNumber,
    status: Schema.NullOr(OutcomeRow.fields.status),
    reply: Schema.NullOr(Schema.String),
    error: Schema.NullOr(Schema.String),
    ahead: Schema.NullOr(Schema.Union([AheadList, Schema.fromJsonString(AheadList)]))
  })
)

const NOTHING_AHEAD: OutcomeAhead = { outcome: undefined, ahead: [] }

/** Each key's outcome and the messages ahead of it, from the decoded rows of its query. */
const toOutcomesAhead = (
  keys: ReadonlyArray<MessageKey>,
  rows: typeof AheadRows.Type
): ReadonlyArray<OutcomeAhead> => {
  const results = new Array<OutcomeAhead>(keys.length).fill(NOTHING_AHEAD)
  for (const row of rows) {
    const key = keys[row.i]
    if (key === undefined) continue
    results[row.i] = {
      outcome:
        row.status === null
          ? undefined
          : toOutcome({ status: row.status, reply: row.reply, error: row.error }),
      ahead: (row.ahead ?? []).map(
        ([messageId, shard, seq, payload, createdAt]): StoredMessage => ({
          entityType: key.entityType,
          entityId: key.entityId,
          messageId,
          shard,
          seq,
          payload,
          createdAt
        })
      )
    }
  }
  return results
}
const utf8 = new TextDecoder()

/** `row` with a payload stored as bytes read as UTF-8 text. */
const payloadAsText = (row: unknown): unknown =>
  typeof row === "object" && row !== null && "payload" in row && row.payload instanceof Uint8Array
    ? { ...row, payload: utf8.decode(row.payload) }
    : row

const isStored = (result: Writes.StoreResult): result is { readonly _tag: "Stored" } =>
  result._tag === "Stored"

const hasNoRow = (
  result: Writes.OwnerResult
): result is Exclude<Writes.OwnerResult, { readonly _tag: "AlreadyDone" }> => result._tag !== "AlreadyDone"

/** Builds the store on the `SqlClient` in context. */
export const make = (
  options: SqlEntityStoreOptions
): Effect.Effect<
  EntityStore["Service"] & { readonly stats: EntityStoreStats },
  never,
  SqlClient | Scope.Scope
> =>
  Effect.gen(function* () {
    const sql = yield* SqlClient
    const prefix = options.tablePrefix ?? "effect_cluster_"
    const { dialect } = options
    const pg = dialect === "pg"
    const messages = sql(`${prefix}entity_messages`)
    const states = sql(`${prefix}entity_state`)
    const what = `row of ${prefix}entity_messages`
    const decodeOutcome = Schema.decodeUnknownEffect(OutcomeRow)
    const decodeOutcomes = Schema.decodeUnknownEffect(OutcomeRows)
    const decodeAhead = Schema.decodeUnknownEffect(AheadRows)
    const decodePendingRows = Schema.decodeUnknownEffect(Schema.Array(PendingRow))
    const decodePendingRow = Schema.decodeUnknownEffect(PendingRow)
    /**
     * Pending rows, decoded. One that does not decode (a hand edit, SQLite's loose column types)
     * must not stop the delivery of every other message of the shards: it is left out with a log
     * line, and a payload stored as bytes is read as UTF-8 text (its owner refuses it if it is not
     * a message).
     */
    const decodePending = (rows: ReadonlyArray<unknown>) =>
      decodePendingRows(rows).pipe(
        Effect.catch(() =>
          Effect.map(
            Effect.forEach(rows, (row) =>
              decodePendingRow(payloadAsText(row)).pipe(
                Effect.map((decoded) => [decoded]),
                Effect.catch((error) =>
                  Effect.as(
                    Effect.logError(
                      `a pending message is left out: its row in ${prefix}entity_messages does not decode: ${error.message}`
                    ),
                    []
                  )
                )
              )
            ),
            (decoded) => decoded.flat()
          )
        )
      )
    const decodeDead = Schema.decodeUnknownEffect(Schema.Array(DeadRow))
    const decodeState = Schema.decodeUnknownEffect(Schema.Array(Schema.Struct({ state: Schema.String })))
    const decodeCount = Schema.decodeUnknownEffect(
      Schema.Array(Schema.Struct({ n: Schema.Union([Schema.Number, Schema.NumberFromString]) }))
    )

    const writes = Writes.make({ sql, prefix, dialect })
    const commitOptions = { durable: () => true, enabled: options.groupCommit, inlineWhenIdle: pg }
    const enqueueGroup = yield* GroupCommit.make({
      ...commitOptions,
      label: "entity-messages",
      flush: flattened(writes.store)
    })
    const ownerGroup = yield* GroupCommit.make({
      ...commitOptions,
      label: "entity-owner",
      flush: flattened(writes.own)
    })

    const ownerWrite =
      <I>(operation: string, toWrite: (item: I) => Writes.OwnerWrite) =>
      (items: ReadonlyArray<I>): Effect.Effect<ReadonlyArray<OwnerWriteResult>, EntityStoreError> =>
        items.length === 0
          ? Effect.succeed([])
          : ownerGroup.submit(items.map(toWrite)).pipe(
              Effect.flatMap(
                (results): Effect.Effect<ReadonlyArray<OwnerWriteResult>, Schema.SchemaError> =>
                  // The common case, nothing to decode, without an effect per result.
                  results.every(hasNoRow)
                    ? Effect.succeed(results)
                    : Effect.forEach(
                        results,
                        (result): Effect.Effect<OwnerWriteResult, Schema.SchemaError> =>
                          result._tag === "AlreadyDone"
                            ? Effect.map(decodeOutcome(result.row), (row) => ({
                                _tag: "AlreadyDone",
                                outcome: toOutcome(row)
                              }))
                            : Effect.succeed(result)
                      )
              ),
              Effect.mapError(entityStoreError(operation, what))
            )

    return {
      stats: { enqueue: enqueueGroup.stats, owner: ownerGroup.stats },
      ...EntityStore.of({
        enqueue: (batch) =>
          batch.length === 0
            ? Effect.succeed([])
            : enqueueGroup.submit(batch).pipe(
                Effect.flatMap(
                  (results): Effect.Effect<ReadonlyArray<Enqueued>, Schema.SchemaError> =>
                    results.every(isStored)
                      ? Effect.succeed(results)
                      : Effect.forEach(
                          results,
                          (result): Effect.Effect<Enqueued, Schema.SchemaError> =>
                            result._tag === "Known"
                              ? Effect.map(decodeOutcome(result.row), (row) => ({
                                  _tag: "Known",
                                  outcome: toOutcome(row)
                                }))
                              : Effect.succeed(result)
                        )
                ),
                Effect.mapError(entityStoreError("enqueue", what))
              ),
        complete: ownerWrite("complete", Writes.fromCompletion),
        deadLetter: ownerWrite("deadLetter", Writes.fromDeadLetter),
        outcomes: (keys) =>
          selectOutcomes(sql, dialect, prefix, keys).pipe(
            Effect.flatMap(decodeOutcomes),
            Effect.map((rows) => rows.map((row) => (row === undefined ? undefined : toOutcome(row)))),
            Effect.mapError(entityStoreError("outcomes", what))
          ),
        outcomesAhead: (keys, limit) =>
          (keys.length === 0
            ? Effect.succeed<ReadonlyArray<RawAhead>>([])
            : selectOutcomesAhead(sql, dialect, prefix, keys, limit)
          ).pipe(
            Effect.flatMap((rows: ReadonlyArray<RawAhead>) => decodeAhead(rows)),
            Effect.map((rows) => toOutcomesAhead(keys, rows)),
            Effect.mapError(entityStoreError("outcomesAhead", what))
          ),
        pending: ({ shards, afterSeq, limit }) =>
          shards.length === 0
            ? Effect.succeed([])
            : sql`SELECT entity_type, entity_id, message_id, shard, seq, payload, created_at FROM ${messages}
                WHERE status = 'pending' AND ${inIntegers(sql, dialect, "shard", shards)} AND seq > ${afterSeq}
                ORDER BY seq LIMIT ${limit}`.pipe(
                Effect.flatMap(decodePending),
                Effect.map((rows) => rows.map(toStoredMessage)),
                Effect.mapError(entityStoreError("pending", `pending ${what}`))
              ),
        pendingOf: ({ entityType, entityId }, limit) =>
          sql`SELECT entity_type, entity_id, message_id, shard, seq, payload, created_at FROM ${messages}
            WHERE entity_type = ${entityType} AND entity_id = ${entityId} AND status = 'pending'
            ORDER BY seq LIMIT ${limit}`.pipe(
            Effect.flatMap(decodePending),
            Effect.map((rows) => rows.map(toStoredMessage)),
            Effect.mapError(
              entityStoreError(
                "pendingOf",
                `pending messages of ${JSON.stringify(entityType)} ${JSON.stringify(entityId)} in ${prefix}entity_messages`
              )
            )
          ),
        state: ({ entityType, entityId }) =>
          sql`SELECT state FROM ${states} WHERE entity_type = ${entityType} AND entity_id = ${entityId}`.pipe(
            Effect.flatMap(decodeState),
            Effect.map((rows) => rows[0]?.state),
            Effect.mapError(
              entityStoreError(
                "state",
                `state of ${JSON.stringify(entityType)} ${JSON.stringify(entityId)} in ${prefix}entity_state`
              )
            )
          ),
        deadLetters: ({ entityType, afterSeq, limit }) =>
          sql`SELECT entity_type, entity_id, message_id, shard, seq, payload, error, created_at, done_at
            FROM ${messages} WHERE status = 'dead'${entityType === undefined ? sql`` : sql` AND entity_type = ${entityType}`}${
              afterSeq === undefined ? sql`` : sql` AND seq > ${afterSeq}`
            }
            ORDER BY seq LIMIT ${limit}`.pipe(
            Effect.flatMap(decodeDead),
            Effect.map((rows) => rows.map(toDeadLetter)),
            Effect.mapError(entityStoreError("deadLetters", `dead ${what}`))
          ),
        replay: (key) =>
          writes.replay(key).pipe(Effect.mapError(entityStoreError("replay", `${what} (replay)`))),
        purge: (before) =>
          (pg
            ? sql`WITH purged AS (DELETE FROM ${messages} WHERE status = 'processed' AND done_at < ${before}
                RETURNING 1) SELECT count(*)::int AS n FROM purged`
            : inTransaction(
                sql,
                Effect.andThen(
                  sql`DELETE FROM ${messages} WHERE status = 'processed' AND done_at < ${before}`,
                  sql`SELECT changes() AS n`
                )
              )
          ).pipe(
            Effect.flatMap(decodeCount),
            Effect.map((rows) => rows[0]?.n ?? 0),
            Effect.mapError(entityStoreError("purge"))
          )
      })
    }
  })
