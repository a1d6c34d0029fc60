/**
 * Raw TCP connections to a pod's listener, for a hostile sender (`hostile.ts`) and the tests of
 * the listener: they write whatever bytes they are given, and collect the NDJSON frames the pod
 * answers with until it closes the connection. The protocol's frames are `effect/rpc` messages:
 * `request` makes one (`{"_tag": "Request", "id", "tag", "payload", "headers"}`); the pod answers
 * an `Exit` per request, and a stream (`Answers`) with `Chunk`s of values.
 */
import { createConnection } from "node:net"

/** A raw connection to a pod. */
export interface RawConnection {
  /** Writes `bytes`; resolves once they are handed to the kernel (or the connection failed). */
  readonly write: (bytes: string | Uint8Array) => Promise<void>
  /** The JSON frames received so far (lines that are not JSON are skipped). */
  readonly frames: ReadonlyArray<unknown>
  /** Whether the connection is closed (by the pod, or by `destroy`). */
  readonly closed: () => boolean
  /** Whether the pod closed it within `timeoutMs`. */
  readonly waitClosed: (timeoutMs: number) => Promise<boolean>
  /**
   * The first frame (received or to come within `timeoutMs`) that satisfies `predicate`; null when
   * the connection closed first, undefined when none came in time.
   */
  readonly waitFrame: (predicate: (frame: unknown) => boolean, timeoutMs: number) => Promise<unknown>
  readonly destroy: () => void
}

/** `host:port` → its parts. */
const split = (address: string) => {
  const at = address.lastIndexOf(":")
  return { host: address.slice(0, at).replace(/^\[|\]$/g, ""), port: Number(address.slice(at + 1)) }
}

/** Opens a connection to `address`; rejects if it cannot be opened in 5 s. */
export const connect = (address: string): Promise<RawConnection> =>
  new Promise((resolve, reject) => {
    const { host, port } = split(address)
    const frames: Array<unknown> = []
    const waiters = new Set<() => void>()
    let partial = ""
    let isClosed = false
    const socket = createConnection({ host, port })
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error(`could not connect to ${address} in 5 s`))
    }, 5_000)
    const notify = () => {
      for (const waiter of [...waiters]) waiter()
    }
    socket.setEncoding("utf8")
    socket.on("data", (chunk: string) => {
      const lines = (partial + chunk).split("\n")
      partial = lines.pop() ?? ""
      for (const line of lines) {
        try {
          frames.push(JSON.parse(line))
        } catch {
          // not a frame
        }
      }
      notify()
    })
    socket.on("error", () => {})
    socket.on("close", () => {
      isClosed = true
      clearTimeout(timer)
      notify()
      reject(new Error(`the connection to ${address} closed before it opened`))
    })
    const until = <A>(check: () => A | undefined, timeoutMs: number, fallback: A) =>
      new Promise<A>((done) => {
        const waiter = () => {
          const found = check()
          if (found === undefined) return
          waiters.delete(waiter)
          clearTimeout(deadline)
          done(found)
        }
        const deadline = setTimeout(() => {
          waiters.delete(waiter)
          done(fallback)
        }, timeoutMs)
        waiters.add(waiter)
        waiter()
      })
    socket.on("connect", () => {
      clearTimeout(timer)
      resolve({
        write: (bytes) =>
          new Promise((done) => {
            if (isClosed) return done()
            socket.write(bytes, () => done())
          }),
        frames,
        closed: () => isClosed,
        waitClosed: (timeoutMs) => until(() => (isClosed ? true : undefined), timeoutMs, false),
        waitFrame: (predicate, timeoutMs) =>
          until(() => frames.find(predicate) ?? (isClosed ? null : undefined), timeoutMs, undefined),
        destroy: () => socket.destroy()
      })
    })
  })

/** One NDJSON frame. */
export const frame = (message: unknown): string => `${JSON.stringify(message)}\n`

/** A request frame of the pods' protocol. */
export const request = (id: string, tag: string, payload: unknown, extra: Record<string, unknown> = {}) =>
  frame({ _tag: "Request", id, tag, payload, headers: [], ...extra })

/** Whether `frame` is the `Exit` of request `id`. */
export const isExitOf = (id: string) => (frame: unknown) =>
  typeof frame === "object" &&
  frame !== null &&
  (frame as { _tag?: unknown })._tag === "Exit" &&
  (frame as { requestId?: unknown }).requestId === id

/** Whether the pod at `address` answers a request on a new connection within `timeoutMs`. */
export const serves = async (address: string, timeoutMs = 5_000): Promise<boolean> => {
  let connection: RawConnection
  try {
    connection = await connect(address)
  } catch {
    return false
  }
  try {
    await connection.write(request("probe", "Wake", { shards: [] }))
    return (await connection.waitFrame(isExitOf("probe"), timeoutMs)) != null
  } finally {
    connection.destroy()
  }
}

/**
 * Whether the pod at `address` answers a request within `withinMs`, asking again as long as it
 * refuses (it may still count connections whose close has not reached it yet).
 */
export const servesWithin = async (address: string, withinMs: number): Promise<boolean> => {
  const until = Date.now() + withinMs
  while (true) {
    if (await serves(address, Math.max(500, Math.min(5_000, until - Date.now())))) return true
    if (Date.now() >= until) return false
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
}
