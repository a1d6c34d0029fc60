/**
 * The test proxy against a tiny echo server: bytes flow; `pause()` holds them on open and new
 * connections without closing either side (no `end` or `close` on any socket); `resume()` delivers
 * what was held, in order; `close()` and the scoped wrapper end everything.
 */
import { randomBytes } from "node:crypto"
import { once } from "node:events"
import { connect, createServer, type Socket } from "node:net"
import { setTimeout as sleep } from "node:timers/promises"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { onTestFinished } from "vitest"
import * as TcpProxy from "./TcpProxy.ts"

/** A socket's received bytes and its `end`/`close` events, as they happen. */
const watch = (socket: Socket) => {
  const chunks: Array<Buffer> = []
  let length = 0
  const seen = {
    socket,
    events: [] as Array<string>,
    get length() {
      return length
    },
    get bytes() {
      return Buffer.concat(chunks)
    }
  }
  socket.on("data", (chunk: Buffer) => {
    chunks.push(chunk)
    length += chunk.length
  })
  socket.on("end", () => seen.events.push("end"))
  socket.on("close", () => seen.events.push("close"))
  socket.on("error", (error) => seen.events.push(`error ${error.message}`))
  return seen
}

/** An echo server on 127.0.0.1; what each of its sockets saw. Closed when the test ends. */
const echoServer = async () => {
  const accepted: Array<ReturnType<typeof watch>> = []
  const sockets = new Set<Socket>()
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket)
    accepted.push(watch(socket))
    socket.on("data", (chunk) => socket.write(chunk))
    socket.on("end", () => socket.end())
  })
  server.listen(0, "127.0.0.1")
  await once(server, "listening")
  onTestFinished(() => {
    for (const socket of sockets) socket.destroy()
    server.close()
  })
  return { port: (server.address() as { port: number }).port, accepted }
}

/** A proxy to `port`, closed when the test ends. */
const proxyTo = async (port: number) => {
  const proxy = await TcpProxy.start({ targetHost: "127.0.0.1", targetPort: port })
  onTestFinished(() => proxy.close())
  return proxy
}

/** A client connected to `port`, destroyed when the test ends. */
const client = async (port: number) => {
  const socket = connect({ host: "127.0.0.1", port, allowHalfOpen: true })
  onTestFinished(() => {
    socket.destroy()
  })
  const seen = watch(socket)
  await once(socket, "connect")
  return { socket, seen }
}

