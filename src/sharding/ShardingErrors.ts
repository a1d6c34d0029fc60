/**
 * The errors of ownership: shards, pods and their leases.
 *
 * Like the workflow errors, each is a `Schema.TaggedError` whose `message` says what happened and
 * what to do; each says whether retrying the same call can help (`retryable`).
 */
import { Schema } from "effect"

type MessageInput<Fields> = Fields & {
  readonly message?: string | undefined
  readonly detail?: string | undefined
}

const suffix = (detail: string | undefined): string =>
  detail === undefined || detail === "" ? "" : `: ${detail}`

/** The fields of `StaleEpochError` besides its message. */
export interface StaleEpochErrorFields {
  readonly executionId: string
  readonly shard: number
  /** The epoch the write carried. */
  readonly epoch: number
  /** The shard's epoch in the store (null: the shard has no row). */
  readonly currentEpoch: number | null
}

/**
 * The store refused a write of an execution because it carried an epoch of its shard that is no
 * longer current: another pod owns the shard now (invariant I3). Not transient: the pod that sees
 * it stops its runs of that shard and records nothing more for them; the new owner resumes them.
 */
export class StaleEpochError extends Schema.TaggedError<StaleEpochError>()("StaleEpochError", {
  executionId: Schema.String,
  shard: Schema.Number,
  epoch: Schema.Number,
  currentEpoch: Schema.NullOr(Schema.Number),
  message: Schema.String
}) {
  constructor(props: MessageInput<StaleEpochErrorFields>, options?: Schema.MakeOptions) {
    super(
      {
        executionId: props.executionId,
        shard: props.shard,
        epoch: props.epoch,
        currentEpoch: props.currentEpoch,
        message:
          props.message ??
          `the write of execution "${props.executionId}" was refused: it carries epoch ${props.epoch} of shard ${props.shard}, whose current epoch is ${props.currentEpoch ?? "unknown"}${suffix(props.detail)}. Another pod owns the shard now: this pod stops its runs of that shard and the new owner resumes them.`
      },
      options
    )
  }

  readonly retryable = false
}

/** The fields of `ShardCountMismatchError` besides its message. */
export interface ShardCountMismatchErrorFields {
  /** The shard count this pod was configured with. */
  readonly configured: number
  /** The shard count recorded in the store. */
  readonly recorded: number
}

/**
 * A pod was configured with a shard count other than the one recorded in the store. It refuses to
 * start and writes nothing: every pod of a cluster must hash ids to the same shards.
 */
export class ShardCountMismatchError extends Schema.TaggedError<ShardCountMismatchError>()(
  "ShardCountMismatchError",
  {
    configured: Schema.Number,
    recorded: Schema.Number,
    message: Schema.String
  }
) {
  constructor(props: MessageInput<ShardCountMismatchErrorFields>, options?: Schema.MakeOptions) {
    super(
      {
        configured: props.configured,
        recorded: props.recorded,
        message:
          props.message ??
          `this pod is configured with ${props.configured} shards, but the store records ${props.recorded}${suffix(props.detail)}. Every pod of a cluster must use the same shard count: remove the shardCount option or set it to ${props.recorded}.`
      },
      options
    )
  }

  readonly retryable = false
}

/** The fields of `DuplicatePodError` besides its message. */
export interface DuplicatePodErrorFields {
  readonly podId: string
  /** When the live pod's lease ends (epoch ms). */
  readonly leaseUntil: number
}

/**
 * A pod tried to register with the id of a pod that is alive (its lease is current and its process
 * is not provably gone). It refuses to start and writes nothing.
 */
export class DuplicatePodError extends Schema.TaggedError<DuplicatePodError>()("DuplicatePodError", {
  podId: Schema.String,
  leaseUntil: Schema.Number,
  message: Schema.String
}) {
  constructor(props: MessageInput<DuplicatePodErrorFields>, options?: Schema.MakeOptions) {
    super(
      {
        podId: props.podId,
        leaseUntil: props.leaseUntil,
        message:
          props.message ??
          `a live pod already has the id "${props.podId}" (its lease runs until ${new Date(props.leaseUntil).toISOString()})${suffix(props.detail)}. Give every process its own pod id, or leave the podId option out to have one generated.`
      },
      options
    )
  }

  readonly retryable = false
}

/** The fields of `InvalidShardingConfigError` besides its message. */
export interface InvalidShardingConfigErrorFields {
  /** The option, e.g. `shardCount`. */
  readonly option: string
  /** The value given, as text. */
  readonly value: string
}

/** An ownership option (shard count, lease TTL, pod id) is out of range. Nothing is written. */
export class InvalidShardingConfigError extends Schema.TaggedError<InvalidShardingConfigError>()(
  "InvalidShardingConfigError",
  {
    option: Schema.String,
    value: Schema.String,
    message: Schema.String
  }
) {
  constructor(props: MessageInput<InvalidShardingConfigErrorFields>, options?: Schema.MakeOptions) {
    super(
      {
        option: props.option,
        value: props.value,
        message:
          props.message ?? `the option ${props.option} = ${props.value} is invalid${suffix(props.detail)}.`
      },
      options
    )
  }

  readonly retryable = false
}

/** The fields of `ShardStoreError` besides its message. */
export interface ShardStoreErrorFields {
  /** The `ShardStore` operation, e.g. `renew`. */
  readonly operation: string
  readonly transient: boolean
  /**
   * The operation gave up waiting for a lock another process holds (PostgreSQL: the ownership
   * lock or a shard row, past the store's bounded wait; SQLite: the file's writer lock, past the
   * busy timeout). Transient: the pod skips the round and tries again at the next one.
   */
  readonly busy?: boolean | undefined
}

/**
 * The ownership tables of the store could not be read or written. `transient` faults (connection
 * lost, database busy) are retried by the pod at its next round; others (a row that does not
 * decode) need someone to look at the store.
 */
export class ShardStoreError extends Schema.TaggedError<ShardStoreError>()("ShardStoreError", {
  operation: Schema.String,
  transient: Schema.Boolean,
  busy: Schema.optional(Schema.Boolean),
  message: Schema.String
}) {
  constructor(props: MessageInput<ShardStoreErrorFields>, options?: Schema.MakeOptions) {
    super(
      {
        operation: props.operation,
        transient: props.transient,
        ...(props.busy === true ? { busy: true } : {}),
        message:
          props.message ??
          `the ownership operation "${props.operation}" failed${suffix(props.detail)}. ${
            props.transient
              ? "This fault is transient: the pod tries again at its next round; check that the store is reachable."
              : "Retrying will not help: check the store's configuration and the row named above."
          }`
      },
      options
    )
  }

  get retryable(): boolean {
    return this.transient
  }
}
