/**
 * A hung database connection, the failure that lets another system run one entity in two places:
 * one pod reaches PostgreSQL through a TCP proxy that stops forwarding without closing anything.
 * The server still sees its session, so the pod is not provably gone: the others must wait for its
 * lease. The pod, unable to renew, stops its runs by its own clock before that lease ends; another
 * pod then takes its shards over; and when the path heals, the writes it had sent with the old
 * epochs are refused by the store.
 */
import { afterEach, expect, it } from "vitest"
import {
  allFinal,
  checkLedger,
  eventually,
  freshStore,
  ledger,
  reader,
  readyPod,
  refusedWrite,
  removeStore,
  shards,
  viaProxy
} from "./harness.ts"

const TTL = 3_000
const cleanup: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step()
})

it("a pod whose PostgreSQL connection hangs stops its runs before its lease ends; another pod takes over; its late writes are refused", async () => {
  const store = await freshStore("pg", "hung")
  cleanup.push(() => removeStore(store))
  const runtime = reader(store)
  cleanup.push(() => runtime.dispose())
  const { proxy, via } = await viaProxy(store)
  cleanup.push(() => proxy.close())

  const a = await readyPod(store, {
    podId: "a",
    via,
    leaseTtlMillis: TTL,
    // Short activities keep the pod writing while its path hangs; every fourth execution's take
    // longer than the pod's own deadline (TTL × 4/5), so some are in flight when it must stop.
    activityMillis: 20,
    slowEvery: 4,
    slowMillis: 4_000,
    submit: { prefix: "h", count: 300, perSecond: 100 }
  })
  cleanup.push(() => a.pod.dispose())
  const b = await readyPod(store, { podId: "b", leaseTtlMillis: TTL, activityMillis: 100 })
  cleanup.push(() => b.pod.dispose())
  const owned = async (podId: string) => (await shards(runtime)).filter((s) => s.owner === podId).length
  await eventually("b owns its share", async () => (await owned("b")) >= 140)
  await a.pod.waitFor((m) => (m.submitted ?? 0) >= 100, 30_000)

  const pausedAt = Date.now()
  proxy.pause()
  // a cannot renew: by its own clock it stops its runs (its activities are interrupted).
  await a.pod.waitFor((m) => m.level === "WARN" && JSON.stringify(m.message).includes("renewed"), 2 * TTL)
  await eventually("b owns every shard", async () => (await owned("b")) === 300, 4 * TTL)
  const takenAt = Date.now()
  // The server still had a's session: b waited for a's lease, it did not take over early.
  expect(takenAt - pausedAt).toBeGreaterThanOrEqual(TTL - 500)
  const lines = ledger(store)
  const stopsOfA = lines.filter((line) => line.p === "a" && line.k === "stop" && line.t >= pausedAt)
  expect(stopsOfA.length).toBeGreaterThan(0)
  // a's last renewal was before the pause: its lease ended at pausedAt + TTL at the earliest.
  for (const stop of stopsOfA) expect(stop.t).toBeLessThan(pausedAt + TTL)

  // What a wrote while cut off carried its old epochs: refused (by its own clock before sending,
  // or by the store in the write's transaction if it was already on the wire).
  await eventually("a reports a refused write", async () => a.pod.messages.some(refusedWrite), 15_000)
  proxy.resume()
  await a.pod.waitFor((m) => m.submitted === 300, 60_000)
  const rows = await allFinal(runtime, 300)
  for (const row of rows) {
    expect(row.result).toBe(JSON.stringify({ _tag: "Success", value: `${row.executionId}:reserve+charge` }))
  }
  checkLedger(store)
})
