/**
 * The errors of entities and their messenger. Each is a `Schema.TaggedError` naming the entity type
 * and id (and the message or field where it applies), with a `message` that says what happened and
 * what to do.
 */
import { Schema } from "effect"

type Input<Fields> = Fields & { readonly message?: string | undefined }

/**
 * A message (or a stored one, or a reply) does not match its schema: `path` names the bad field.
 * Nothing was stored for it; the entity's other messages are not affected.
 */
export class MalformedMessageError extends Schema.TaggedError<MalformedMessageError>()(
  "MalformedMessageError",
  {
    entityType: Schema.String,
    entityId: Schema.String,
    /** The field path as JSON (`["amount"]`), or `<root>`. */
    path: Schema.String,
    detail: Schema.String,
    message: Schema.String
  }
) {
  constructor(props: Input<{ entityType: string; entityId: string; path: string; detail: string }>) {
    super({
      ...props,
      message:
        props.message ??
        `a message to entity ${props.entityType}/${props.entityId} does not match the type's schema at ${props.path}: ${props.detail}`
    })
  }
}

/** A message's encoded form is larger than the type's `maxMessageBytes`. Nothing was stored. */
export class MessageTooLargeError extends Schema.TaggedError<MessageTooLargeError>()("MessageTooLargeError", {
  entityType: Schema.String,
  entityId: Schema.String,
  bytes: Schema.Number,
  limit: Schema.Number,
  message: Schema.String
}) {
  constructor(props: Input<{ entityType: string; entityId: string; bytes: number; limit: number }>) {
    super({
      ...props,
      message:
        props.message ??
        `a message to entity ${props.entityType}/${props.entityId} is ${props.bytes} bytes encoded, over the type's limit of ${props.limit} (maxMessageBytes); nothing was stored`
    })
  }
}

/** An entity id that cannot address an entity (empty, longer than 512 characters, or with NUL). */
export class InvalidEntityIdError extends Schema.TaggedError<InvalidEntityIdError>()("InvalidEntityIdError", {
  entityType: Schema.String,
  entityId: Schema.String,
  message: Schema.String
}) {
  constructor(props: Input<{ entityType: string; entityId: string }>) {
    super({
      ...props,
      message:
        props.message ??
        `${JSON.stringify(props.entityId)} is not an id of a ${props.entityType} entity: ids are 1 to 512 characters without NUL`
    })
  }
}

/**
 * This pod owns the entity's shard but has no behaviour registered for its type
 * (`Sharding.registerEntity`). Nothing was stored.
 */
export class UnknownEntityTypeError extends Schema.TaggedError<UnknownEntityTypeError>()(
  "UnknownEntityTypeError",
  {
    entityType: Schema.String,
    entityId: Schema.String,
    message: Schema.String
  }
) {
  constructor(props: Input<{ entityType: string; entityId: string }>) {
    super({
      ...props,
      message:
        props.message ??
        `no behaviour is registered for entity type ${props.entityType} (entity ${props.entityId}) on the pod that owns it: register it with Sharding.registerEntity on every pod`
    })
  }
}

/**
 * `send` got no reply in time. For a persisted type the message stays stored and is still
 * processed: sending it again with the same message id returns its reply.
 */
export class MessageTimeoutError extends Schema.TaggedError<MessageTimeoutError>()("MessageTimeoutError", {
  entityType: Schema.String,
  entityId: Schema.String,
  messageId: Schema.String,
  timeoutMillis: Schema.Number,
  message: Schema.String
}) {
  constructor(
    props: Input<{ entityType: string; entityId: string; messageId: string; timeoutMillis: number }>
  ) {
    super({
      ...props,
      message:
        props.message ??
        `no reply from entity ${props.entityType}/${props.entityId} to message ${props.messageId} within ${props.timeoutMillis} ms`
    })
  }
}

/**
 * The message's handler kept failing: after its retries the message was moved aside (a dead
 * letter, see `Sharding.deadLetters`) with `error`, and the entity went on with its next message.
 */
export class MessageDeadLetteredError extends Schema.TaggedError<MessageDeadLetteredError>()(
  "MessageDeadLetteredError",
  {
    entityType: Schema.String,
    entityId: Schema.String,
    messageId: Schema.String,
    error: Schema.String,
    message: Schema.String
  }
) {
  constructor(props: Input<{ entityType: string; entityId: string; messageId: string; error: string }>) {
    super({
      ...props,
      message:
        props.message ??
        `message ${props.messageId} to entity ${props.entityType}/${props.entityId} was dead-lettered: ${props.error}`
    })
  }
}

/**
 * The entity's stored state no longer decodes with the type's state schema (it changed). The entity
 * does not start: its messages stay stored, pending, and nothing is deleted; the other entities go on.
 */
export class EntityStateDecodeError extends Schema.TaggedError<EntityStateDecodeError>()(
  "EntityStateDecodeError",
  {
    entityType: Schema.String,
    entityId: Schema.String,
    path: Schema.String,
    detail: Schema.String,
    message: Schema.String
  }
) {
  constructor(props: Input<{ entityType: string; entityId: string; path: string; detail: string }>) {
    super({
      ...props,
      message:
        props.message ??
        `the stored state of entity ${props.entityType}/${props.entityId} does not decode with the type's state schema at ${props.path}: ${props.detail}. The entity does not start; its state and messages are kept`
    })
  }
}
