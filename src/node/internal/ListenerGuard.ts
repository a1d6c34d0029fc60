/**
 * What a pod's listener tolerates from a connection, whoever opened it. Peers (`Peers`) send
 * NDJSON frames of the `effect/rpc` protocol and ping their connections every half request
 * timeout; anything else is a bug or a hostile sender, and must cost the pod neither its memory,
 * its file descriptors nor its other connections. A connection is closed, with a log line, when:
 * - it is one connection too many (`maxConnections` open at once);
 * - it completes no frame for `idleMillis` (half a frame and a hang, or a connection that never
 *   says anything);
 * - its unfinished frame would take the unfinished frames of every connection past
 *   `bufferedBytes` (many connections, each with a frame just under `maxFrameBytes`, would hold
 *   gigabytes);
 * - a frame is over `maxFrameBytes`, is not JSON, or is not a message of the protocol
 *   (`serialization`: effect's socket protocol would answer the first two with a defect and leave
 *   the connection open, and fail its connection's fiber on a `null` frame or malformed headers).
 *
 * The log lines are rate-limited per reason: a flood gives one line every few seconds, with the
 * count of connections closed since the last one.
 */
import * as NodeSocket from "@effect/platform-node/NodeSocket"
import { Cause, Clock, Effect, Option, type Scope } from "effect"
import { RpcSerialization } from "effect/rpc"
import * as Socket from "effect/socket/Socket"
import { SocketServer } from "effect/socket/SocketServer"

/** The limits of one listener. */
export interface Limits {
  readonly maxConnections: number
  readonly idleMillis: number
  readonly bufferedBytes: number
  readonly maxFrameBytes: number
}

/** How often a reason is logged at most. */
const LOG_EVERY_MILLIS = 10_000

/** Logs `reason`, at most once every `LOG_EVERY_MILLIS` per reason, with what was not logged since. */
export const rateLimitedWarnings = (podId: string, now: () => number) => {
  const last = new Map<string, { at: number; suppressed: number }>()
  return (reason: string): Effect.Effect<void> =>
    Effect.suspend(() => {
      const seen = last.get(reason)
      const at = now()
      if (seen !== undefined && at - seen.at < LOG_EVERY_MILLIS) {
        seen.suppressed++
        return Effect.void
      }
      last.set(reason, { at, suppressed: 0 })
      const since =
        seen === undefined || seen.suppressed === 0
          ? ""
          : ` (and ${seen.suppressed} more connection(s) for the same reason since the last such line)`
      return Effect.logWarning(`network: pod ${podId} closed a connection that ${reason}${since}`)
    })
}

const CLOSED = new Socket.SocketError({ reason: new Socket.SocketCloseError({ code: 1008 }) })

/** Where the last frame of `chunk` ends: the index after its last newline, or -1. */
const afterLastNewline = (chunk: Uint8Array | string): number =>
  typeof chunk === "string" ? chunk.lastIndexOf("\n") : chunk.lastIndexOf(10)

/** A connection being served: what the sweep of idle connections looks at. */
interface Served {
  lastFrameAt: number
  readonly destroy: () => void
}

/**
 * `server`, whose connections are held to `limits`; `warn` logs why one was closed. Idle
 * connections are found by one sweep a second (not a timer per read): until the scope closes.
 */
export const guard = (
  server: SocketServer["Service"],
  limits: Limits,
  warn: (reason: string) => Effect.Effect<void>
): Effect.Effect<SocketServer["Service"], never, Scope.Scope> =>
  Effect.gen(function* () {
    const clock = yield* Clock.Clock
    const now = () => clock.currentTimeMillisUnsafe()
    const served = new Set<Served>()
    /** The bytes of the unfinished frames of every connection. */
    let buffered = 0

    yield* Effect.forkScoped(
      Effect.forever(
        Effect.andThen(
          Effect.sleep(Math.min(1_000, limits.idleMillis / 4)),
          Effect.suspend(() => {
            const idleSince = now() - limits.idleMillis
            const idle = [...served].filter((connection) => connection.lastFrameAt < idleSince)
            return Effect.forEach(
              idle,
              (connection) => {
                served.delete(connection)
                connection.destroy()
                return warn(`completed no frame for ${limits.idleMillis} ms`)
              },
              { discard: true }
            )
          })
        )
      )
    )

    const guarded = <A, E, R>(
      socket: Socket.Socket,
      handler: (socket: Socket.Socket) => Effect.Effect<A, E, R>
    ) =>
      Effect.gen(function* () {
        const conn = Option.getOrUndefined(yield* Effect.serviceOption(NodeSocket.NetSocket))
        const destroy = () => conn?.destroy()
        if (served.size >= limits.maxConnections) {
          // Never read: destroyed here, or it would stay open (and paused) for good.
          yield* warn(`came while ${served.size} were open (at most ${limits.maxConnections})`)
          destroy()
          return
        }
        const connection: Served = { lastFrameAt: now(), destroy }
        served.add(connection)
        let partial = 0
        const account = (chunks: ReadonlyArray<Uint8Array | string>): string | undefined => {
          for (const chunk of chunks) {
            const end = afterLastNewline(chunk)
            buffered -= partial
            partial = end === -1 ? partial + chunk.length : chunk.length - end - 1
            buffered += partial
            if (end !== -1) connection.lastFrameAt = now()
          }
          return buffered > limits.bufferedBytes
            ? `held an unfinished frame of ${partial} bytes while the unfinished frames of all connections took more than ${limits.bufferedBytes} bytes`
            : undefined
        }
        const reader = Effect.map(socket.reader, (inner) => ({
          ...inner,
          pull: Effect.flatMap(inner.pull, (chunks) => {
            const problem = account(chunks)
            if (problem === undefined) return Effect.succeed(chunks)
            // The protocol ends the connection (its scope closes the socket) on this error.
            return Effect.andThen(warn(problem), Effect.fail(CLOSED))
          })
        }))
        return yield* handler(Socket.make({ reader, writer: socket.writer })).pipe(
          // The connection broke (a peer gone, or closed here for a reason logged above): the
          // client side reconnects; nothing else to say about it.
          Effect.catchCause((cause) =>
            Socket.isSocketError(Cause.squash(cause))
              ? Effect.logDebug("network: a connection to this pod ended", cause)
              : Effect.failCause(cause)
          ),
          Effect.ensuring(
            Effect.sync(() => {
              served.delete(connection)
              buffered -= partial
              partial = 0
            })
          )
        )
      })

    return SocketServer.of({
      address: server.address,
      run: (handler) => server.run((socket) => guarded(socket, handler))
    })
  })

