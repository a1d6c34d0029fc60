/**
 * The talk's counter across real processes: pods (`examples/counter/pod.ts`) on one real SQLite
 * file or one real PostgreSQL database; two of them send 1,000 Increment/Decrement messages to 50
 * counters while a third is SIGKILLed mid-stream and a fourth joins (a rebalance). Every count must
 * be exact — a message applied twice or lost would change it — read with `GetCurrent` from two
 * pods (some counters local to each, the others remote).
 */
import { readFileSync } from "node:fs"
import { Effect, Layer, ManagedRuntime } from "effect"
import { afterEach, describe, expect, it } from "vitest"
import { expectedCounts } from "../../examples/counter/counter.ts"
import { EntityStore, ShardStore, SqliteJournal } from "../../src/index.ts"
import { PostgresJournal } from "../../src/postgres.ts"
import * as ChildPod from "../support/ChildPod.ts"
import { eventually, freeze, freshStore, removeStore, type Store } from "./harness.ts"

const TTL = 3_000
const SHARDS = 30
const COUNTERS = 50
const TOTAL = 1_000

interface PodLine {
  readonly ready?: string
  readonly stopped?: string
  readonly sent?: number
  readonly counts?: Record<string, number>
  readonly error?: string
  readonly level?: string
  readonly message?: unknown
}

/** A pod's log line saying it stopped the runs of shards it lost (its lease ran out, or a write was refused). */
const stoppedRuns = (line: PodLine) =>
  line.level === "WARN" && /stopping (the|its) runs/.test(JSON.stringify(line.message ?? ""))

interface LedgerLine {
  readonly m: string
  readonly e: string
  readonly p: string
}

