/**
 * The port of the direct path between pods: what a pod says to another over the network, and the
 * service that carries it (`effect-cluster`'s Node implementation is `NodePodNetwork`, over
 * `effect/rpc` on TCP sockets).
 *
 * The store stays the source of truth; the network is the fast path on top of it:
 * - a volatile entity message travels only over the network (the store is its fallback when the
 *   owner cannot be reached);
 * - a persisted one is stored first (I5), then pushed with its payload, so the owner handles it
 *   without reading it back, and the reply comes back on the same connection; a lost push or
 *   reply costs one poll of the store, never a message;
 * - workflow starts, resumes, signals and interruptions wake the owner (`wake`), and results are
 *   pushed to the pods that may wait for them (`settled`).
 *
 * A pod that gets a message for a shard it does not run answers `NotOwner` with its own view of
 * the owner; the sender refreshes its routes and tries again (never a handling by a non-owner).
 *
 * Configure it with the `network` option of `Membership.layer` (or the engine's pod options):
 *
 * @example
 * ```ts
 * Membership.layer({ network: { host: "0.0.0.0", port: 7400, secret: Redacted.make(process.env.CLUSTER_SECRET!) } })
 * Membership.layer({ network: false }) // store only
 * ```
 */
import { Context, type Duration, type Effect, type Redacted, Schema, type Scope } from "effect"
import {
  EntityStateDecodeError,
  InvalidEntityIdError,
  MalformedMessageError,
  MessageTooLargeError
} from "./EntityErrors.ts"
import { EntityStoreError } from "./EntityStore.ts"

/** TLS for a pod's listener and its connections to peers: PEM file paths. */
export interface NetworkTls {
  /** The pod's private key (PEM file). */
  readonly keyFile: string
  /** The pod's certificate (PEM file). */
  readonly certFile: string
  /** The certificate authority that signed the cluster's certificates (PEM file). */
  readonly caFile?: string | undefined
}

/** Options of a pod's network listener (all optional). */
export interface NetworkOptions {
  /** The interface to listen on. Default `127.0.0.1` (loopback). */
  readonly host?: string | undefined
  /** The port to listen on. Default 0: any free port (the pod advertises the one it got). */
  readonly port?: number | undefined
  /** The `host:port` other pods reach this one at. Default: the listening host and port. */
  readonly advertise?: string | undefined
  /**
   * The cluster's shared secret: peers prove they know it (an HMAC handshake; the secret itself
   * never crosses the wire), and a connection that does not is refused. Required to listen beyond
   * loopback without `tls`.
   */
  readonly secret?: string | Redacted.Redacted<string> | undefined
  /** Encrypts and authenticates the traffic between pods with these certificates. */
  readonly tls?: NetworkTls | undefined
  /**
   * How long a peer may stay silent (its connection is pinged every half of it) before its
   * connection is deemed broken: the pushes in flight on it take the store path, and the peer is
   * passed over for as long. Default 5 seconds.
   */
  readonly requestTimeout?: Duration.Input | undefined
  /**
   * The largest frame a peer may send, in bytes. Default 16 MiB. Give every pod of a cluster the
   * same: a pod keeps the frames it sends under its own (pushes are batched below it).
   */
  readonly maxFrameBytes?: number | undefined
  /**
   * The most connections the pod's listener keeps open at once (each peer opens one); more are
   * closed as they come, with a log line. Default 512.
   */
  readonly maxConnections?: number | undefined
}

/** An entity message pushed to the pod that owns its shard. */
export const EntityPush = Schema.Struct({
  entityType: Schema.String,
  entityId: Schema.String,
  messageId: Schema.String,
  shard: Schema.Int,
  /** The message, JSON of the entity type's schema (decoded again by the owner). */
  payload: Schema.String,
  /** Stored pending in the entity store before the push (persisted types; the store path). */
  stored: Schema.Boolean,
  /** The sender waits for the reply (`send`); else it waits only until the entity has it. */
  awaitReply: Schema.Boolean
})

/** @see EntityPush */
export type EntityPush = typeof EntityPush.Type

/** A pod as a destination: its id and the address it advertises. */
export const Route = Schema.Struct({ podId: Schema.String, address: Schema.String })

/** @see Route */
export type Route = typeof Route.Type

/** What the owner answers to a push. */
export const EntityPushAnswer = Schema.Union([
  /** Processed: the reply's `Exit` as JSON (null for a message without a reply). */
  Schema.TaggedStruct("Reply", { reply: Schema.NullOr(Schema.String) }),
  /** Handed to its entity (a push the sender does not wait on). */
  Schema.TaggedStruct("Accepted", {}),
  Schema.TaggedStruct("Dead", { error: Schema.String }),
  Schema.TaggedStruct("Failed", {
    error: Schema.Union([
      EntityStateDecodeError,
      EntityStoreError,
      MalformedMessageError,
      MessageTooLargeError,
      InvalidEntityIdError
    ])
  }),
  /** This pod does not run the shard (now): try `owner`, this pod's view of the owner, if any. */
  Schema.TaggedStruct("NotOwner", { owner: Schema.NullOr(Route) }),
  /** No behaviour is registered for the type on this pod. */
  Schema.TaggedStruct("UnknownType", {})
])