/** Waits until `condition` holds, checking every 5 ms. */
const until = async (condition: () => boolean, timeoutMs = 5_000) => {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met in ${timeoutMs} ms`)
    await sleep(5)
  }
}

/** How long a paused path must stay silent to count as hung. */
const QUIET_MS = 250

describe("TcpProxy", () => {
  it("forwards bytes both ways", async () => {
    const echo = await echoServer()
    const proxy = await proxyTo(echo.port)
    const a = await client(proxy.port)
    a.socket.write("hello")
    await until(() => a.seen.bytes.toString() === "hello")
    expect(echo.accepted[0]!.bytes.toString()).toBe("hello")
    expect(proxy.connections()).toBe(1)
  })

  it("pause holds bytes on open and new connections, closing nothing; resume delivers them", async () => {
    const echo = await echoServer()
    const proxy = await proxyTo(echo.port)
    const a = await client(proxy.port)
    a.socket.write("before ")
    await until(() => a.seen.bytes.toString() === "before ")

    proxy.pause()
    a.socket.write("held-a")
    echo.accepted[0]!.socket.write("from-server ") // the other direction
    const b = await client(proxy.port) // a new connection is accepted, and hangs too
    b.socket.write("held-b")
    await sleep(QUIET_MS)
    expect(a.seen.bytes.toString()).toBe("before ")
    expect(b.seen.bytes.toString()).toBe("")
    expect(echo.accepted.map((s) => s.bytes.toString())).toEqual(["before "]) // b has not reached it
    expect([a.seen.events, b.seen.events, ...echo.accepted.map((s) => s.events)].flat()).toEqual([])

    proxy.resume()
    await until(
      () => a.seen.bytes.toString() === "before from-server held-a" && b.seen.bytes.toString() === "held-b"
    )
    expect([a.seen.events, b.seen.events, ...echo.accepted.map((s) => s.events)].flat()).toEqual([])
    expect(proxy.connections()).toBe(2)
  })

  it("a large transfer held under backpressure arrives whole and in order after resume", async () => {
    const echo = await echoServer()
    const proxy = await proxyTo(echo.port)
    const a = await client(proxy.port)
    proxy.pause()
    const payload = randomBytes(4 * 1024 * 1024)
    a.socket.write(payload)
    await sleep(QUIET_MS)
    expect(a.seen.bytes.length).toBe(0)
    expect(echo.accepted[0]!.bytes.length).toBe(0)
    proxy.resume()
    await until(() => a.seen.length >= payload.length, 20_000)
    expect(a.seen.bytes.equals(payload)).toBe(true)
  })

  it("an end sent while paused is held, then delivered by resume", async () => {
    const echo = await echoServer()
    const proxy = await proxyTo(echo.port)
    const a = await client(proxy.port)
    a.socket.write("x")
    await until(() => a.seen.bytes.length === 1)
    proxy.pause()
    a.socket.end("last")
    await sleep(QUIET_MS)
    expect(echo.accepted[0]!.events).toEqual([])
    expect(echo.accepted[0]!.bytes.toString()).toBe("x")
    proxy.resume()
    // The echo server gets the bytes and the end, echoes, ends: the client sees it all.
    await until(() => a.seen.events.includes("close"))
    expect(a.seen.bytes.toString()).toBe("xlast")
    expect(echo.accepted[0]!.events).toContain("end")
  })

  it("a target that refuses: the client's connection is closed, not left hanging", async () => {
    const free = await proxyTo(9) // only to get a port that nothing listens on once closed
    await free.close()
    const proxy = await proxyTo(free.port)
    const a = await client(proxy.port)
    await until(() => a.seen.events.includes("close") || a.seen.events.includes("end"))
    expect(proxy.connections()).toBe(0)
  })

  it("close ends every connection, both sides, and stops listening", async () => {
    const echo = await echoServer()
    const proxy = await proxyTo(echo.port)
    const a = await client(proxy.port)
    a.socket.write("x")
    await until(() => a.seen.bytes.length === 1)
    proxy.pause() // closing works on a paused proxy too
    await proxy.close()
    // The client is half-open capable: it sees the end of the stream; the echo server ends back.
    await until(() => a.seen.events.includes("end") && echo.accepted[0]!.events.includes("close"))
    const refused = connect({ host: "127.0.0.1", port: proxy.port })
    const [error] = await once(refused, "error")
    expect((error as NodeJS.ErrnoException).code).toBe("ECONNREFUSED")
  })

  it.live("scoped: the proxy closes with its scope", () =>
    Effect.gen(function* () {
      const echo = yield* Effect.promise(() => echoServer())
      const { a, port } = yield* Effect.gen(function* () {
        const proxy = yield* TcpProxy.scoped({ targetHost: "127.0.0.1", targetPort: echo.port })
        const a = yield* Effect.promise(() => client(proxy.port))
        a.socket.write("x")
        yield* Effect.promise(() => until(() => a.seen.bytes.length === 1))
        return { a, port: proxy.port }
      }).pipe(Effect.scoped)
      yield* Effect.promise(() => until(() => a.seen.events.includes("end")))
      const refused = connect({ host: "127.0.0.1", port })
      const [error] = yield* Effect.promise(() => once(refused, "error"))
      expect((error as NodeJS.ErrnoException).code).toBe("ECONNREFUSED")
    })
  )
})
