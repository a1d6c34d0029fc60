/**
 * `freePort` draws below the kernel's ephemeral range, so that no outgoing connection can take the
 * port between the probe and the bind; what it returns can be listened on.
 */
import { readFileSync } from "node:fs"
import { createServer } from "node:net"
import { describe, expect, it } from "vitest"
import { freePort } from "./freePort.ts"

const ephemeralStart = Number(
  readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0]
)

describe("freePort", () => {
  it("returns ports below the ephemeral range that can be listened on", async () => {
    const ports = await Promise.all(Array.from({ length: 20 }, () => freePort()))
    for (const port of ports) {
      expect(port).toBeGreaterThanOrEqual(10_000)
      expect(port).toBeLessThan(ephemeralStart)
    }
    const port = ports[0]!
    await new Promise<void>((resolve, reject) => {
      const server = createServer()
      server.once("error", reject)
      server.listen(port, "127.0.0.1", () => server.close(() => resolve()))
    })
  })
})
