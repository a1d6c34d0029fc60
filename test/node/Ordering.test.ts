/**
 * A persisted entity processes its messages in store order, across real processes (`orderingPod.ts`)
 * with the pods' network on, on one real SQLite file and on one real PostgreSQL database: senders
 * on three pods interleave `sendDiscard(Add)` and `send(Applied)` to counters spread over the pods,
 * while one pod is cut off from the others' pushes for a while (our TCP proxy stops forwarding to
 * it; it still reaches the store, so the increments stored for it wait for its pickup while its own
 * senders read its counters directly). Every read must include every increment acknowledged before
 * the read was invoked, each sender's increments must be applied in the order it sent them, and
 * every acknowledged increment exactly once.
 */
import { readFileSync } from "node:fs"
import { Effect, Layer, ManagedRuntime } from "effect"
import { afterEach, describe, expect, it } from "vitest"
import { EntityStore, SqliteJournal } from "../../src/index.ts"
import { PostgresJournal } from "../../src/postgres.ts"
import { eventually, freshStore, reader, removeStore, type Store, shards } from "../cluster/harness.ts"
import * as ChildPod from "../support/ChildPod.ts"
import { freePort } from "../support/freePort.ts"
import * as TcpProxy from "../support/TcpProxy.ts"

const SHARDS = 12
const COUNTERS = 9
const SENDERS = 4
const OPS = 200

interface Ran {
  readonly acks: number
  readonly reads: number
  readonly errors: Record<string, number>
}

interface Line {
  readonly ready?: string
  readonly ran?: Ran
  readonly dumped?: Record<string, ReadonlyArray<string>>
  readonly error?: string
}

type Event =
  | {
      readonly k: "ack"
      readonly en: string
      readonly m: string
      readonly s: string
      readonly n: number
      readonly t: number
    }
  | { readonly k: "read"; readonly en: string; readonly inv: number; readonly v: ReadonlyArray<string> }

const events = (store: Store): ReadonlyArray<Event> =>
  readFileSync(store.ledger, "utf8")
    .split("\n")
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as Event)

/** The sender of an increment id (`${pod}-${prefix}-s${s}-${n}`) and its place in the sender's order. */
const senderOf = (messageId: string) => {
  const cut = messageId.lastIndexOf("-")
  return { sender: messageId.slice(0, cut), n: Number(messageId.slice(cut + 1)) }
}

/** The ids of `applied` whose sender's increments are not in the order it sent them. */
const outOfOrder = (applied: ReadonlyArray<string>) => {
  const last = new Map<string, number>()
  const wrong: Array<string> = []
  for (const id of applied) {
    const { sender, n } = senderOf(id)
    if ((last.get(sender) ?? -1) > n) wrong.push(id)
    last.set(sender, n)
  }
  return wrong
}