const TAGS = new Set(["Request", "Ping", "Eof", "Ack", "Interrupt"])

const isId = (id: unknown) => typeof id === "string" || typeof id === "number"

/** What is wrong with a decoded frame as a message from a client of the protocol, if anything. */
const envelopeProblem = (message: unknown): string | undefined => {
  if (typeof message !== "object" || message === null || Array.isArray(message)) return "not an object"
  const { _tag: tag } = message as { readonly _tag?: unknown }
  if (typeof tag !== "string" || !TAGS.has(tag)) return "no tag of the protocol"
  if (tag === "Request") {
    const { id, headers } = message as { readonly id?: unknown; readonly headers?: unknown }
    if (!isId(id)) return "no request id"
    if (
      headers !== undefined &&
      !(
        Array.isArray(headers) &&
        headers.every(
          (header) =>
            Array.isArray(header) &&
            header.length === 2 &&
            typeof header[0] === "string" &&
            typeof header[1] === "string"
        )
      )
    ) {
      return "malformed headers"
    }
  }
  if (
    (tag === "Ack" || tag === "Interrupt") &&
    !isId((message as { readonly requestId?: unknown }).requestId)
  ) {
    return "no request id"
  }
  return undefined
}

/**
 * The listener's side of `inner` (NDJSON): frames are split here rather than by effect's parser,
 * which searches the whole unfinished frame again for its end at every chunk (a frame of 16 MiB
 * arriving in 64 kB chunks costs it a quarter of a billion character comparisons). A frame over
 * `maxFrameBytes`, not JSON, or not a message of the protocol ends its connection, logged with
 * `warn` (run in the background: the parser is not an effect). Effect's socket protocol closes a
 * connection whose parser throws `MaxBufferSizeExceeded`, and only then: that is the error thrown
 * for all three.
 */
export const serialization = (
  inner: RpcSerialization.RpcSerialization["Service"],
  maxFrameBytes: number,
  warn: (reason: string) => void
): RpcSerialization.RpcSerialization["Service"] =>
  RpcSerialization.RpcSerialization.of({
    ...inner,
    makeUnsafe: () => {
      const parser = inner.makeUnsafe()
      const text = new TextDecoder()
      /** The unfinished frame, in the pieces it came in. */
      let pieces: Array<string> = []
      let unfinished = 0
      const refuse = (reason: string): never => {
        pieces = []
        unfinished = 0
        warn(reason)
        throw new RpcSerialization.MaxBufferSizeExceeded({ maxBufferSize: maxFrameBytes })
      }
      const tooLarge = () => refuse(`sent a frame over ${maxFrameBytes} bytes (maxFrameBytes)`)
      const parse = (line: string): unknown => {
        const frame = line.endsWith("\r") ? line.slice(0, -1) : line
        if (frame.length > maxFrameBytes) tooLarge()
        try {
          return JSON.parse(frame)
        } catch {
          return refuse("sent a frame that is not JSON")
        }
      }
      return {
        ...parser,
        decode: (bytes) => {
          const chunk = typeof bytes === "string" ? bytes : text.decode(bytes, { stream: true })
          const end = chunk.lastIndexOf("\n")
          if (end === -1) {
            pieces.push(chunk)
            unfinished += chunk.length
            if (unfinished > maxFrameBytes) tooLarge()
            return []
          }
          pieces.push(chunk.slice(0, end))
          const complete = pieces.join("")
          pieces = [chunk.slice(end + 1)]
          unfinished = pieces[0]!.length
          const messages: Array<unknown> = []
          for (const line of complete.split("\n")) {
            if (line.length === 0 || line === "\r") continue
            const message = parse(line)
            const problem = envelopeProblem(message)
            if (problem !== undefined)
              refuse(`sent a frame that is not a message of the pods' protocol (${problem})`)
            messages.push(message)
          }
          if (unfinished > maxFrameBytes) tooLarge()
          return messages
        }
      }
    }
  })
