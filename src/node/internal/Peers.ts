/**
 * The connections of a pod to its peers: one multiplexed `effect/rpc` connection per address,
 * opened on first use, reconnected with backoff when it breaks, closed with the network.
 *
 * Each push is one request on the peer's connection, answered as soon as its entity answers.
 * Wake-ups and settlements are batched: a fiber per peer takes every hint queued while the
 * previous batch was being written, and sends them without waiting for an answer.
 *
 * A push waits for its answer as long as its caller does (a slow entity is not a dead peer); the
 * connection's pings tell a dead or cut-off peer apart: with no frame from it for the request
 * timeout, the connection fails, and so do its pushes in flight. A peer whose connection failed
 * is then passed over for the request timeout (its pushes fail at once with
 * `PeerUnreachableError`, and senders take the store path), so a partitioned peer costs one
 * timeout, not one per message.
 */
import { Clock, Effect, Layer, Option, Queue, Schedule, Scope } from "effect"
import { RpcClient, RpcSerialization } from "effect/rpc"
import { Socket } from "effect/socket/Socket"
import { type EntityPush, type EntityPushAnswer, PeerUnreachableError } from "../../sharding/PodNetwork.ts"
import * as CoalescingSocket from "./CoalescingSocket.ts"
import { AUTH_HEADER, PodRpcs } from "./PodRpcs.ts"

/** What `Peers` needs from the network. */
export interface PeersOptions {
  readonly requestTimeoutMillis: number
  readonly serialization: RpcSerialization.RpcSerialization["Service"]
  /** Opens a socket to `host:port` (TCP or TLS). */
  readonly connect: (host: string, port: number) => Effect.Effect<Socket>
  /** A fresh proof of the secret for a new connection to `address`, if the cluster has one. */
  readonly token: ((address: string) => string) | undefined
}

type Hint =
  | { readonly _tag: "Wake"; readonly shard: number }
  | { readonly _tag: "Settled"; readonly id: string }

interface Peer {
  readonly deliver: (message: EntityPush) => Effect.Effect<EntityPushAnswer, unknown>
  readonly hints: Queue.Queue<Hint>
  /** Until when the peer is passed over (it did not answer in time). */
  suspectUntil: number
}

export interface Peers {
  readonly push: (
    address: string,
    message: EntityPush,
    timeoutMillis: number
  ) => Effect.Effect<EntityPushAnswer, PeerUnreachableError>
  readonly wake: (address: string, shard: number) => Effect.Effect<void>
  readonly settled: (address: string, executionId: string) => Effect.Effect<void>
}

/** `host:port` → its parts (IPv6 hosts in brackets). */
export const parseAddress = (
  address: string
): { readonly host: string; readonly port: number } | undefined => {
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(address)
  if (match === null) return undefined
  const port = Number(match[3])
  return port > 0 && port < 65536 ? { host: (match[1] ?? match[2])!, port } : undefined
}

export const make = (options: PeersOptions): Effect.Effect<Peers, never, Scope.Scope> =>
  Effect.gen(function* () {
    const scope = yield* Effect.scope
    const clock = yield* Clock.Clock
    const now = () => clock.currentTimeMillisUnsafe()
    const peers = new Map<string, Peer>()

    const connect = (address: string): Effect.Effect<Peer> =>
      Effect.gen(function* () {
        const parsed = parseAddress(address)
        const hints = yield* Queue.unbounded<Hint>()
        if (parsed === undefined) {
          // An address no connection can be made to: every push fails at once.
          return { deliver: () => Effect.die("unreachable"), hints, suspectUntil: Number.POSITIVE_INFINITY }
        }
        let token = options.token?.(address)
        const hooks = Layer.succeed(RpcClient.ConnectionHooks, {
          onConnect: Effect.sync(() => {
            token = options.token?.(address)
          }),
          onDisconnect: Effect.void
        })
        const socket = CoalescingSocket.make(yield* options.connect(parsed.host, parsed.port))
        const client = yield* RpcClient.make(PodRpcs, { disableTracing: true }).pipe(
          Effect.provideServiceEffect(
            RpcClient.Protocol,
            RpcClient.makeProtocolSocket({
              pingInterval: Math.max(50, options.requestTimeoutMillis / 2),
              pingTimeout: options.requestTimeoutMillis,
              retryPolicy: Schedule.min([Schedule.exponential(50, 2), Schedule.spaced(2_000)])
            })
          ),
          Effect.provideService(Socket, socket),
          Effect.provideService(RpcSerialization.RpcSerialization, options.serialization),
          Effect.provide(hooks)
        )
        const headers = () => (token === undefined ? undefined : { [AUTH_HEADER]: token })

        const sendHints = (batch: ReadonlyArray<Hint>) => {
          const shards = new Set<number>()
          const executionIds = new Set<string>()
          for (const hint of batch) {
            if (hint._tag === "Wake") shards.add(hint.shard)
            else executionIds.add(hint.id)
          }
          return Effect.all(
            [
              shards.size === 0
                ? Effect.void
                : client.Wake({ shards: [...shards] }, { headers: headers(), discard: true }),
              executionIds.size === 0
                ? Effect.void
                : client.Settled({ executionIds: [...executionIds] }, { headers: headers(), discard: true })
            ],
            { discard: true }
          ).pipe(
            Effect.catchCause((cause) => Effect.logDebug(`network: a hint to ${address} was lost`, cause))
          )
        }
        yield* Effect.forkIn(Effect.forever(Effect.flatMap(Queue.takeAll(hints), sendHints)), scope)
        return {
          deliver: (message: EntityPush) => client.Deliver({ message }, { headers: headers() }),
          hints,
          suspectUntil: 0
        } satisfies Peer
      }).pipe(Scope.provide(scope))

    const peerOf = (address: string): Effect.Effect<Peer> =>
      Effect.suspend(() => {
        const known = peers.get(address)
        if (known !== undefined) return Effect.succeed(known)
        return Effect.tap(connect(address), (peer) => Effect.sync(() => peers.set(address, peer)))
      })

    return {
      push: (address, message, timeoutMillis) =>
        Effect.flatMap(peerOf(address), (peer) => {
          if (peer.suspectUntil > now()) {
            return Effect.fail(
              new PeerUnreachableError({ address, detail: "it did not answer in time recently" })
            )
          }
          // A slow entity is not a dead peer: the push waits as long as its caller, while the
          // connection's pings (every requestTimeout / 2) tell a dead or cut-off peer apart.
          return Effect.timeoutOption(peer.deliver(message), Math.max(0, timeoutMillis)).pipe(
            Effect.mapError((error) => new PeerUnreachableError({ address, detail: describe(error) })),
            Effect.flatMap((result) =>
              Option.isSome(result)
                ? Effect.succeed(result.value)
                : Effect.fail(
                    new PeerUnreachableError({ address, detail: `no answer within ${timeoutMillis} ms` })
                  )
            ),
            Effect.tapError(() =>
              Effect.sync(() => {
                peer.suspectUntil = now() + options.requestTimeoutMillis
              })
            )
          )
        }),
      wake: (address, shard) =>
        Effect.map(peerOf(address), (peer) => {
          Queue.offerUnsafe(peer.hints, { _tag: "Wake", shard })
        }),
      settled: (address, id) =>
        Effect.map(peerOf(address), (peer) => {
          Queue.offerUnsafe(peer.hints, { _tag: "Settled", id })
        })
    }
  })

const describe = (error: unknown): string =>
  typeof error === "object" && error !== null && "message" in error ? String(error.message) : String(error)
