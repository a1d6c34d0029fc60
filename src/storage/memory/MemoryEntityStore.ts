/**
 * In-memory `EntityStore`, for tests and for one process whose entities need no durability beyond
 * its lifetime. With the ownership state of a memory cluster (`MemoryJournal.makeCluster`) it fences
 * the owner's writes against the shards' epochs; without it, a write that carries a fence is
 * refused (there are no shards) and an unfenced one is accepted.
 */
import { Effect } from "effect"
import {
  type DeadLetter,
  type Enqueued,
  EntityStore,
  type MessageKey,
  type MessageOutcome,
  type OutcomeAhead,
  type OwnerWriteResult,
  type StoredMessage
} from "../../sharding/EntityStore.ts"
import type { Ownership } from "./internal/ownership.ts"

interface Row extends MessageKey {
  readonly shard: number
  seq: number
  readonly payload: string
  readonly createdAt: number
  outcome: MessageOutcome
  doneAt: number
}

const keyOf = (key: MessageKey) => `${key.entityType}\u0000${key.entityId}\u0000${key.messageId}`
const entityKeyOf = (entityType: string, entityId: string) => `${entityType}\u0000${entityId}`

const storedMessage = ({
  entityType,
  entityId,
  messageId,
  shard,
  seq,
  payload,
  createdAt
}: Row): StoredMessage => ({
  entityType,
  entityId,
  messageId,
  shard,
  seq,
  payload,
  createdAt
})

