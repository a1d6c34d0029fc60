/**
 * A TCP port of 127.0.0.1 that was free a moment ago: for a process that must know its address
 * before it starts (a pod behind a proxy, a peer's runner, a test's PostgreSQL server).
 *
 * It is drawn below the kernel's ephemeral range (`ip_local_port_range`), where the kernel never
 * hands out ports itself: a port from the ephemeral range (`listen(0)`) can be given to an outgoing
 * connection between the probe and the bind, which happened with two verification runs beside each
 * other (pods reconnecting to their stores by the hundreds). Another process that binds the same
 * port on purpose remains possible; the probe catches one that holds it already.
 */
import { readFileSync } from "node:fs"
import { createServer } from "node:net"

/** The lowest port the kernel hands out by itself (Linux), else the IANA dynamic range's start. */
const ephemeralStart = (): number => {
  try {
    const [low] = readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)
    const port = Number(low)
    return Number.isInteger(port) && port > 2_048 ? port : 49_152
  } catch {
    return 49_152
  }
}

const LOWEST = 10_000

/** Whether `port` can be listened on at 127.0.0.1 now (the probe's socket is closed again). */
const bindable = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const probe = createServer()
    probe.once("error", () => resolve(false))
    probe.listen(port, "127.0.0.1", () => probe.close(() => resolve(true)))
  })

export const freePort = async (): Promise<number> => {
  const highest = ephemeralStart() - 1
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = LOWEST + Math.floor(Math.random() * (highest - LOWEST + 1))
    if (await bindable(port)) return port
  }
  throw new Error(`no free port between ${LOWEST} and ${highest} after 100 tries`)
}
