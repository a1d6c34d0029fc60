/**
 * The storage port of entities: their messages (pending, processed with a reply, or dead-lettered),
 * their persisted state, and the de-duplication of messages by id.
 *
 * A message is identified by its entity type, entity id and message id (`MessageKey`); the store
 * keeps at most one row per key, which is what makes processing exactly-once: a message stored
 * twice (a sender retrying) is one message, and a processed one is never handed out again.
 *
 * Writes of an entity's owner (`complete`, `deadLetter`) carry the shard's epoch (`fence`) and the
 * store refuses them, in the same transaction, when the epoch is no longer current: a paused pod
 * cannot record a reply or a state over the new owner's (invariant I3). The state and the processed
 * mark of a message are written in one transaction, so a crash never leaves one without the other.
 *
 * Payloads, replies and states are JSON text encoded by the entity type's schemas; the store never
 * looks inside them. `SqliteJournal.layer`, `PostgresJournal.layer` and the memory stores provide it.
 */
import { Context, type Effect, Schema } from "effect"

/**
 * An entity store operation failed. `transient` faults (connection lost, database busy) may succeed
 * when retried; others (a row that does not decode) need someone to look at the store.
 */
export class EntityStoreError extends Schema.TaggedError<EntityStoreError>()("EntityStoreError", {
  operation: Schema.String,
  transient: Schema.Boolean,
  message: Schema.String
}) {
  constructor(props: {
    readonly operation: string
    readonly transient: boolean
    readonly detail?: string | undefined
    readonly message?: string | undefined
  }) {
    super({
      operation: props.operation,
      transient: props.transient,
      message:
        props.message ??
        `the entity store operation "${props.operation}" failed${props.detail === undefined ? "" : `: ${props.detail}`}. ${
          props.transient
            ? "This fault is transient: retrying after a backoff may succeed."
            : "Retrying will not help: check the store's configuration and the row named above."
        }`
    })
  }

  get retryable(): boolean {
    return this.transient
  }
}

/** A shard and the epoch its owner holds it at: the fencing token of a write. */
export interface EntityFence {
  readonly shard: number
  readonly epoch: number
}

/** An entity: its type's name and its id. */
export interface EntityKey {
  readonly entityType: string
  readonly entityId: string
}

/** One message of one entity. */
export interface MessageKey extends EntityKey {
  readonly messageId: string
}

/** A message to store (`enqueue`). */
export interface NewMessage extends MessageKey {
  /** The entity's shard (`ShardId.shardOf(entityId)`). */
  readonly shard: number
  /** The message encoded by the entity type's schema, as JSON. */
  readonly payload: string
  readonly now: number
}

/** Where a message stands. */
export type MessageOutcome =
  | { readonly status: "pending" }
  /** Processed; `reply` is the encoded reply (JSON), null for a message without one. */
  | { readonly status: "processed"; readonly reply: string | null }
  /** Moved aside after its handler kept failing; `error` says why. */
  | { readonly status: "dead"; readonly error: string }

/** What `enqueue` did with a message. */
export type Enqueued =
  /** Stored now, pending. */
  | { readonly _tag: "Stored" }
  /** A message with this key was stored before: nothing written; its outcome so far. */
  | { readonly _tag: "Known"; readonly outcome: MessageOutcome }

/** A pending message as stored. */
export interface StoredMessage extends MessageKey {
  readonly shard: number
  /** Arrival order: grows with every stored message. */
  readonly seq: number
  readonly payload: string
  readonly createdAt: number
}

/** The owner processed a message: its reply and the entity's state after it. */
export interface Completion extends MessageKey {
  /** The shard's epoch; undefined in a store without ownership (one process runs every shard). */
  readonly fence: EntityFence | undefined
  readonly shard: number
  /**
   * The message, stored with its outcome if it has no row yet (a request the owner got directly
   * from a sender in its own process, stored only once processed).
   */
  readonly payload: string
  /** The encoded reply; null when the message has none. */
  readonly reply: string | null
  /** The entity's encoded state after the message; undefined leaves the stored state as it is. */
  readonly state: string | undefined
  readonly now: number
}

/** The owner moves a message aside: its handler kept failing. */
export interface DeadLetterWrite extends MessageKey {
  readonly fence: EntityFence | undefined
  readonly shard: number
  readonly payload: string
  /** What went wrong, for people. */
  readonly error: string
  readonly now: number
}

/** The result of one `complete` or `deadLetter` item. */
export type OwnerWriteResult =
  /** Written. */
  | { readonly _tag: "Written" }
  /** The message was processed or dead-lettered before: nothing written. */
  | { readonly _tag: "AlreadyDone"; readonly outcome: MessageOutcome }
  /** The fence's epoch is no longer the shard's: nothing written. */
  | { readonly _tag: "Stale"; readonly currentEpoch: number | null }

