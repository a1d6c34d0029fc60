/**
 * Pods over the network on Node.js (the talk's `cluster-node`): each pod listens on a TCP port
 * (loopback and any free port by default) and keeps one multiplexed `effect/rpc` connection per
 * peer, with reconnect and backoff. It implements the `PodNetwork` port of `sharding/`; nothing
 * below this folder knows about sockets.
 *
 * The SQLite and PostgreSQL store layers provide it, so a program on either gets the direct path
 * with no change: `Membership.layer({ network: { ... } })` configures it, `network: false` turns
 * it off. Beyond loopback a pod requires a cluster `secret` (an HMAC handshake per connection) or
 * `tls` (certificate files): an unauthenticated peer is refused with a log line and nothing it
 * sends is processed. A connection that is not a peer's is closed with a log line: a frame larger
 * than `maxFrameBytes`, not JSON or not of the protocol, no complete frame for 4 request timeouts
 * (at least 10 s), more than `maxConnections` at once, or unfinished frames of all connections
 * past 4 × `maxFrameBytes` (see `internal/ListenerGuard.ts`).
 *
 * @example
 * ```ts
 * import { Layer, Redacted } from "effect"
 * import { Membership, Sharding } from "effect-cluster"
 * import { PostgresJournal } from "effect-cluster/postgres"
 *
 * const cluster = Sharding.layer().pipe(
 *   Layer.provideMerge(
 *     Membership.layer({
 *       network: { host: "0.0.0.0", port: 7400, advertise: "10.0.0.5:7400", secret: Redacted.make("s3cret") }
 *     })
 *   ),
 *   Layer.provideMerge(PostgresJournal.layer(process.env.DATABASE_URL!))
 * )
 * ```
 */
import { readFileSync } from "node:fs"
import { connect as connectTcp, isIP } from "node:net"
import { networkInterfaces } from "node:os"
import * as NodeSocket from "@effect/platform-node/NodeSocket"
import * as NodeSocketServer from "@effect/platform-node/NodeSocketServer"
import { Channel, Clock, Duration, Effect, Layer, Queue, Redacted, type Scope, Stream } from "effect"
import { RpcSerialization, RpcServer } from "effect/rpc"
import { SocketServer } from "effect/socket/SocketServer"
import { MessageTooLargeError } from "../sharding/EntityErrors.ts"
import {
  type EntityPush,
  type EntityPushAnswer,
  type InboundHandlers,
  NetworkConfigError,
  type NetworkOptions,
  type PodNetwork,
  PodNetworkFactory,
  type StandDownOutcome
} from "../sharding/PodNetwork.ts"
import * as FrameBudget from "./internal/FrameBudget.ts"
import * as Handshake from "./internal/Handshake.ts"
import * as ListenerGuard from "./internal/ListenerGuard.ts"
import * as Peers from "./internal/Peers.ts"
import { AUTH_HEADER, type NumberedAnswer, PodRpcs, Unauthenticated } from "./internal/PodRpcs.ts"

const DEFAULT_MAX_FRAME = 16 * 1024 * 1024
const DEFAULT_MAX_CONNECTIONS = 512
/** How far apart the clocks of two pods may be for a handshake to pass. */
const HANDSHAKE_WINDOW = 5 * 60_000

const isLoopback = (host: string) =>
  host === "localhost" || host === "::1" || (isIP(host) === 4 && host.startsWith("127."))

/**
 * Whether `host` is an address of this machine's own network stack: loopback, or an address of
 * one of its interfaces. Only there does a refused connection prove that nothing listens: a
 * refusal from another host may come from a firewall (a REJECT rule answers for a live process).
 */
const isThisHost = (host: string) =>
  isLoopback(host) ||
  Object.values(networkInterfaces()).some((addresses) =>
    (addresses ?? []).some((address) => address.address === host)
  )

/**
 * Opens a TCP connection to `host:port` and closes it: `open`, `refused` (ECONNREFUSED: nothing
 * listens there), or `silent` (no answer in `timeoutMillis`, or any other failure).
 */
const knock = (host: string, port: number, timeoutMillis: number) =>
  Effect.callback<"open" | "refused" | "silent">((resume) => {
    const socket = connectTcp({ host, port })
    const done = (outcome: "open" | "refused" | "silent") => {
      clearTimeout(timer)
      socket.destroy()
      resume(Effect.succeed(outcome))
    }
    const timer = setTimeout(() => done("silent"), timeoutMillis)
    socket.once("connect", () => done("open"))
    socket.once("error", (error: NodeJS.ErrnoException) =>
      done(error.code === "ECONNREFUSED" ? "refused" : "silent")
    )
    return Effect.sync(() => {
      clearTimeout(timer)
      socket.destroy()
    })
  })