describe.each(["sqlite", "pg"] as const)("entity messages in store order across pods on %s", (kind) => {
  const cleanup: Array<() => Promise<void> | void> = []
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step()
  })

  const startPod = (store: Store, podId: string, extra: Record<string, unknown> = {}) => {
    const pod = ChildPod.spawn<Line>("test/node/orderingPod.ts", {
      args: [
        JSON.stringify({
          store: store.location,
          ledger: store.ledger,
          podId,
          shardCount: SHARDS,
          requestTimeoutMillis: 500,
          ...extra
        })
      ]
    })
    cleanup.push(pod.dispose)
    return pod
  }

  it("senders interleave increments and reads on three pods, one cut off for a while: every read sees every increment acknowledged before it, each sender's in its order", async () => {
    const store = await freshStore(kind, "ordering")
    cleanup.push(() => removeStore(store))
    const cPort = await freePort()
    const proxy = await TcpProxy.start({ targetHost: "127.0.0.1", targetPort: cPort })
    cleanup.push(proxy.close)
    const pods = [
      startPod(store, "a"),
      startPod(store, "b"),
      startPod(store, "c", { port: cPort, advertise: `127.0.0.1:${proxy.port}` })
    ]
    for (const pod of pods) await pod.waitFor((line) => line.ready !== undefined, 30_000)
    const runtime = reader(store)
    cleanup.push(() => runtime.dispose())
    await eventually("the shards to be spread over the three pods", async () => {
      const records = await shards(runtime)
      return (
        records.every((record) => record.nextOwner === null) &&
        ["a", "b", "c"].every(
          (podId) => records.filter((record) => record.owner === podId).length === SHARDS / 3
        )
      )
    })

    for (const pod of pods) pod.send({ run: { prefix: "r", senders: SENDERS, counters: COUNTERS, ops: OPS } })
    const ran = () => pods.filter((pod) => pod.messages.some((line) => line.ran !== undefined)).length
    // Cut c off from the others' pushes once traffic flows, and let traffic flow for a while so.
    await eventually("traffic to flow", async () => events(store).length >= 300 || ran() > 0, 60_000)
    proxy.pause()
    const atPause = events(store).length
    await eventually(
      "traffic to flow while c is cut off",
      async () => events(store).length >= atPause + 600 || ran() > 0,
      60_000
    )
    proxy.resume()
    const results: Array<Ran> = []
    for (const pod of pods) {
      const line = await pod.waitFor(
        (message) => message.ran !== undefined || message.error !== undefined,
        120_000
      )
      expect(line.error).toBeUndefined()
      results.push(line.ran!)
    }
    for (const result of results) expect(result.errors).toEqual({})

    // Every increment processed; then the counters as they end.
    const entities = ManagedRuntime.make(
      Layer.fresh(
        store.kind === "sqlite"
          ? SqliteJournal.layer({ filename: store.location })
          : PostgresJournal.layer({ url: store.location })
      ) as Layer.Layer<EntityStore.EntityStore, unknown>
    )
    cleanup.push(() => entities.dispose())
    await eventually(
      "no message to be pending",
      async () =>
        (
          await entities.runPromise(
            Effect.flatMap(EntityStore.EntityStore, (s) =>
              s.pending({ shards: Array.from({ length: SHARDS }, (_, i) => i + 1), afterSeq: 0, limit: 10 })
            )
          )
        ).length === 0,
      60_000
    )
    pods[0]!.send({ dump: COUNTERS })
    const dumped = (
      await pods[0]!.waitFor((line) => line.dumped !== undefined || line.error !== undefined, 60_000)
    ).dumped!

    const all = events(store)
    const acks = all.filter((event) => event.k === "ack")
    const reads = all.filter((event) => event.k === "read")
    // A read sees every increment acknowledged (stored) before it was invoked, from any sender.
    const stale = reads.flatMap((read) => {
      const seen = new Set(read.v)
      return acks
        .filter((ack) => ack.en === read.en && ack.t < read.inv && !seen.has(ack.m))
        .map((ack) => `${read.en}: a read invoked at ${read.inv} misses ${ack.m}, acknowledged at ${ack.t}`)
    })
    // Each sender's increments of a counter are applied in the order it sent them, in every read
    // and at the end.
    const reordered = [...reads.map((read) => read.v), ...Object.values(dumped)].flatMap(outOfOrder)
    console.log(
      `ordering on ${kind}: ${acks.length} increments and ${reads.length} reads, ${stale.length} stale reads, ${reordered.length} reordered; e.g. ${stale.slice(0, 3).join("; ")}`
    )
    expect(stale.slice(0, 5)).toEqual([])
    expect(reordered.slice(0, 5)).toEqual([])
    // Every acknowledged increment applied exactly once.
    for (let c = 0; c < COUNTERS; c++) {
      const en = `counter-${c}`
      const applied = dumped[en] ?? []
      expect(new Set(applied).size).toBe(applied.length)
      expect([...applied].sort()).toEqual(
        acks
          .filter((ack) => ack.en === en)
          .map((ack) => ack.m)
          .sort()
      )
    }
    expect(reads.length).toBeGreaterThan(SENDERS * OPS * 0.5)
  })
})
