/**
 * A TCP port of 127.0.0.1 that was free a moment ago: for a process that must know its address
 * before it starts (a pod behind a proxy, a peer's runner). Another process may take it in
 * between; on this machine's loopback that has not been seen.
 */
import { createServer } from "node:net"

export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const probe = createServer()
    probe.once("error", reject)
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address()
      probe.close(() => resolve(typeof address === "object" && address !== null ? address.port : 0))
    })
  })