const configError = (option: string, detail: string) => new NetworkConfigError({ option, detail })

const readPem = (option: string, path: string) =>
  Effect.try({
    try: () => readFileSync(path),
    catch: (error) => configError(option, `${path} cannot be read (${(error as Error).message})`)
  })

/** Listens for `podId` with `options` until the scope closes; see the module comment. */
export const listen = (
  podId: string,
  options: NetworkOptions
): Effect.Effect<PodNetwork, NetworkConfigError, Scope.Scope> =>
  Effect.gen(function* () {
    const host = options.host ?? "127.0.0.1"
    const port = options.port ?? 0
    if (!(Number.isInteger(port) && port >= 0 && port < 65536)) {
      return yield* configError("port", `${port} is not a port (an integer from 0 to 65535)`)
    }
    const secret =
      options.secret === undefined
        ? undefined
        : typeof options.secret === "string"
          ? options.secret
          : Redacted.value(options.secret)
    if (secret !== undefined && secret.length < 8) {
      return yield* configError("secret", "a cluster secret must be at least 8 characters")
    }
    if (!isLoopback(host) && secret === undefined && options.tls === undefined) {
      return yield* configError(
        "host",
        `listening on ${host} beyond loopback needs a cluster secret or TLS, or any host could send this pod messages`
      )
    }
    const requestTimeoutMillis = Duration.toMillis(
      Duration.fromInputUnsafe(options.requestTimeout ?? "5 seconds")
    )
    const maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME
    if (!(Number.isInteger(maxFrameBytes) && maxFrameBytes > 0)) {
      return yield* configError("maxFrameBytes", `${maxFrameBytes} is not a positive integer`)
    }
    const maxConnections = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS
    if (!(Number.isInteger(maxConnections) && maxConnections > 0)) {
      return yield* configError("maxConnections", `${maxConnections} is not a positive integer`)
    }
    const serialization = RpcSerialization.makeNdjson({ maxBufferSize: maxFrameBytes })
    const tls =
      options.tls === undefined
        ? undefined
        : {
            key: yield* readPem("tls.keyFile", options.tls.keyFile),
            cert: yield* readPem("tls.certFile", options.tls.certFile),
            ca:
              options.tls.caFile === undefined ? undefined : yield* readPem("tls.caFile", options.tls.caFile)
          }

    const server = yield* (
      tls === undefined
        ? NodeSocketServer.make({ host, port, noDelay: true })
        : NodeSocketServer.makeTls({
            host,
            port,
            noDelay: true,
            key: tls.key,
            cert: tls.cert,
            ...(tls.ca === undefined ? {} : { ca: tls.ca, requestCert: true, rejectUnauthorized: true })
          })
    ).pipe(
      Effect.mapError((error) => configError("port", `cannot listen on ${host}:${port}: ${error.message}`))
    )
    const bound = server.address
    const boundPort = "port" in bound ? bound.port : port
    const address = options.advertise ?? `${host.includes(":") ? `[${host}]` : host}:${boundPort}`
    if (Peers.parseAddress(address) === undefined) {
      return yield* configError("advertise", `${JSON.stringify(address)} is not host:port`)
    }

    const clock = yield* Clock.Clock
    const warnings = ListenerGuard.rateLimitedWarnings(podId, () => clock.currentTimeMillisUnsafe())
    const context = yield* Effect.context<never>()
    const guardedServer = yield* ListenerGuard.guard(
      server,
      {
        maxConnections,
        // Peers ping every half request timeout: a connection silent for 8 of them is not a peer's.
        idleMillis: Math.max(10_000, 4 * requestTimeoutMillis),
        bufferedBytes: 4 * maxFrameBytes,
        maxFrameBytes
      },
      warnings
    )
    const serverSerialization = ListenerGuard.serialization(serialization, maxFrameBytes, (reason) => {
      Effect.runForkWith(context)(warnings(reason))
    })
    const verify = secret === undefined ? undefined : Handshake.verifier(secret, address, HANDSHAKE_WINDOW)
    const trusted = new Set<number>()
    const refusedLogged = new Set<number>()
    /** Whether the connection `clientId` may be served: it proved the secret, now or before. */
    const authorize = (clientId: number, header: string | undefined) =>
      Effect.suspend(() => {
        if (verify === undefined || trusted.has(clientId)) return Effect.void
        const verdict = verify(header, clock.currentTimeMillisUnsafe())
        if (typeof verdict !== "string") {
          trusted.add(clientId)
          return Effect.void
        }
        const log = refusedLogged.has(clientId)
          ? Effect.void
          : Effect.logWarning(`network: refused a connection to pod ${podId} that sent ${verdict}`)
        refusedLogged.add(clientId)
        return Effect.andThen(log, Effect.fail(new Unauthenticated({ message: `refused: ${verdict}` })))
      })

    /** The answers to each connection's pushes, until it closes (its `Answers` stream reads them). */
    const answerQueues = new Map<number, Queue.Queue<NumberedAnswer>>()
    const answersOf = (clientId: number) =>
      Effect.suspend(() => {
        const known = answerQueues.get(clientId)
        if (known !== undefined) return Effect.succeed(known)
        return Effect.tap(Queue.unbounded<NumberedAnswer>(), (queue) =>
          Effect.sync(() => answerQueues.set(clientId, queue))
        )
      })
    const networkScope = yield* Effect.scope
    let pushHandler: InboundHandlers["push"]
    const wakeHandlers = new Set<NonNullable<InboundHandlers["wake"]>>()
    const settledHandlers = new Set<NonNullable<InboundHandlers["settled"]>>()
    const ownsHandlers = new Set<NonNullable<InboundHandlers["owns"]>>()
    let standDownHandler: InboundHandlers["standDown"]
    const unknownType: EntityPushAnswer = { _tag: "UnknownType" }
    const answerBudget = FrameBudget.budgetOf(maxFrameBytes)
    /**
     * `answer` as it can travel back: a reply too large for a frame is in the store for a stored
     * message (the sender reads it there), and lost for a volatile one (its sender gets the error).
     */
    const fitted = (push: EntityPush, answer: EntityPushAnswer): EntityPushAnswer => {
      if (answer._tag !== "Reply" || FrameBudget.answerSize(answer) <= answerBudget) return answer
      if (push.stored) return { _tag: "Accepted" }
      const bytes = Buffer.byteLength(answer.reply ?? "")
      return {
        _tag: "Failed",
        error: new MessageTooLargeError({
          entityType: push.entityType,
          entityId: push.entityId,
          bytes,
          limit: answerBudget,
          message: `the reply of entity ${push.entityType}/${push.entityId} to message ${push.messageId} is ${bytes} bytes encoded, too large for a frame between pods (maxFrameBytes ${maxFrameBytes}); the message was processed`
        })
      }
    }

    const handlers = PodRpcs.toLayer({
      Deliver: ({ pushes }, { client, headers }) =>
        Effect.gen(function* () {
          yield* authorize(client.id, headers[AUTH_HEADER])
          const answers = yield* answersOf(client.id)
          for (const { id, message } of pushes) {
            const handled = pushHandler === undefined ? Effect.succeed(unknownType) : pushHandler(message)
            yield* Effect.forkIn(
              Effect.flatMap(handled, (answer) =>
                Queue.offer(answers, { id, answer: fitted(message, answer) })
              ),
              networkScope
            )
          }
        }),
      Answers: (_, { client, headers }) =>
        Stream.unwrap(
          Effect.andThen(
            authorize(client.id, headers[AUTH_HEADER]),
            Effect.map(answersOf(client.id), (queue) =>
              // Each chunk of answers is one frame: split to fit the client's limit.
              Stream.fromChannel(
                Channel.flatMap(Channel.fromQueueArray(queue), (ready) =>
                  Channel.fromArray(
                    FrameBudget.groups(
                      ready,
                      (numbered) => FrameBudget.answerSize(numbered.answer),
                      answerBudget
                    )
                  )
                )
              )
            )
          )
        ),
      Wake: ({ shards }, { client, headers }) =>
        Effect.andThen(
          authorize(client.id, headers[AUTH_HEADER]),
          Effect.forEach([...wakeHandlers], (handler) => handler(shards), { discard: true })
        ),
      Owns: ({ owner, shards }, { client, headers }) =>
        Effect.andThen(
          authorize(client.id, headers[AUTH_HEADER]),
          Effect.forEach([...ownsHandlers], (handler) => handler(owner, shards), { discard: true })
        ),
      StandDown: ({ podId: target, registeredAt }, { client, headers }) =>
        Effect.andThen(
          authorize(client.id, headers[AUTH_HEADER]),
          Effect.suspend(() =>
            target !== podId || standDownHandler === undefined
              ? Effect.succeed(false)
              : standDownHandler(registeredAt)
          )
        ),
      Settled: ({ settled }, { client, headers }) =>
        Effect.andThen(
          authorize(client.id, headers[AUTH_HEADER]),
          Effect.forEach([...settledHandlers], (handler) => handler(settled), { discard: true })
        )
    })

    yield* RpcServer.make(PodRpcs, {
      concurrency: "unbounded",
      disableTracing: true,
      onDisconnect: (clientId) =>
        Effect.suspend(() => {
          trusted.delete(clientId)
          refusedLogged.delete(clientId)
          const answers = answerQueues.get(clientId)
          answerQueues.delete(clientId)
          return answers === undefined ? Effect.void : Effect.asVoid(Queue.shutdown(answers))
        })
    }).pipe(
      // No acknowledgement per stream chunk: the answers stream then sends each chunk as soon as
      // it is ready instead of one per round trip (its length is bounded by the pushes in flight).
      Effect.provideServiceEffect(
        RpcServer.Protocol,
        Effect.map(RpcServer.makeProtocolSocketServer, (protocol) => ({ ...protocol, supportsAck: false }))
      ),
      Effect.provideService(SocketServer, guardedServer),
      Effect.provideService(RpcSerialization.RpcSerialization, serverSerialization),
      Effect.provide(handlers),
      Effect.forkScoped
    )

    const peers = yield* Peers.make({
      self: { podId, address },
      requestTimeoutMillis,
      maxFrameBytes,
      serialization,
      connect: (peerHost, peerPort) =>
        tls === undefined
          ? NodeSocket.makeNet({ host: peerHost, port: peerPort, noDelay: true, openTimeout: 1_000 })
          : NodeSocket.makeTls({
              host: peerHost,
              port: peerPort,
              openTimeout: 1_000,
              key: tls.key,
              cert: tls.cert,
              ...(tls.ca === undefined ? {} : { ca: tls.ca }),
              // Pods are addressed by IP as often as by name: the CA, not the name, vouches for them.
              checkServerIdentity: () => undefined
            }),
      token:
        secret === undefined
          ? undefined
          : (peerAddress) => Handshake.token(secret, podId, peerAddress, clock.currentTimeMillisUnsafe())
    })

    /** See `PodNetwork.standDown`: a refusal counts only from this host; else the pod must answer. */
    const standDown = (peerAddress: string, peerId: string, registeredAt: number) =>
      Effect.gen(function* () {
        const parsed = Peers.parseAddress(peerAddress)
        if (parsed === undefined) return "unproven" satisfies StandDownOutcome
        const knocked = yield* knock(parsed.host, parsed.port, Math.min(1_000, requestTimeoutMillis))
        if (knocked === "refused") return isThisHost(parsed.host) ? "absent" : "unproven"
        if (knocked === "silent") return "unproven"
        return (yield* peers.standDown(peerAddress, peerId, registeredAt)) === true ? "stopped" : "unproven"
      })

    return {
      address,
      standDown,
      push: peers.push,
      wake: peers.wake,
      settled: peers.settled,
      owns: peers.owns,
      serve: (inbound) =>
        Effect.gen(function* () {
          if (inbound.push !== undefined) pushHandler = inbound.push
          if (inbound.wake !== undefined) wakeHandlers.add(inbound.wake)
          if (inbound.settled !== undefined) settledHandlers.add(inbound.settled)
          if (inbound.owns !== undefined) ownsHandlers.add(inbound.owns)
          if (inbound.standDown !== undefined) standDownHandler = inbound.standDown
          yield* Effect.addFinalizer(() =>
            Effect.sync(() => {
              if (inbound.standDown !== undefined && standDownHandler === inbound.standDown) {
                standDownHandler = undefined
              }
              if (inbound.push !== undefined && pushHandler === inbound.push) pushHandler = undefined
              if (inbound.wake !== undefined) wakeHandlers.delete(inbound.wake)
              if (inbound.settled !== undefined) settledHandlers.delete(inbound.settled)
              if (inbound.owns !== undefined) ownsHandlers.delete(inbound.owns)
            })
          )
        })
    } satisfies PodNetwork
  })

/** The factory the store layers provide: `listen` for every pod of the process. */
export const factory: PodNetworkFactory["Service"] = PodNetworkFactory.of({ listen })

/** Provides `factory`: pods made below it (`Membership`, the engine's own) listen on the network. */
export const layer: Layer.Layer<PodNetworkFactory> = Layer.succeed(PodNetworkFactory, factory)
