/**
 * The connections of a pod to its peers: one multiplexed `effect/rpc` connection per address,
 * opened on first use, reconnected with backoff when it breaks, closed with the network.
 *
 * Pushes to one peer are batched: a fiber per peer takes every push queued while the previous
 * batch was being written and sends them as one `Deliver`; each answer resolves its caller as it
 * arrives. Wake-ups and settlements are batched the same way and sent without an answer.
 *
 * A push waits for its answer as long as its caller does (a slow entity is not a dead peer); the
 * connection's pings tell a dead or cut-off peer apart: with no frame from it for the request
 * timeout, the connection fails, and so do its pushes in flight. A peer whose connection failed
 * is then passed over for the request timeout (its pushes fail at once with
 * `PeerUnreachableError`, and senders take the store path), so a partitioned peer costs one
 * timeout, not one per message.
 */
import { Cause, Clock, Deferred, Effect, Exit, Layer, Option, Queue, Schedule, Scope, Stream } from "effect"
import { RpcClient, RpcSerialization } from "effect/rpc"
import { Socket } from "effect/socket/Socket"
import { type EntityPush, type EntityPushAnswer, PeerUnreachableError } from "../../sharding/PodNetwork.ts"
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

interface PendingPush {
  readonly message: EntityPush
  readonly answer: Deferred.Deferred<EntityPushAnswer, PeerUnreachableError>
}

type Hint =
  | { readonly _tag: "Wake"; readonly shard: number }
  | { readonly _tag: "Settled"; readonly id: string }

interface Peer {
  readonly pushes: Queue.Queue<PendingPush>
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
        const pushes = yield* Queue.unbounded<PendingPush>()
        const hints = yield* Queue.unbounded<Hint>()
        const peer: Peer = { pushes, hints, suspectUntil: 0 }
        if (parsed === undefined) {
          // An address no connection can be made to: every push fails at once.
          peer.suspectUntil = Number.POSITIVE_INFINITY
          return peer
        }
        let token = options.token?.(address)
        const hooks = Layer.succeed(RpcClient.ConnectionHooks, {
          onConnect: Effect.sync(() => {
            token = options.token?.(address)
          }),
          onDisconnect: Effect.void
        })
        const socket = yield* options.connect(parsed.host, parsed.port)
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

        const unreachable = (detail: string) => new PeerUnreachableError({ address, detail })
        const sendBatch = (batch: ReadonlyArray<PendingPush>) =>
          client.Deliver({ messages: batch.map((pending) => pending.message) }, { headers: headers() }).pipe(
            Stream.runForEach(({ index, answer }) => {
              const pending = batch[index]
              return pending === undefined ? Effect.void : Deferred.succeed(pending.answer, answer)
            }),
            Effect.exit,
            Effect.flatMap((exit) => {
              const detail = Exit.isSuccess(exit)
                ? "the connection ended before every answer arrived"
                : describe(exit.cause)
              return Effect.forEach(batch, (pending) => Deferred.fail(pending.answer, unreachable(detail)), {
                discard: true
              })
            })
          )
        yield* Effect.forkIn(
          Effect.forever(
            Effect.flatMap(Queue.takeAll(pushes), (batch) => Effect.forkIn(sendBatch(batch), scope))
          ),
          scope
        )
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
        return peer
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
          const answer = Deferred.makeUnsafe<EntityPushAnswer, PeerUnreachableError>()
          Queue.offerUnsafe(peer.pushes, { message, answer })
          // A slow entity is not a dead peer: the push waits as long as its caller, while the
          // connection's pings (every requestTimeout / 2) tell a dead or cut-off peer apart.
          return Effect.timeoutOption(Deferred.await(answer), Math.max(0, timeoutMillis)).pipe(
            Effect.tapError(() =>
              Effect.sync(() => {
                peer.suspectUntil = now() + options.requestTimeoutMillis
              })
            ),
            Effect.flatMap((result) =>
              Option.isSome(result)
                ? Effect.succeed(result.value)
                : Effect.fail(
                    new PeerUnreachableError({ address, detail: `no answer within ${timeoutMillis} ms` })
                  )
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

const describe = (cause: Cause.Cause<unknown>): string => {
  const error = Cause.squash(cause)
  return error instanceof Error ? error.message : String(error)
}