describe.each(["sqlite", "pg"] as const)("the counter across processes on %s", (kind) => {
  const cleanup: Array<() => Promise<void> | void> = []
  /** The pods started by the test, by id. */
  const pods = new Map<string, ChildPod.ChildPod<PodLine>>()
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step()
    pods.clear()
  })

  const startPod = async (
    store: Store,
    podId: string,
    send?: {
      readonly from: number
      readonly count: number
      readonly perSecond: number
      readonly holdAt?: number
    }
  ) => {
    const pod = ChildPod.spawn<PodLine>("examples/counter/pod.ts", {
      args: [
        JSON.stringify({
          store: store.location,
          podId,
          leaseTtlMillis: TTL,
          shardCount: SHARDS,
          ledger: store.ledger,
          handleMillis: 2,
          send: send === undefined ? undefined : { ...send, counters: COUNTERS }
        })
      ]
    })
    cleanup.push(() => pod.dispose())
    pods.set(podId, pod)
    await pod.waitFor((line) => line.ready !== undefined, 30_000)
    return pod
  }

  /** A fresh store, a reader of it, and the checks every test ends with. */
  const setup = async (name: string) => {
    const store = await freshStore(kind, name)
    cleanup.push(() => removeStore(store))
    const runtime = ManagedRuntime.make(
      Layer.fresh(
        store.kind === "sqlite"
          ? SqliteJournal.layer({ filename: store.location })
          : PostgresJournal.layer({ url: store.location })
      ) as Layer.Layer<EntityStore.EntityStore | ShardStore.ShardStore, unknown>
    )
    cleanup.push(() => runtime.dispose())
    const owners = async () => {
      const shards = await runtime.runPromise(Effect.flatMap(ShardStore.ShardStore, (s) => s.shards))
      return new Set(shards.map((shard) => shard.owner))
    }
    /** Every message processed (none pending), then every count exact, asked from each of `askers`. */
    const expectExact = async (askers: ReadonlyArray<ChildPod.ChildPod<PodLine>>) => {
      await eventually(
        "no message is pending",
        async () =>
          (
            await runtime.runPromise(
              Effect.flatMap(EntityStore.EntityStore, (s) =>
                s.pending({ shards: Array.from({ length: SHARDS }, (_, i) => i + 1), afterSeq: 0, limit: 10 })
              )
            )
          ).length === 0,
        60_000
      )
      const expected = expectedCounts(TOTAL, COUNTERS)
      for (const pod of askers) {
        pod.send({ get: COUNTERS })
        const { counts, error } = await pod.waitFor(
          (line) => line.counts !== undefined || line.error !== undefined,
          60_000
        )
        expect(error).toBeUndefined()
        expect(counts).toEqual(expected)
      }
      // The ledger: every message ran; one that ran twice was in the hands of a pod that lost its
      // shards: `victim`, or a pod whose own lease ran out on a starved machine (it logged it).
      const lines = ledger(store)
      const runs = new Map<string, Array<string>>()
      for (const line of lines) runs.set(line.m, [...(runs.get(line.m) ?? []), line.p])
      expect(runs.size).toBe(TOTAL)
      const lost = new Set([
        "victim",
        ...[...pods].filter(([, pod]) => pod.messages.some(stoppedRuns)).map(([id]) => id)
      ])
      for (const [message, ranBy] of runs) {
        if (ranBy.length > 1)
          expect(
            ranBy.filter((pod) => lost.has(pod)),
            `${message}: ${ranBy.join(", ")}`
          ).not.toEqual([])
      }
      return lines
    }
    return { store, owners, expectExact }
  }

  it("1,000 messages from two senders to 50 counters, a SIGKILL and a rebalance: every count exact", async () => {
    const { store, owners, expectExact } = await setup("counter-kill")
    const victim = await startPod(store, "victim")
    // Paced so that messages still flow after the kill; the last 100 of each sender wait until the
    // late pod has joined, so that some reach it however long its joining takes.
    const hold = { count: TOTAL / 2, perSecond: 100, holdAt: TOTAL / 2 - 100 }
    const north = await startPod(store, "north", { from: 0, ...hold })
    const south = await startPod(store, "south", { from: TOTAL / 2, ...hold })
    await eventually(
      "the three pods own shards",
      async () => (await owners()).size === 3 && !(await owners()).has(null)
    )
    await north.waitFor((line) => (line.sent ?? 0) >= 150, 30_000)
    const handledByVictim = () => ledger(store).filter((line) => line.p === "victim").length
    expect(handledByVictim()).toBeGreaterThan(0)
    victim.kill("SIGKILL")
    expect((await victim.exited).signal).toBe("SIGKILL")
    const atKill = handledByVictim()
    await north.waitFor((line) => (line.sent ?? 0) >= 300, 30_000)
    // A new pod joins: shards are handed over to it while messages keep coming.
    await startPod(store, "late")
    await eventually("the late pod owns shards", async () => (await owners()).has("late"))
    north.send({ go: true })
    south.send({ go: true })
    await north.waitFor((line) => line.sent === TOTAL / 2, 30_000)
    await south.waitFor((line) => line.sent === TOTAL / 2, 30_000)
    const lines = await expectExact([north, south])
    expect(handledByVictim()).toBe(atKill)
    expect(new Set(lines.map((line) => line.p))).toEqual(new Set(["victim", "north", "south", "late"]))
  })

  it("a pod frozen (SIGSTOP) past its lease while messages flow, resumed, then stopped with SIGTERM: every count exact", async () => {
    const { store, owners, expectExact } = await setup("counter-stop")
    const victim = await startPod(store, "victim")
    // Their last 100 messages each wait until the frozen pod is back and owns shards again, so
    // that some still flow to it then, however long its return takes on a loaded machine.
    const hold = { count: TOTAL / 2, perSecond: 50, holdAt: TOTAL / 2 - 100 }
    const north = await startPod(store, "north", { from: 0, ...hold })
    const south = await startPod(store, "south", { from: TOTAL / 2, ...hold })
    await eventually(
      "the three pods own shards",
      async () => (await owners()).size === 3 && !(await owners()).has(null)
    )
    await north.waitFor((line) => (line.sent ?? 0) >= 100, 30_000)
    await freeze(store, victim)
    const frozenAt = Date.now()
    // Its shards move only once its lease ran out; the other pods handle its counters meanwhile.
    await eventually("the frozen pod's shards moved", async () => !(await owners()).has("victim"), 30_000)
    expect(Date.now() - frozenAt).toBeGreaterThanOrEqual(TTL - 500)
    const handledWhileFrozen = ledger(store).filter((line) => line.p === "victim").length
    victim.kill("SIGCONT")
    // Back, it joins again as a new member and gets shards; then it leaves gracefully.
    await eventually("the resumed pod owns shards again", async () => (await owners()).has("victim"), 30_000)
    north.send({ go: true })
    south.send({ go: true })
    await eventually(
      "the resumed pod handles messages again",
      async () => ledger(store).filter((line) => line.p === "victim").length > handledWhileFrozen + 5,
      30_000
    ).catch((error: unknown) => {
      // What the pods saw, for the next reader of a failure: their logs are not kept otherwise.
      const tail = (text: string) => text.slice(-8_000)
      throw new Error(
        `${String(error)}\n--- victim:\n${tail(victim.stdout())}\n--- north:\n${tail(north.stdout())}\n--- south:\n${tail(south.stdout())}`
      )
    })
    victim.kill("SIGTERM")
    await victim.waitFor((line) => line.stopped !== undefined, 30_000)
    expect((await victim.exited).code).toBe(0)
    await north.waitFor((line) => line.sent === TOTAL / 2, 30_000)
    await south.waitFor((line) => line.sent === TOTAL / 2, 30_000)
    await expectExact([north, south])
  })
})

const ledger = (store: Store): ReadonlyArray<LedgerLine> =>
  readFileSync(store.ledger, "utf8")
    .split("\n")
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as LedgerLine)
