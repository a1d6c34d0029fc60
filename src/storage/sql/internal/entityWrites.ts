/**
 * How the SQL entity store commits a group-commit batch of messages to store (`enqueue`) or of
 * owner writes (`complete`, `deadLetter`), with the statements of `entityStatements.ts`.
 *
 * SQLite runs a batch in one transaction; writers are serialized by the file's lock, so what a
 * statement reads stays true until the commit. PostgreSQL runs each step as one statement, its own
 * transaction: it cannot read its own writes, and a row another transaction committed after the
 * statement began is invisible to it, so a message it did not write (a duplicate, or a row already
 * done) is decided by a query after the commit; the rare message whose row changed in between
 * (replayed, purged) goes again in another round.
 *
 * Rounds also order several writes of one message in a batch: one per round, in batch order. The
 * items of a batch are concurrent, or in their caller's order, so this is an order they could have
 * had; an entity's state ends as its last written message in the batch left it.
 */
import { Effect } from "effect"
import { SerializationError, SqlError } from "effect/sql/SqlError"
import type { Completion, DeadLetterWrite, MessageKey, NewMessage } from "../../../sharding/EntityStore.ts"
import { keyOf, pendingRow, type RawOutcome, selectOutcomes } from "./entityRows.ts"
import * as Statements from "./entityStatements.ts"
import { inTransaction } from "./transaction.ts"

export type OwnerWrite = Statements.OwnerWrite

export const fromCompletion = (item: Completion): OwnerWrite => ({
  entityType: item.entityType,
  entityId: item.entityId,
  messageId: item.messageId,
  fence: item.fence,
  shard: item.shard,
  payload: item.payload,
  status: "processed",
  reply: item.reply,
  error: null,
  state: item.state,
  now: item.now
})

export const fromDeadLetter = (item: DeadLetterWrite): OwnerWrite => ({
  entityType: item.entityType,
  entityId: item.entityId,
  messageId: item.messageId,
  fence: item.fence,
  shard: item.shard,
  payload: item.payload,
  status: "dead",
  reply: null,
  error: item.error,
  state: undefined,
  now: item.now
})

/** What a batch did with a message to store; a row's outcome is decoded by the caller. */
export type StoreResult = { readonly _tag: "Stored" } | { readonly _tag: "Known"; readonly row: RawOutcome }

/** What a batch did with an owner write. */
export type OwnerResult =
  | { readonly _tag: "Written" }
  | { readonly _tag: "AlreadyDone"; readonly row: RawOutcome }
  | { readonly _tag: "Stale"; readonly currentEpoch: number | null }

const STORED: StoreResult = { _tag: "Stored" }
const WRITTEN: OwnerResult = { _tag: "Written" }

/** The shards the writes' fences name, ascending (the order their rows are locked in). */
const fencedShards = (writes: ReadonlyArray<OwnerWrite>): Array<number> =>
  [...new Set(writes.flatMap((write) => (write.fence === undefined ? [] : [write.fence.shard])))].sort(
    (a, b) => a - b
  )

const entityOf = (write: OwnerWrite) => `${write.entityType}\u0000${write.entityId}`

/** Rounds before a batch gives up on messages whose rows keep changing under it. */
const MAX_ROUNDS = 16

const gaveUp = (operation: string) =>
  new SqlError({
    reason: new SerializationError({
      cause: undefined,
      message: `${operation}: the rows of some messages kept changing during ${MAX_ROUNDS} rounds`,
      operation
    })
  })