/** A dead letter as listed. */
export interface DeadLetter extends MessageKey {
  readonly shard: number
  /** Its place in the order of `deadLetters` (the `afterSeq` of the next page). */
  readonly seq: number
  readonly payload: string
  readonly error: string
  readonly createdAt: number
  readonly deadAt: number
}

/**
 * What the owner reads before it handles a message (`outcomesAhead`): where the message stands,
 * and the messages of its entity that were stored before it and are not processed yet.
 */
export interface OutcomeAhead {
  /** The message's outcome; undefined for a key not stored. */
  readonly outcome: MessageOutcome | undefined
  /**
   * The entity's pending messages to handle before this one, by `seq`: those with a lower `seq`
   * when the message is pending, every pending one when it is not stored, none when it is done.
   */
  readonly ahead: ReadonlyArray<StoredMessage>
}

/** A query of `pending`. */
export interface PendingQuery {
  /** Only messages of these shards. */
  readonly shards: ReadonlyArray<number>
  /** Only messages with a greater `seq`. */
  readonly afterSeq: number
  readonly limit: number
}

/** The entity store. Every operation is one transaction. */
export class EntityStore extends Context.Service<
  EntityStore,
  {
    /**
     * Stores each message whose key is not stored yet, pending; durable when it returns (I5). For a
     * key stored before, writes nothing and returns its outcome (a sender retrying gets the first
     * reply). One result per message, in order.
     */
    readonly enqueue: (
      messages: ReadonlyArray<NewMessage>
    ) => Effect.Effect<ReadonlyArray<Enqueued>, EntityStoreError>
    /** The pending messages of some shards, by `seq`. */
    readonly pending: (query: PendingQuery) => Effect.Effect<ReadonlyArray<StoredMessage>, EntityStoreError>
    /** Each message's outcome, or undefined for a key not stored. One result per key, in order. */
    readonly outcomes: (
      keys: ReadonlyArray<MessageKey>
    ) => Effect.Effect<ReadonlyArray<MessageOutcome | undefined>, EntityStoreError>
    /**
     * Each message's outcome with the pending messages of its entity stored before it (at most
     * `limit` per key, the oldest): what the owner handles first, so that an entity processes its
     * messages in store order. One result per key, in order.
     *
     * `seq` follows the commit order of pending messages, so a message stored before this one was
     * stored (or, for a key not stored, before this read) is in `ahead` unless it was handled.
     */
    readonly outcomesAhead: (
      keys: ReadonlyArray<MessageKey>,
      limit: number
    ) => Effect.Effect<ReadonlyArray<OutcomeAhead>, EntityStoreError>
    /** The pending messages of one entity, by `seq` (operators' tools: what it has not processed). */
    readonly pendingOf: (
      entity: EntityKey,
      limit: number
    ) => Effect.Effect<ReadonlyArray<StoredMessage>, EntityStoreError>
    /** The entity's stored state (JSON), undefined when none was stored. */
    readonly state: (entity: EntityKey) => Effect.Effect<string | undefined, EntityStoreError>
    /**
     * Marks each message processed with its reply and writes the entity's state, in one
     * transaction per item at most (items may share one). A message with no row is inserted
     * processed. Fenced: a stale epoch writes nothing for that item.
     */
    readonly complete: (
      items: ReadonlyArray<Completion>
    ) => Effect.Effect<ReadonlyArray<OwnerWriteResult>, EntityStoreError>
    /** Marks each message dead (inserting it if it has no row), with its error. Fenced. */
    readonly deadLetter: (
      items: ReadonlyArray<DeadLetterWrite>
    ) => Effect.Effect<ReadonlyArray<OwnerWriteResult>, EntityStoreError>
    /** Dead letters, oldest first; of one entity type if given. */
    readonly deadLetters: (query: {
      readonly entityType?: string | undefined
      /** Only dead letters after this `seq` (the last one of the previous page). */
      readonly afterSeq?: number | undefined
      readonly limit: number
    }) => Effect.Effect<ReadonlyArray<DeadLetter>, EntityStoreError>
    /**
     * Makes a dead letter pending again (a new `seq`, after every message stored so far), so its
     * entity's owner processes it anew. Returns false when the key is not a dead letter.
     */
    readonly replay: (key: MessageKey, now: number) => Effect.Effect<boolean, EntityStoreError>
    /**
     * Deletes processed messages (their replies and de-duplication records) processed before
     * `before`; pending and dead ones stay. Returns how many it deleted.
     */
    readonly purge: (before: number) => Effect.Effect<number, EntityStoreError>
  }
>()("effect-cluster/sharding/EntityStore") {}