/** A fresh, empty entity store; fenced against `ownership` when given. */
export const make = (ownership?: Ownership): EntityStore["Service"] => {
  const rows = new Map<string, Row>()
  const states = new Map<string, string>()
  /**
   * The pending rows of each entity, by message key, in seq order (a row is added when it gets a
   * new seq, the greatest so far, and removed when it is done): what `outcomesAhead` reads.
   */
  const pendingByEntity = new Map<string, Map<string, Row>>()
  let nextSeq = 1

  const setPending = (key: string, row: Row) => {
    const entity = entityKeyOf(row.entityType, row.entityId)
    let rowsOf = pendingByEntity.get(entity)
    if (rowsOf === undefined) {
      rowsOf = new Map()
      pendingByEntity.set(entity, rowsOf)
    }
    rowsOf.set(key, row)
  }
  const dropPending = (key: string, row: Row) => {
    const entity = entityKeyOf(row.entityType, row.entityId)
    const rowsOf = pendingByEntity.get(entity)
    if (rowsOf === undefined) return
    rowsOf.delete(key)
    if (rowsOf.size === 0) pendingByEntity.delete(entity)
  }

  const outcomeAhead = (key: MessageKey, limit: number): OutcomeAhead => {
    const row = rows.get(keyOf(key))
    const outcome = row?.outcome
    if (outcome !== undefined && outcome.status !== "pending") return { outcome, ahead: [] }
    const rowsOf = pendingByEntity.get(entityKeyOf(key.entityType, key.entityId))
    if (rowsOf === undefined) return { outcome, ahead: [] }
    // In seq order: a row joins its entity's map when it gets a seq, always the greatest so far.
    const ahead: Array<StoredMessage> = []
    for (const other of rowsOf.values()) {
      if (ahead.length >= limit || (row !== undefined && other.seq >= row.seq)) break
      ahead.push(storedMessage(other))
    }
    return { outcome, ahead }
  }

  const stale = (fence: { readonly shard: number; readonly epoch: number } | undefined) => {
    if (fence === undefined) return undefined
    const current = ownership?.shards.get(fence.shard)?.epoch ?? null
    return current === fence.epoch ? undefined : ({ _tag: "Stale", currentEpoch: current } as const)
  }

  const ownerWrite = <
    I extends MessageKey & {
      readonly fence: any
      readonly shard: number
      readonly payload: string
      readonly now: number
    }
  >(
    item: I,
    outcome: MessageOutcome,
    after: () => void
  ): OwnerWriteResult => {
    const refused = stale(item.fence)
    if (refused !== undefined) return refused
    const key = keyOf(item)
    const row = rows.get(key)
    if (row !== undefined && row.outcome.status !== "pending")
      return { _tag: "AlreadyDone", outcome: row.outcome }
    if (row === undefined) {
      rows.set(key, {
        entityType: item.entityType,
        entityId: item.entityId,
        messageId: item.messageId,
        shard: item.shard,
        seq: nextSeq++,
        payload: item.payload,
        createdAt: item.now,
        outcome,
        doneAt: item.now
      })
    } else {
      row.outcome = outcome
      row.doneAt = item.now
      dropPending(key, row)
    }
    after()
    return { _tag: "Written" }
  }

  return EntityStore.of({
    enqueue: (messages) =>
      Effect.sync(() =>
        messages.map((message): Enqueued => {
          const key = keyOf(message)
          const row = rows.get(key)
          if (row !== undefined) return { _tag: "Known", outcome: row.outcome }
          const stored: Row = {
            entityType: message.entityType,
            entityId: message.entityId,
            messageId: message.messageId,
            shard: message.shard,
            seq: nextSeq++,
            payload: message.payload,
            createdAt: message.now,
            outcome: { status: "pending" },
            doneAt: 0
          }
          rows.set(key, stored)
          setPending(key, stored)
          return { _tag: "Stored" }
        })
      ),
    pending: ({ shards, afterSeq, limit }) =>
      Effect.sync(() => {
        const wanted = new Set(shards)
        return [...rows.values()]
          .filter((row) => row.outcome.status === "pending" && row.seq > afterSeq && wanted.has(row.shard))
          .sort((a, b) => a.seq - b.seq)
          .slice(0, limit)
          .map(storedMessage)
      }),
    pendingOf: ({ entityType, entityId }, limit) =>
      Effect.sync(() =>
        [...rows.values()]
          .filter(
            (row) =>
              row.outcome.status === "pending" && row.entityType === entityType && row.entityId === entityId
          )
          .sort((a, b) => a.seq - b.seq)
          .slice(0, limit)
          .map(storedMessage)
      ),
    outcomes: (keys) => Effect.sync(() => keys.map((key) => rows.get(keyOf(key))?.outcome)),
    outcomesAhead: (keys, limit) => Effect.sync(() => keys.map((key) => outcomeAhead(key, limit))),
    state: ({ entityType, entityId }) => Effect.sync(() => states.get(entityKeyOf(entityType, entityId))),
    complete: (items) =>
      Effect.sync(() =>
        items.map((item) =>
          ownerWrite(item, { status: "processed", reply: item.reply }, () => {
            if (item.state !== undefined) states.set(entityKeyOf(item.entityType, item.entityId), item.state)
          })
        )
      ),
    deadLetter: (items) =>
      Effect.sync(() =>
        items.map((item) => ownerWrite(item, { status: "dead", error: item.error }, () => {}))
      ),
    deadLetters: ({ entityType, afterSeq, limit }) =>
      Effect.sync(() =>
        [...rows.values()]
          .filter(
            (row) =>
              row.outcome.status === "dead" &&
              (entityType === undefined || row.entityType === entityType) &&
              (afterSeq === undefined || row.seq > afterSeq)
          )
          .sort((a, b) => a.seq - b.seq)
          .slice(0, limit)
          .map(
            (row): DeadLetter => ({
              entityType: row.entityType,
              entityId: row.entityId,
              messageId: row.messageId,
              shard: row.shard,
              seq: row.seq,
              payload: row.payload,
              error: row.outcome.status === "dead" ? row.outcome.error : "",
              createdAt: row.createdAt,
              deadAt: row.doneAt
            })
          )
      ),
    replay: (key) =>
      Effect.sync(() => {
        const replayed = keyOf(key)
        const row = rows.get(replayed)
        if (row?.outcome.status !== "dead") return false
        row.outcome = { status: "pending" }
        row.seq = nextSeq++
        setPending(replayed, row)
        return true
      }),
    purge: (before) =>
      Effect.sync(() => {
        let deleted = 0
        for (const [key, row] of rows) {
          if (row.outcome.status === "processed" && row.doneAt < before) {
            rows.delete(key)
            deleted++
          }
        }
        return deleted
      })
  })
}
