/**
 * The test proxy against a tiny echo server: bytes flow; `pause()` holds them on open and new
 * connections without closing either side (no `end` or `close` on any socket); `resume()` delivers
 * what was held, in order; `delay(ms)` holds every chunk that long each way, in order, and
 * `delay(0)` stops holding new ones; `reset()` resets every connection on both sides (ECONNRESET,
 * not an end) and keeps accepting; `close()` and the scoped wrapper end everything.
 */
import { randomBytes } from "node:crypto"
import { once } from "node:events"
import { connect, createServer, type Socket } from "node:net"
import { performance } from "node:perf_hooks"
import { setTimeout as sleep } from "node:timers/promises"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { onTestFinished } from "vitest"
import * as TcpProxy from "./TcpProxy.ts"

/** A socket's received bytes (with when each chunk came) and its `end`/`close` events. */
const watch = (socket: Socket) => {
  const chunks: Array<Buffer> = []
  let length = 0
  const seen = {
    socket,
    events: [] as Array<string>,
    /** Per chunk received: `performance.now()` then, and how many bytes had come by its end. */
    arrivals: [] as Array<{ readonly at: number; readonly total: number }>,
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
    seen.arrivals.push({ at: performance.now(), total: length })
  })
  socket.on("end", () => seen.events.push("end"))
  socket.on("close", () => seen.events.push("close"))
  socket.on("error", (error: NodeJS.ErrnoException) =>
    seen.events.push(`error ${error.code ?? error.message}`)
  )
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

/**
 * Whether every byte counted in `arrivals` came at least `millis` after it was sent: `sent` lists,
 * in order, when each chunk left (`at`) and how many bytes had been sent by its end (`total`).
 * A received chunk is as late as its last byte allows: compare it with the send of that byte.
 */
const lateBy = (
  sent: ReadonlyArray<{ readonly at: number; readonly total: number }>,
  arrivals: ReadonlyArray<{ readonly at: number; readonly total: number }>
) =>
  arrivals.map((arrival) => {
    const send = sent.find((s) => s.total >= arrival.total)!
    return arrival.at - send.at
  })

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

  it("delay holds every chunk that long in each direction, in order", async () => {
    const DELAY = 150
    const echo = await echoServer()
    const proxy = await proxyTo(echo.port)
    const a = await client(proxy.port)
    proxy.delay(DELAY)
    const sent: Array<{ at: number; total: number }> = []
    let total = 0
    for (let i = 0; i < 8; i++) {
      const chunk = `c${i};`
      total += chunk.length
      sent.push({ at: performance.now(), total })
      a.socket.write(chunk)
      await sleep(20) // chunks while earlier ones are still held
    }
    const expected = "c0;c1;c2;c3;c4;c5;c6;c7;"
    await until(() => a.seen.bytes.toString() === expected)
    const server = echo.accepted[0]!
    expect(server.bytes.toString()).toBe(expected)
    // Client to server: every byte reached the echo server at least DELAY after it was written.
    for (const late of lateBy(sent, server.arrivals)) expect(late).toBeGreaterThanOrEqual(DELAY)
    // Server to client: the echo server wrote each chunk back as it came; each came back DELAY later.
    for (const late of lateBy(server.arrivals, a.seen.arrivals)) expect(late).toBeGreaterThanOrEqual(DELAY)
  })

  it("delay(0) forwards new chunks at once, after those still held on their connection", async () => {
    const echo = await echoServer()
    const proxy = await proxyTo(echo.port)
    const a = await client(proxy.port)
    const b = await client(proxy.port)
    proxy.delay(1_000)
    a.socket.write("held;")
    await until(() => proxy.heldBytes() === 5)
    proxy.delay(0)
    a.socket.write("after") // behind "held;" on its connection
    b.socket.write("fresh") // on a connection with nothing held: at once
    await until(() => b.seen.bytes.toString() === "fresh")
    expect(a.seen.bytes.toString()).toBe("") // "held;" is still held, and "after" waits behind it
    await until(() => a.seen.bytes.toString() === "held;after")
  })

  it("a delayed large transfer arrives whole and in order, and its end after its last byte", async () => {
    const echo = await echoServer()
    const proxy = await proxyTo(echo.port)
    const a = await client(proxy.port)
    proxy.delay(20)
    const payload = randomBytes(4 * 1024 * 1024)
    a.socket.end(payload)
    await until(() => a.seen.events.includes("end"), 20_000)
    expect(a.seen.bytes.equals(payload)).toBe(true)
    expect(echo.accepted[0]!.events).toContain("end")
  })

  it("reset resets every connection on both sides (not an end) and keeps accepting new ones", async () => {
    const echo = await echoServer()
    const proxy = await proxyTo(echo.port)
    const a = await client(proxy.port)
    const b = await client(proxy.port)
    a.socket.write("a")
    b.socket.write("b")
    await until(() => a.seen.length === 1 && b.seen.length === 1)
    proxy.reset()
    const sides = [a.seen, b.seen, ...echo.accepted]
    await until(() => sides.every((side) => side.events.includes("close")))
    for (const side of sides) expect(side.events).toEqual(["error ECONNRESET", "close"])

    const c = await client(proxy.port)
    c.socket.write("c")
    await until(() => c.seen.bytes.toString() === "c")
    expect(proxy.connections()).toBe(1)
  })

  it("reset while paused resets held connections too; after resume new ones flow", async () => {
    const echo = await echoServer()
    const proxy = await proxyTo(echo.port)
    const a = await client(proxy.port)
    a.socket.write("a")
    await until(() => a.seen.length === 1)
    proxy.pause()
    const b = await client(proxy.port) // accepted, not yet forwarded to the echo server
    b.socket.write("b")
    proxy.reset()
    await until(() => [a.seen, b.seen, echo.accepted[0]!].every((side) => side.events.includes("close")))
    for (const side of [a.seen, b.seen, echo.accepted[0]!])
      expect(side.events).toEqual(["error ECONNRESET", "close"])

    proxy.resume()
    const c = await client(proxy.port)
    c.socket.write("c")
    await until(() => c.seen.bytes.toString() === "c")
    expect(echo.accepted.map((s) => s.bytes.toString())).toEqual(["a", "c"]) // b never reached it
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
