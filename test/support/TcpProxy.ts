/**
 * A TCP proxy for tests that need a network path to fail the ways real ones do:
 * - `pause()` stops forwarding bytes in both directions, on open connections and on new ones,
 *   without closing anything, so a client's queries simply get no answer (unlike stopping the
 *   server, which refuses or resets connections); `resume()` forwards again, and whatever was held
 *   back then flows;
 * - `delay(millis)` holds every chunk, in both directions, `millis` before forwarding it, in order
 *   (a slow link); `delay(0)` forwards at once again (what is already held still waits its turn);
 * - `reset()` resets every open connection on both sides (a TCP RST, as a middlebox or a NAT that
 *   forgot the flow sends), and keeps accepting new ones.
 *
 * A paused direction stops *reading*: bytes wait in the proxy's socket buffer and, once that is
 * full, in the kernel's, and TCP flow control holds the sender, like a path that drops every
 * packet. FINs and resets wait too, so neither end learns that the other closed while paused. A
 * connection accepted while paused reaches the target only on `resume()` (the client's connect
 * succeeds, as it would through a NAT that then drops everything; the server sees nothing).
 *
 * A delayed direction keeps reading into a queue of timed chunks (ends and closes queue behind
 * them, so nothing overtakes a byte); past `MAX_QUEUED_BYTES` it stops reading until the queue
 * shrinks, so flow control still holds a fast sender.
 *
 * @example
 * ```ts
 * const proxy = yield* TcpProxy.scoped({ targetHost: "127.0.0.1", targetPort: 5432 })
 * // connect the client to 127.0.0.1:proxy.port; proxy.pause() to hang it, proxy.resume() to heal,
 * // proxy.delay(200) for a slow link, proxy.reset() to cut every connection
 * ```
 */
import { connect, createServer, type Socket } from "node:net"
import { performance } from "node:perf_hooks"
import { Effect } from "effect"

/** Where the proxy forwards to. */
export interface TcpProxyOptions {
  readonly targetHost: string
  readonly targetPort: number
}

/** A running proxy, listening on 127.0.0.1:`port`. */
export interface TcpProxy {
  readonly port: number
  /** Stops forwarding in both directions, on open and new connections; closes nothing. */
  readonly pause: () => void
  /** Forwards again: held connections, bytes, ends and closes go through. */
  readonly resume: () => void
  /**
   * Holds every chunk read from now on, in both directions, `millis` before forwarding it, in
   * order. `delay(0)`: no more delay (chunks already held are still forwarded first, on time).
   */
  readonly delay: (millis: number) => void
  /**
   * Resets every open connection, client and target side (RST, not FIN), dropping whatever was
   * held for them; new connections are accepted as before (paused or delayed if the proxy is).
   */
  readonly reset: () => void
  /** The connections open now (client side). */
  readonly connections: () => number
  /** The connections accepted since the proxy started (client side), open or not. */
  readonly accepted: () => number
  /** The bytes read and held by `delay` (or by a pause that came after), not yet forwarded. */
  readonly heldBytes: () => number
  /** Stops listening and destroys every connection, both sides. */
  readonly close: () => Promise<void>
}

/** How many bytes a delayed direction holds before it stops reading. */
const MAX_QUEUED_BYTES = 1024 * 1024

/** What a direction forwards: bytes, then the end of the stream, then the close. */
type Item = Buffer | "end" | "close"

/** One direction of one connection. */
interface Direction {
  readonly from: Socket
  readonly to: Socket
  /** What was read and not yet forwarded, with when it is due (`performance.now()`). */
  readonly queue: Array<{ readonly due: number; readonly item: Item }>
  queuedBytes: number
  /** Waiting for `to` to drain (backpressure), independently of `pause()`. */
  draining: boolean
  /** Wakes the direction when the head of its queue is due. */
  timer: NodeJS.Timeout | undefined
}

