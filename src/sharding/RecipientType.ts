/**
 * Entity types (the talk's `RecipientType`): a name, the schema of the messages an entity of the
 * type accepts, and how to get a message's id (the key of exactly-once processing).
 *
 * A type is **persisted** when it has a state schema (or `persisted: true`): its messages are stored
 * before `send`/`sendDiscard` accept them, processed exactly once by message id, and the entity's
 * state is stored with each processed message, so it survives crashes, failover and passivation.
 * A **volatile** type (no state schema) keeps its entities' state in memory only: a crash, a shard
 * moving to another pod or a passivation forgets it, and a message in flight at a crash is lost.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { Message, RecipientType } from "effect-cluster"
 *
 * class Increment extends Schema.TaggedClass<Increment>()("Increment", { messageId: Schema.String }) {}
 * class GetCurrent extends Message.TaggedRequest<GetCurrent>()("GetCurrent", {
 *   failure: Schema.Never,
 *   success: Schema.Number,
 *   payload: { messageId: Schema.String }
 * }) {}
 * const CounterMsg = Schema.Union([Increment, GetCurrent])
 *
 * // Volatile, as in the talk; add `{ state: Schema.Number }` to persist the count.
 * const CounterEntity = RecipientType.makeEntityType("Counter", CounterMsg, (_) => _.messageId)
 * ```
 */
import type { Schema } from "effect"
import type { AnyCodec } from "../internal/codec.ts"

/** An entity type. */
export interface EntityType<Msg, State = never> {
  readonly _tag: "EntityType"
  readonly name: string
  readonly schema: Schema.Codec<Msg, any, never, never>
  readonly messageId: (message: Msg) => string
  /** The state schema of a persisted type. */
  readonly state: Schema.Codec<State, any, never, never> | undefined
  /** Whether messages and state are stored (see the module comment). */
  readonly persisted: boolean
  /** The largest encoded message accepted, in bytes (UTF-8 JSON). */
  readonly maxMessageBytes: number
}

/** Any entity type. */
export type AnyEntityType = EntityType<any, any>

/** The message type of an entity type. */
export type MessageOf<T> = T extends EntityType<infer M, any> ? M : never
/** The state type of an entity type: any for a volatile type (its state is never stored). */
export type StateOf<T> = T extends EntityType<any, infer S> ? ([S] extends [never] ? any : S) : never

/** Options of `makeEntityType`. */
export interface EntityTypeOptions<State> {
  /** The state's schema: makes the type persisted, its state stored with every processed message. */
  readonly state?: Schema.Codec<State, any, never, never> | undefined
  /** Store messages without a state (a stateless behaviour with durable, exactly-once messages). */
  readonly persisted?: boolean | undefined
  /** Default 256 KiB. */
  readonly maxMessageBytes?: number | undefined
}

const DEFAULT_MAX_MESSAGE_BYTES = 256 * 1024

/**
 * Defines an entity type. Throws when `name` is empty, longer than 128 characters or contains NUL
 * (a programming error, found where the type is defined).
 */
export const makeEntityType = <S extends AnyCodec, State = never>(
  name: string,
  schema: S,
  messageId: (message: S["Type"]) => string,
  options?: EntityTypeOptions<State>
): EntityType<S["Type"], State> => {
  if (name.length === 0 || name.length > 128 || name.includes("\u0000")) {
    throw new TypeError(
      `entity type name ${JSON.stringify(name)}: it must be 1 to 128 characters without NUL`
    )
  }
  const maxMessageBytes = options?.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES
  if (!(Number.isInteger(maxMessageBytes) && maxMessageBytes > 0)) {
    throw new TypeError(
      `entity type ${name}: maxMessageBytes must be a positive integer, got ${maxMessageBytes}`
    )
  }
  return {
    _tag: "EntityType",
    name,
    schema,
    messageId,
    state: options?.state,
    persisted: options?.persisted ?? options?.state !== undefined,
    maxMessageBytes
  }
}
