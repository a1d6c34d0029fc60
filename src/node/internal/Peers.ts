/**
 * The connections of a pod to its peers: one multiplexed `effect/rpc` connection per address,
 * opened on first use, reconnected with backoff when it breaks, closed with the network.
 *
 * Pushes to one peer are batched (see `PodRpcs`): a fiber per peer takes every push queued while
 * the previous batch was being written and sends them as one `Deliver`; the peer's answers come
 * back on the connection's `Answers` stream, each resolving its caller by id. Wake-ups and
 * settlements are batched the same way.
 *
 * A push waits for its answer as long as its caller does (a slow entity is not a dead peer); the
 * connection's pings tell a dead or cut-off peer apart: with no frame from it for the request
 * timeout, the connection fails, and with it every push still waiting for an answer on it. A peer
 * whose connection failed is then passed over for the request timeout (its pushes fail at once
 * with `PeerUnreachableError`, and senders take the store path), so a partitioned peer costs one
 * timeout, not one per message.
 */
import { Cause, Clock, Deferred, Effect, Exit, Layer, Option, Queue, Schedule, Scope, Stream } from "effect"
import { RpcClient, RpcSerialization } from "effect/rpc"
import { Socket } from "effect/socket/Socket"
import {
  type EntityPush,
  type EntityPushAnswer,
  PeerUnreachableError,
  type PodNetwork,
  type Route
} from "../../sharding/PodNetwork.ts"
import * as FrameBudget from "./FrameBudget.ts"
import { AUTH_HEADER, type NumberedPush, PodRpcs } from "./PodRpcs.ts"

/** What `Peers` needs from the network. */
export interface PeersOptions {
  /** This pod, as its `Owns` hints name it. */
  readonly self: Route
  readonly requestTimeoutMillis: number
  /** The largest frame a peer reads (see `FrameBudget`). */
  readonly maxFrameBytes: number
  readonly serialization: RpcSerialization.RpcSerialization["Service"]
  /** Opens a socket to `host:port` (TCP or TLS). */
  readonly connect: (host: string, port: number) => Effect.Effect<Socket>
  /** A fresh proof of the secret for a new connection to `address`, if the cluster has one. */
  readonly token: ((address: string) => string) | undefined
}

type Hint =
  | { readonly _tag: "Wake"; readonly shard: number }
  | { readonly _tag: "Owns"; readonly shard: number }
  | { readonly _tag: "Settled"; readonly id: string; readonly row: string | null }

interface Peer {
  /** Asks the peer `podId` to stand down `registeredAt`; undefined when no answer came in time. */
  readonly standDown: (podId: string, registeredAt: number) => Effect.Effect<boolean | undefined>
  readonly push: (
    message: EntityPush,
    timeoutMillis: number
  ) => Effect.Effect<EntityPushAnswer, PeerUnreachableError>
  readonly hint: (hint: Hint) => void
}