/** Starts a proxy on an ephemeral port of 127.0.0.1. */
export const start = (options: TcpProxyOptions): Promise<TcpProxy> => {
  let paused = false
  let delayMillis = 0
  const directions = new Set<Direction>()
  const sockets = new Set<Socket>()
  const clients = new Set<Socket>()
  /** Connections that came while paused, opened by `resume()` in order. */
  let held: Array<() => void> = []
  let acceptedCount = 0

  const track = (socket: Socket) => {
    sockets.add(socket)
    socket.on("close", () => sockets.delete(socket))
    socket.on("error", () => {}) // the "close" that follows is handled
  }

  /** Reads from `from` only when nothing holds the direction back. */
  const flow = (direction: Direction) => {
    if (direction.from.destroyed) return
    if (paused || direction.draining || direction.queuedBytes > MAX_QUEUED_BYTES) direction.from.pause()
    else direction.from.resume()
  }

  /** Forwards every due item, in order, until one is not due, `to` pushes back, or the proxy pauses. */
  const pump = (direction: Direction) => {
    const { queue, to } = direction
    while (!paused && !direction.draining && queue.length > 0) {
      const now = performance.now()
      const head = queue[0]!
      if (head.due > now) {
        if (direction.timer === undefined) {
          direction.timer = setTimeout(
            () => {
              direction.timer = undefined
              pump(direction)
            },
            Math.ceil(head.due - now)
          )
        }
        break
      }
      queue.shift()
      if (head.item === "end") to.end()
      else if (head.item === "close") {
        directions.delete(direction)
        to.destroy()
      } else {
        direction.queuedBytes -= head.item.length
        if (!to.write(head.item)) {
          direction.draining = true
          to.once("drain", () => {
            direction.draining = false
            pump(direction)
          })
        }
      }
    }
    flow(direction)
  }

  const enqueue = (direction: Direction, item: Item) => {
    direction.queue.push({ due: performance.now() + delayMillis, item })
    if (typeof item !== "string") direction.queuedBytes += item.length
    pump(direction)
  }

  const forward = (from: Socket, to: Socket) => {
    const direction: Direction = { from, to, queue: [], queuedBytes: 0, draining: false, timer: undefined }
    directions.add(direction)
    from.on("data", (chunk: Buffer) => enqueue(direction, chunk))
    from.on("end", () => enqueue(direction, "end"))
    from.on("close", () => enqueue(direction, "close"))
    if (paused) from.pause()
  }

  const server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (client) => {
    track(client)
    acceptedCount++
    clients.add(client)
    client.on("close", () => clients.delete(client))
    const open = () => {
      if (client.destroyed) return
      const upstream = connect({ host: options.targetHost, port: options.targetPort, allowHalfOpen: true })
      track(upstream)
      upstream.pause()
      forward(client, upstream)
      forward(upstream, client)
      if (!paused) {
        client.resume()
        upstream.resume()
      }
    }
    if (paused) held.push(open)
    else open()
  })

  const pause = () => {
    paused = true
    for (const { from } of directions) from.pause()
  }

  const resume = () => {
    paused = false
    for (const direction of [...directions]) pump(direction)
    const due = held
    held = []
    for (const deliver of due) deliver()
  }

  const delay = (millis: number) => {
    delayMillis = Math.max(0, millis)
  }

  const reset = () => {
    for (const direction of directions) {
      clearTimeout(direction.timer)
      direction.queue.length = 0
      direction.queuedBytes = 0
    }
    directions.clear()
    for (const socket of sockets) {
      // A socket still connecting sends its RST once connected (Node's documented behaviour).
      if (!socket.destroyed) socket.resetAndDestroy()
    }
  }

  const close = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve())
      held = []
      for (const direction of directions) clearTimeout(direction.timer)
      for (const socket of sockets) socket.destroy()
    })

  return new Promise((resolve, reject) => {
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      if (address === null || typeof address === "string") return reject(new Error("no TCP address"))
      resolve({
        port: address.port,
        pause,
        resume,
        delay,
        reset,
        connections: () => clients.size,
        accepted: () => acceptedCount,
        heldBytes: () => [...directions].reduce((sum, direction) => sum + direction.queuedBytes, 0),
        close
      })
    })
  })
}

/** `start` as a scoped resource: the proxy closes with the scope. */
export const scoped = (options: TcpProxyOptions) =>
  Effect.acquireRelease(
    Effect.promise(() => start(options)),
    (proxy) => Effect.promise(() => proxy.close())
  )