/** @see EntityPushAnswer */
export type EntityPushAnswer = typeof EntityPushAnswer.Type

/** The peer could not be reached, or did not answer within the request timeout: take the store path. */
export class PeerUnreachableError extends Schema.TaggedError<PeerUnreachableError>()("PeerUnreachableError", {
  address: Schema.String,
  message: Schema.String
}) {
  constructor(props: { readonly address: string; readonly detail: string }, options?: Schema.MakeOptions) {
    super(
      {
        address: props.address,
        message: `the pod at ${props.address} could not be reached: ${props.detail}. Messages take the store path meanwhile.`
      },
      options
    )
  }

  get retryable(): boolean {
    return true
  }
}

/** The pod's listener could not start (a bad option, a port in use). Nothing was registered. */
export class NetworkConfigError extends Schema.TaggedError<NetworkConfigError>()("NetworkConfigError", {
  option: Schema.String,
  message: Schema.String
}) {
  constructor(props: { readonly option: string; readonly detail: string }, options?: Schema.MakeOptions) {
    super(
      {
        option: props.option,
        message: `the pod's network option "${props.option}" is not usable: ${props.detail}. Fix it, or set network: false to use the store only.`
      },
      options
    )
  }

  get retryable(): boolean {
    return false
  }
}

/** What a pod does with the traffic other pods send it. */
export interface InboundHandlers {
  /** An entity message for a shard this pod should own. */
  readonly push?: ((message: EntityPush) => Effect.Effect<EntityPushAnswer>) | undefined
  /** Inbox entries were stored for these shards: read them now. */
  readonly wake?: ((shards: ReadonlyArray<number>) => Effect.Effect<void>) | undefined
  /**
   * These executions settled (final or suspended): callers waiting for them may read them now, or
   * take the final row that came with one (JSON of the journal's `ExecutionRecord`).
   */
  readonly settled?:
    | ((
        settled: ReadonlyArray<{ readonly executionId: string; readonly row: string | null }>
      ) => Effect.Effect<void>)
    | undefined
  /** The pod `owner` runs these shards now (it acquired them): route their messages to it. */
  readonly owns?: ((owner: Route, shards: ReadonlyArray<number>) => Effect.Effect<void>) | undefined
  /**
   * Another pod sees this pod's registration `registeredAt` as suspect (its store session ended
   * while its lease runs): stop every run of it and start none, then answer true; false when
   * `registeredAt` is not a registration of this process (see `PodNetwork.standDown`).
   */
  readonly standDown?: ((registeredAt: number) => Effect.Effect<boolean>) | undefined
}

/**
 * What `standDown` proved about a suspect pod: `stopped` (it answered that the registration's runs
 * have stopped and none will start), `absent` (nothing listens at its address, an address of this
 * host: its process is gone), or `unproven` (no answer in time, another pod answered, or a refusal
 * from another host, where a firewall may refuse for a live process): then wait for its lease.
 */
export type StandDownOutcome = "stopped" | "absent" | "unproven"

/** A pod's listener and its connections to the other pods. */
export interface PodNetwork {
  /** The address this pod advertises (`host:port`). */
  readonly address: string
  /**
   * Pushes an entity message to the pod at `address` and returns its answer. Fails with
   * `PeerUnreachableError` when no connection can be made, when it breaks (a peer silent for the
   * request timeout breaks it) before the answer came, or when no answer came in `timeoutMillis`.
   */
  readonly push: (
    address: string,
    message: EntityPush,
    timeoutMillis: number
  ) => Effect.Effect<EntityPushAnswer, PeerUnreachableError>
  /** Tells the pod at `address` to read its inbox for `shard` (a hint: best effort). */
  readonly wake: (address: string, shard: number) => Effect.Effect<void>
  /** Tells the pod at `address` that `executionId` settled, with its final row if given (a hint). */
  readonly settled: (address: string, executionId: string, row?: string | undefined) => Effect.Effect<void>
  /** Tells the pod at `address` that this pod runs `shard` now (a hint: best effort). */
  readonly owns: (address: string, shard: number) => Effect.Effect<void>
  /**
   * Asks the pod `podId` at `address` to stop the runs of its registration `registeredAt`, which
   * this pod sees as suspect, and says what that proved (see `StandDownOutcome`). Waits at most
   * the request timeout for the answer.
   */
  readonly standDown: (
    address: string,
    podId: string,
    registeredAt: number
  ) => Effect.Effect<StandDownOutcome>
  /** Adds handlers of inbound traffic until the scope closes (several may listen to wakes). */
  readonly serve: (handlers: InboundHandlers) => Effect.Effect<void, never, Scope.Scope>
}

/** Makes a pod's network: listens, and connects to peers on demand, until the scope closes. */
export class PodNetworkFactory extends Context.Service<
  PodNetworkFactory,
  {
    readonly listen: (
      podId: string,
      options: NetworkOptions
    ) => Effect.Effect<PodNetwork, NetworkConfigError, Scope.Scope>
  }
>()("effect-cluster/sharding/PodNetworkFactory") {}
