/**
 * Pods talking directly, as real processes (`networkPod.ts`) on one real SQLite file and on one
 * real PostgreSQL database: a volatile ask to a reachable pod never touches the store; a persisted
 * one is stored once and answered over the network; a peer SIGKILLed with asks in flight, and a
 * partition between two pods (our TCP proxy stops forwarding while both reach the store), leave
 * every ask answered or failed typed, nothing handled twice, and traffic returns to the network
 * once the proxy heals.
 */
import { createConnection } from "node:net"
import { Effect, Exit } from "effect"
import { afterEach, describe, expect, it } from "vitest"
import * as NodePodNetwork from "../../src/node/NodePodNetwork.ts"
import { eventually, freshStore, removeStore } from "../cluster/harness.ts"
import type * as ChildPod from "../support/ChildPod.ts"
import { freePort } from "../support/freePort.ts"
import * as TcpProxy from "../support/TcpProxy.ts"
import { ask, ids, type Line, ledger, ready, spread, startPod, twice } from "./harness.ts"

describe.each(["sqlite", "pg"] as const)("pods talking directly on %s", (kind) => {
  const cleanup: Array<() => Promise<void> | void> = []
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step()
  })
  const fresh = async (name: string) => {
    const store = await freshStore(kind, name)
    cleanup.push(() => removeStore(store))
    return store
  }

  it("a volatile ask to another pod never touches the store; a persisted one is stored once", async () => {
    const store = await fresh("net-direct")
    const a = startPod(store, "a")
    cleanup.push(a.dispose)
    const b = startPod(store, "b")
    cleanup.push(b.dispose)
    expect(await ready(a)).toMatch(/^127\.0\.0\.1:\d+$/)
    await ready(b)
    await spread(store, a, ["a", "b"])

    const volatile = await ask(a, "Echo", ids(200), "v")
    expect(volatile.errors).toEqual({})
    const remote = Object.values(volatile.replies).filter((podId) => podId === "b").length
    expect(remote).toBeGreaterThan(20)
    // Every reply came over the network: not one row written by the sender for them.
    expect(volatile.storeWrites).toBe(0)

    const persisted = await ask(a, "Tally", ids(100), "p")
    expect(persisted.errors).toEqual({})
    expect(Object.values(persisted.replies).filter((podId) => podId === "b").length).toBeGreaterThan(10)
    // One write of the sender's per message: stored before the push (remote), or its completion
    // (local); the owner's completion of a pushed message is the owner's write.
    expect(persisted.storeWrites).toBe(100)
    expect(twice(ledger(store))).toEqual([])
    const tallies = ledger(store).filter((line) => line.t === "Tally" && line.m.startsWith("p-"))
    expect(tallies).toHaveLength(100)
  })

  it("a peer SIGKILLed with asks in flight: each ask is answered by the new owner or fails typed", async () => {
    const store = await fresh("net-kill")
    const a = startPod(store, "a", { sendTimeoutMillis: 15_000 })
    cleanup.push(a.dispose)
    const b = startPod(store, "b", { handleMillis: 1_500 })
    cleanup.push(b.dispose)
    await ready(a)
    await ready(b)
    await spread(store, a, ["a", "b"])

    a.skipReceived()
    a.send({ ask: { type: "Echo", ids: ids(60), prefix: "k", concurrency: 60 } })
    await eventually(
      "asks to reach b",
      async () => ledger(store).some((line) => line.p === "b" && line.m.startsWith("k-")),
      10_000
    )
    b.kill("SIGKILL")
    const line = await a.waitFor((message) => message.asked !== undefined, 40_000)
    const asked = line.asked!
    expect(Object.keys(asked.replies).length + Object.keys(asked.errors).length).toBe(60)
    for (const tag of Object.values(asked.errors)) expect(tag).toBe("MessageTimeoutError")
    // The asks b had are answered by a, its shards' new owner (b never answers: it was killed).
    expect(Object.values(asked.replies).every((podId) => podId === "a")).toBe(true)
    expect(Object.keys(asked.replies).length).toBeGreaterThan(0)
    expect(asked.slowestMillis).toBeLessThan(20_000)
    console.log(
      `SIGKILL with asks in flight: ${Object.keys(asked.replies).length} answered, ${Object.keys(asked.errors).length} timed out, slowest ${asked.slowestMillis} ms`
    )
  })

  it("a partition between two pods: asks complete through the store or fail typed; traffic returns to the network once healed", async () => {
    const store = await fresh("net-partition")
    const bPort = await freePort()
    const proxy = await TcpProxy.start({ targetHost: "127.0.0.1", targetPort: bPort })
    cleanup.push(proxy.close)
    const a = startPod(store, "a", { sendTimeoutMillis: 10_000 })
    cleanup.push(a.dispose)
    const b = startPod(store, "b", { port: bPort, advertise: `127.0.0.1:${proxy.port}` })
    cleanup.push(b.dispose)
    await ready(a)
    await ready(b)
    await spread(store, a, ["a", "b"])
    expect(proxy.connections()).toBeGreaterThan(0)

    proxy.pause()
    const cut = await ask(a, "Echo", ids(60), "cut")
    expect(Object.keys(cut.replies).length + Object.keys(cut.errors).length).toBe(60)
    for (const tag of Object.values(cut.errors)) expect(tag).toBe("MessageTimeoutError")
    // b's entities were reached through the store meanwhile.
    expect(Object.values(cut.replies).filter((podId) => podId === "b").length).toBeGreaterThan(0)
    expect(cut.storeWrites).toBeGreaterThan(0)
    expect(twice(ledger(store))).toEqual([])

    proxy.resume()
    await eventually(
      "traffic to return to the network",
      async () => {
        const healed = await ask(a, "Echo", ids(60), `healed-${Date.now()}`)
        return (
          Object.keys(healed.errors).length === 0 &&
          healed.storeWrites === 0 &&
          Object.values(healed.replies).some((podId) => podId === "b")
        )
      },
      30_000
    )
    expect(twice(ledger(store))).toEqual([])
    console.log(
      `partition: ${Object.keys(cut.replies).length} answered during the cut (slowest ${cut.slowestMillis} ms), ${Object.keys(cut.errors).length} timed out`
    )
  })

  it("a rolling restart of 3 pods under steady traffic: every ask answered, nothing handled twice, every workflow completed", async () => {
    const store = await fresh("net-rolling")
    const started = new Map<string, ChildPod.ChildPod<Line>>()
    const start = async (podId: string) => {
      const pod = startPod(store, podId, { sendTimeoutMillis: 30_000 })
      cleanup.push(pod.dispose)
      started.set(podId, pod)
      await ready(pod)
      return pod
    }
    for (const podId of ["a", "b", "c"]) await start(podId)
    // The sender stays up; it is a pod of the cluster too.
    const z = await start("z")
    await spread(store, z, ["a", "b", "c", "z"])

    z.skipReceived()
    z.send({ load: { prefix: "roll", entities: 40, concurrency: 8 } })
    for (const podId of ["a", "b", "c"]) {
      const pod = started.get(podId)!
      const before = ledger(store).length
      await eventually("traffic to flow", async () => ledger(store).length > before + 30, 20_000)
      pod.kill("SIGTERM")
      await pod.waitFor((line) => line.stopped !== undefined, 30_000)
      await pod.exited
      await start(podId)
    }
    const before = ledger(store).length
    await eventually(
      "traffic to flow after the last restart",
      async () => ledger(store).length > before + 30,
      20_000
    )
    z.send({ stop: true })
    const loaded = (await z.waitFor((line) => line.loaded !== undefined, 60_000)).loaded!

    expect(loaded.errors).toEqual({})
    expect(loaded.asks).toBeGreaterThan(100)
    expect(loaded.jobs).toHaveLength(loaded.workflows)
    const lines = ledger(store)
    // No persisted message handled twice; every job's activity recorded once it completed.
    expect(twice(lines.filter((line) => line.t === "Tally"))).toEqual([])
    const jobs = new Set(lines.filter((line) => line.t === "Job").map((line) => line.m))
    for (const id of loaded.jobs) expect(jobs.has(id)).toBe(true)
    console.log(
      `rolling restart on ${kind}: ${loaded.asks} asks and ${loaded.workflows} workflows, slowest ${loaded.slowestMillis} ms`
    )
  })

  it("a pod with a cluster secret refuses a wrong secret, garbage and an oversized frame, and keeps serving its peers", async () => {
    const store = await fresh("net-secret")
    const secret = "the-cluster-secret"
    const a = startPod(store, "a", { secret })
    cleanup.push(a.dispose)
    const b = startPod(store, "b", { secret })
    cleanup.push(b.dispose)
    await ready(a)
    const bAddress = await ready(b)
    await spread(store, a, ["a", "b"])

    // An intruder that knows the protocol but not the secret: its pushes are refused, unhandled.
    await Effect.runPromise(
      Effect.gen(function* () {
        const intruder = yield* NodePodNetwork.listen("intruder", { secret: "not-the-secret" })
        const push = intruder.push(
          bAddress,
          {
            entityType: "Echo",
            entityId: "entity-1",
            messageId: "intruder-1",
            shard: 1,
            payload: JSON.stringify({ _tag: "Ping", messageId: "intruder-1" }),
            stored: false,
            awaitReply: true
          },
          3_000
        )
        const exit = yield* Effect.exit(push)
        expect(Exit.isFailure(exit)).toBe(true)
      }).pipe(Effect.scoped)
    )
    await b.waitFor((line) => JSON.stringify(line.message ?? "").includes("refused a connection"), 10_000)
    // Garbage and a frame over the limit, on raw sockets.
    await rawSend(bAddress, '\u0000garbage\n{"_tag":"Request","id":"1","tag":"Deliver","payload":{}}\n')
    await rawSend(bAddress, Buffer.alloc(17 * 1024 * 1024, 0x61))

    expect(ledger(store).some((line) => line.m.startsWith("intruder"))).toBe(false)
    const after = await ask(a, "Echo", ids(60), "after")
    expect(after.errors).toEqual({})
    expect(after.storeWrites).toBe(0)
    expect(Object.values(after.replies).some((podId) => podId === "b")).toBe(true)
  })
})

/** Writes `bytes` to `address` on a raw TCP connection and waits until it is closed or 1 s passed. */
const rawSend = (address: string, bytes: string | Buffer) =>
  new Promise<void>((resolve) => {
    const [host, port] = address.split(":")
    const socket = createConnection({ host: host!, port: Number(port) }, () => socket.write(bytes))
    const timer = setTimeout(() => {
      socket.destroy()
      resolve()
    }, 1_000)
    socket.on("error", () => {})
    socket.on("close", () => {
      clearTimeout(timer)
      resolve()
    })
  })