/** The two batch writers: `store` (enqueue) and `own` (complete, deadLetter); and `replay`. */
export const make = (options: Statements.EntityStatementsOptions) => {
  const { sql, prefix, dialect } = options
  const statements = Statements.make(options)
  const outcomes = (keys: ReadonlyArray<MessageKey>) => selectOutcomes(sql, dialect, prefix, keys)
  /** SQLite: the whole batch in one transaction. */
  const transaction = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
    dialect === "pg" ? effect : inTransaction(sql, effect)

  const store = (batch: ReadonlyArray<NewMessage>) =>
    transaction(
      Effect.gen(function* () {
        // Filled by index: every message gets its result in some round.
        const results: Array<StoreResult> = []
        /** Keys this batch stored: a later message with the key is a duplicate of a pending one. */
        const storedHere = new Set<string>()
        let left = batch.map((_, index) => index)
        for (let round = 0; left.length > 0; round++) {
          if (round === MAX_ROUNDS) return yield* Effect.fail(gaveUp("enqueue"))
          const inserted = yield* statements.insertPending(left.map((index) => batch[index]!))
          const undecided: Array<number> = []
          for (const index of left) {
            const key = keyOf(batch[index]!)
            if (inserted.delete(key)) {
              storedHere.add(key)
              results[index] = STORED
            } else if (storedHere.has(key)) results[index] = { _tag: "Known", row: pendingRow }
            else undecided.push(index)
          }
          const rows = yield* outcomes(undecided.map((index) => batch[index]!))
          left = []
          undecided.forEach((index, i) => {
            const row = rows[i]
            // No row any more (purged since): store it again in the next round.
            if (row === undefined) left.push(index)
            else results[index] = { _tag: "Known", row }
          })
        }
        return results
      })
    )

  const own = (batch: ReadonlyArray<OwnerWrite>) =>
    transaction(
      Effect.gen(function* () {
        const results: Array<OwnerResult> = []
        /** The position of the write that last set each entity's state, in an earlier round. */
        const stateSetBy = new Map<string, number>()
        let left = batch.map((_, index) => index)
        for (let round = 0; left.length > 0; round++) {
          if (round === MAX_ROUNDS) return yield* Effect.fail(gaveUp("complete"))
          left.sort((a, b) => a - b)
          // One write per message in a round, in batch order; the others go in the next one.
          const keys = new Set<string>()
          const now: Array<number> = []
          const later: Array<number> = []
          for (const index of left) {
            const key = keyOf(batch[index]!)
            if (keys.has(key)) later.push(index)
            else {
              keys.add(key)
              now.push(index)
            }
          }
          // A state set by a later write of the batch (in an earlier round) stays.
          const writes = now.map((index) => {
            const write = batch[index]!
            return write.state !== undefined && (stateSetBy.get(entityOf(write)) ?? -1) > index
              ? { ...write, state: undefined }
              : write
          })
          const { epochs, written } = yield* statements.writeDone(writes, fencedShards(writes))
          const undecided: Array<number> = []
          now.forEach((index, i) => {
            const write = writes[i]!
            const current = write.fence === undefined ? undefined : epochs.get(write.fence.shard)
            if (write.fence !== undefined && current !== write.fence.epoch) {
              results[index] = { _tag: "Stale", currentEpoch: current ?? null }
            } else if (written.has(keyOf(write))) {
              results[index] = WRITTEN
              const setBy = stateSetBy.get(entityOf(write)) ?? -1
              if (write.state !== undefined && index > setBy) stateSetBy.set(entityOf(write), index)
            } else undecided.push(index)
          })
          const rows = yield* outcomes(undecided.map((index) => batch[index]!))
          left = later
          undecided.forEach((index, i) => {
            const row = rows[i]
            // Done already, as the statement found it; pending again or gone (replayed, purged
            // since): write it in the next round.
            if (row !== undefined && row.status !== "pending") results[index] = { _tag: "AlreadyDone", row }
            else left.push(index)
          })
        }
        return results
      })
    )

  return {
    /** Stores each message not stored yet, pending; one result per message, in order. */
    store,
    /** Applies each owner write that passes its fence; one result per write, in order. */
    own,
    /** Makes a dead letter pending again (a new seq); whether it was one. */
    replay: statements.replay
  }
}
