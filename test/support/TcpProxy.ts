/**
 * A TCP proxy for tests that need a network path to hang: `pause()` stops forwarding bytes in both
 * directions, on open connections and on new ones, without closing anything, so a client's queries
 * simply get no answer (unlike stopping the server, which refuses or resets connections). `resume()`
 * forwards again, and whatever was held back then flows.
 *
 * A paused direction stops *reading*: bytes wait in the proxy's socket buffer and, once that is
 * full, in the kernel's, and TCP flow control holds the sender, like a path that drops every
 * packet. FINs and resets wait too, so neither end learns that the other closed while paused. A
 * connection accepted while paused reaches the target only on `resume()` (the client's connect
 * succeeds, as it would through a NAT that then drops everything; the server sees nothing).
 *
 * @example
 * ```ts
 * const proxy = yield* TcpProxy.scoped({ targetHost: "127.0.0.1", targetPort: 5432 })
 * // connect the client to 127.0.0.1:proxy.port; proxy.pause() to hang it, proxy.resume() to heal
 * ```
 */
import { connect, createServer, type Socket } from "node:net"
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
  /** The connections open now (client side). */
  readonly connections: () => number
  /** Stops listening and destroys every connection, both sides. */
  readonly close: () => Promise<void>
}

/** One direction of one connection. */
interface Direction {
  readonly from: Socket
  readonly to: Socket
  /** Waiting for `to` to drain (backpressure), independently of `pause()`. */
  draining: boolean
}

/** Starts a proxy on an ephemeral port of 127.0.0.1. */
export const start = (options: TcpProxyOptions): Promise<TcpProxy> => {
  let paused = false
  const directions = new Set<Direction>()
  const sockets = new Set<Socket>()
  const clients = new Set<Socket>()
  /** Connections and closes that came while paused, delivered by `resume()` in order. */
  let held: Array<() => void> = []

  const track = (socket: Socket) => {
    sockets.add(socket)
    socket.on("close", () => sockets.delete(socket))
    socket.on("error", () => {}) // the "close" that follows is handled
  }

  const forward = (from: Socket, to: Socket) => {
    const direction: Direction = { from, to, draining: false }
    directions.add(direction)
    from.on("data", (chunk) => {
      if (to.write(chunk)) return
      direction.draining = true
      from.pause()
      to.once("drain", () => {
        direction.draining = false
        if (!paused) from.resume()
      })
    })
    from.on("end", () => to.end())
    from.on("close", () => {
      directions.delete(direction)
      const propagate = () => to.destroy()
      if (paused) held.push(propagate)
      else propagate()
    })
    if (paused) from.pause()
  }

  const server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (client) => {
    track(client)
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
    for (const { from, draining } of directions) if (!draining) from.resume()
    const due = held
    held = []
    for (const deliver of due) deliver()
  }

  const close = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve())
      held = []
      for (const socket of sockets) socket.destroy()
    })

  return new Promise((resolve, reject) => {
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      if (address === null || typeof address === "string") return reject(new Error("no TCP address"))
      resolve({ port: address.port, pause, resume, connections: () => clients.size, close })
    })
  })
}

/** `start` as a scoped resource: the proxy closes with the scope. */
export const scoped = (options: TcpProxyOptions) =>
  Effect.acquireRelease(
    Effect.promise(() => start(options)),
    (proxy) => Effect.promise(() => proxy.close())
  )