/** The outbound half of a `PodNetwork`. */
export type Peers = Pick<PodNetwork, "push" | "wake" | "settled" | "owns"> & {
  /** Asks `podId` at `address` to stand down `registeredAt`; undefined when no answer came in time. */
  readonly standDown: (
    address: string,
    podId: string,
    registeredAt: number
  ) => Effect.Effect<boolean | undefined>
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

/** How often the callers' deadlines are checked. */
const SWEEP_MILLIS = 50

const describe = (error: unknown): string =>
  typeof error === "object" && error !== null && "message" in error ? String(error.message) : String(error)

export const make = (options: PeersOptions): Effect.Effect<Peers, never, Scope.Scope> =>
  Effect.gen(function* () {
    const scope = yield* Effect.scope
    const clock = yield* Clock.Clock
    const now = () => clock.currentTimeMillisUnsafe()
    const peers = new Map<string, Peer>()

    const connect = (address: string): Effect.Effect<Peer> =>
      Effect.gen(function* () {
        const parsed = parseAddress(address)
        const unreachable = (detail: string) => new PeerUnreachableError({ address, detail })
        if (parsed === undefined) {
          return {
            push: () => Effect.fail(unreachable("it is not host:port")),
            hint: () => {},
            standDown: () => Effect.succeed(undefined)
          }
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
            Effect.map(
              RpcClient.makeProtocolSocket({
                pingInterval: Math.max(50, options.requestTimeoutMillis / 2),
                pingTimeout: options.requestTimeoutMillis,
                retryPolicy: Schedule.min([Schedule.exponential(50, 2), Schedule.spaced(2_000)])
              }),
              (protocol) => ({ ...protocol, supportsAck: false })
            )
          ),
          Effect.provideService(Socket, socket),
          Effect.provideService(RpcSerialization.RpcSerialization, options.serialization),
          Effect.provide(hooks)
        )
        const headers = () => (token === undefined ? undefined : { [AUTH_HEADER]: token })

        /** Pushes waiting for their answer, by id, with the time their caller stops waiting. */
        const waiting = new Map<number, Deferred.Deferred<EntityPushAnswer, PeerUnreachableError>>()
        const deadlines = new Map<number, number>()
        let nextId = 0
        /** Until when the peer is passed over (its connection failed). */
        let suspectUntil = 0
        const failWaiting = (ids: Iterable<number>, detail: string) => {
          for (const id of ids) {
            const answer = waiting.get(id)
            if (answer === undefined) continue
            waiting.delete(id)
            deadlines.delete(id)
            Deferred.doneUnsafe(answer, Effect.fail(unreachable(detail)))
          }
        }
        const broken = (detail: string) =>
          Effect.sync(() => {
            suspectUntil = now() + options.requestTimeoutMillis
            failWaiting([...waiting.keys()], detail)
          })

        // The answers: one stream per connection, opened again whenever it ends.
        const readAnswers = client.Answers(undefined, { headers: headers() }).pipe(
          Stream.runForEachArray((answers) =>
            Effect.sync(() => {
              for (const { id, answer } of answers) {
                const waiter = waiting.get(id)
                if (waiter === undefined) continue
                waiting.delete(id)
                deadlines.delete(id)
                Deferred.doneUnsafe(waiter, Effect.succeed(answer))
              }
            })
          ),
          Effect.exit,
          Effect.flatMap((exit) =>
            Effect.andThen(
              broken(
                Exit.isSuccess(exit) ? "the peer ended its answers" : describe(Cause.squash(exit.cause))
              ),
              Effect.sleep(50)
            )
          )
        )
        yield* Effect.forkIn(Effect.forever(readAnswers), scope)
        // The callers' deadlines: one sweep every 50 ms rather than a timer per push.
        yield* Effect.forkIn(
          Effect.forever(
            Effect.andThen(
              Effect.sleep(SWEEP_MILLIS),
              Effect.sync(() => {
                const at = now()
                const expired: Array<number> = []
                for (const [id, deadline] of deadlines) if (deadline <= at) expired.push(id)
                failWaiting(expired, "no answer before the sender's deadline")
              })
            )
          ),
          scope
        )

        const outbox = yield* Queue.unbounded<typeof NumberedPush.Type>()
        const budget = FrameBudget.budgetOf(options.maxFrameBytes)
        const sizeOf = (push: typeof NumberedPush.Type) => FrameBudget.pushSize(push.message)
        const deliver = (frame: ReadonlyArray<typeof NumberedPush.Type>) =>
          client.Deliver({ pushes: frame }, { headers: headers(), discard: true }).pipe(
            Effect.catchCause((cause) =>
              Effect.sync(() =>
                failWaiting(
                  frame.map((push) => push.id),
                  describe(Cause.squash(cause))
                )
              )
            )
          )
        /** The batch in frames the peer reads; a push too large for any frame takes the store path. */
        const sendPushes = (batch: ReadonlyArray<typeof NumberedPush.Type>) =>
          Effect.forEach(
            FrameBudget.groups(batch, sizeOf, budget),
            (frame) => {
              if (frame.length === 1 && sizeOf(frame[0]!) > budget) {
                return Effect.sync(() =>
                  failWaiting(
                    [frame[0]!.id],
                    `the message is too large for a frame between pods (maxFrameBytes ${options.maxFrameBytes})`
                  )
                )
              }
              return deliver(frame)
            },
            { discard: true }
          )
        yield* Effect.forkIn(Effect.forever(Effect.flatMap(Queue.takeAll(outbox), sendPushes)), scope)

        const hints = yield* Queue.unbounded<Hint>()
        const sendHints = (batch: ReadonlyArray<Hint>) => {
          const shards = new Set<number>()
          const owned = new Set<number>()
          const settled = new Map<string, string | null>()
          for (const hint of batch) {
            if (hint._tag === "Wake") shards.add(hint.shard)
            else if (hint._tag === "Owns") owned.add(hint.shard)
            else settled.set(hint.id, hint.row ?? settled.get(hint.id) ?? null)
          }
          // Final rows ride along while they fit in the frame; past it, the waiters read the store.
          let room = budget
          for (const [id, row] of settled) {
            if (row === null) continue
            room -= 2 * (row.length + id.length)
            if (room < 0) settled.set(id, null)
          }
          return Effect.all(
            [
              shards.size === 0
                ? Effect.void
                : client.Wake({ shards: [...shards] }, { headers: headers(), discard: true }),
              settled.size === 0
                ? Effect.void
                : client.Settled(
                    { settled: [...settled].map(([executionId, row]) => ({ executionId, row })) },
                    { headers: headers(), discard: true }
                  ),
              owned.size === 0
                ? Effect.void
                : client.Owns(
                    { owner: options.self, shards: [...owned] },
                    { headers: headers(), discard: true }
                  )
            ],
            { discard: true }
          ).pipe(
            Effect.catchCause((cause) => Effect.logDebug(`network: a hint to ${address} was lost`, cause))
          )
        }
        yield* Effect.forkIn(Effect.forever(Effect.flatMap(Queue.takeAll(hints), sendHints)), scope)

        return {
          standDown: (podId, registeredAt) =>
            client.StandDown({ podId, registeredAt }, { headers: headers() }).pipe(
              Effect.timeoutOption(options.requestTimeoutMillis),
              Effect.map(Option.getOrUndefined),
              Effect.catchCause(() => Effect.succeed(undefined))
            ),
          push: (message, timeoutMillis) =>
            Effect.suspend(() => {
              if (suspectUntil > now()) return Effect.fail(unreachable("its connection failed recently"))
              const id = nextId++
              const answer = Deferred.makeUnsafe<EntityPushAnswer, PeerUnreachableError>()
              waiting.set(id, answer)
              // A slow entity is not a dead peer: the push waits as long as its caller.
              deadlines.set(id, now() + Math.max(0, timeoutMillis))
              Queue.offerUnsafe(outbox, { id, message })
              return Effect.onInterrupt(Deferred.await(answer), () =>
                Effect.sync(() => {
                  waiting.delete(id)
                  deadlines.delete(id)
                })
              )
            }),
          hint: (hint) => {
            Queue.offerUnsafe(hints, hint)
          }
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
        Effect.flatMap(peerOf(address), (peer) => peer.push(message, timeoutMillis)),
      wake: (address, shard) => Effect.map(peerOf(address), (peer) => peer.hint({ _tag: "Wake", shard })),
      settled: (address, id, row) =>
        Effect.map(peerOf(address), (peer) => peer.hint({ _tag: "Settled", id, row: row ?? null })),
      owns: (address, shard) => Effect.map(peerOf(address), (peer) => peer.hint({ _tag: "Owns", shard })),
      standDown: (address, podId, registeredAt) =>
        Effect.flatMap(peerOf(address), (peer) => peer.standDown(podId, registeredAt))
    }
  })
