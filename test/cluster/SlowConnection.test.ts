/**
 * A slow link between one pod and PostgreSQL: a TCP proxy holds every chunk, each way, for a while.
 * A renewal of the pod's lease counts from when it was sent, however late its answer, as long as
 * that answer comes while the lease it asked for is still ahead (TTL × 4/5 after sending). A link
 * whose round trip is longer than an ownership interval (TTL/10) but inside that bound only slows
 * the pod down: it keeps its shards and works. A link slower than that bound leaves no renewal to
 * count: the pod stops its runs by its own clock before its lease could end, and works again once
 * the link is fast. Another pod, on a direct link, runs beside it all along; no attempt runs twice
 * or in both at once.
 */
import { afterEach, expect, it } from "vitest"
import {
  allFinal,
  checkLedger,
  eventually,
  finishSubmitting,
  freshStore,
  ledger,
  lostShards,
  type PodOptions,
  reader,
  readyPod,
  removeStore,
  shards,
  viaProxy
} from "./harness.ts"

const TTL = 3_000
const cleanup: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step()
})

/**
 * Two pods on a fresh database, `a` through a proxy and submitting, `b` direct. `a` submits until
 * the test has seen what it needs (`finishSubmitting`): work keeps arriving whatever the pace of the
 * machine, so a pod that joins again late still finds some to run.
 */
const cluster = async (name: string, slow: Pick<PodOptions, "slowEvery" | "slowMillis"> = {}) => {
  const count = 10_000
  const store = await freshStore("pg", name)
  cleanup.push(() => removeStore(store))
  const runtime = reader(store)
  cleanup.push(() => runtime.dispose())
  const { proxy, via } = await viaProxy(store)
  cleanup.push(() => proxy.close())
  const a = await readyPod(store, {
    podId: "a",
    via,
    leaseTtlMillis: TTL,
    activityMillis: 50,
    ...slow,
    submit: { prefix: name, count, perSecond: 50 }
  })
  cleanup.push(() => a.pod.dispose())
  let exited = false
  void a.pod.exited.then(() => {
    exited = true
  })
  const b = await readyPod(store, { podId: "b", leaseTtlMillis: TTL, activityMillis: 50 })
  cleanup.push(() => b.pod.dispose())
  const owned = async (podId: string) => (await shards(runtime)).filter((s) => s.owner === podId).length
  // Evenly, with no handover left: a snapshot of a's shards taken before would see the last
  // rebalancing move as a shard lost to the slow link.
  await eventually("the shards are shared evenly", async () => (await owned("a")) === (await owned("b")))
  return { store, runtime, proxy, a, b, owned, exited: () => exited }
}

/** Whether `line` is an attempt `podId` started after `t`. */
const startedBy = (podId: string, t: number) => (line: { k: string; p: string; t: number }) =>
  line.k === "start" && line.p === podId && line.t > t

it("a link slower than an interval: the pod keeps its shards and keeps working", async () => {
  const { store, runtime, proxy, a, owned, exited } = await cluster("slow")
  await a.pod.waitFor((m) => (m.submitted ?? 0) >= 50, 30_000)
  const ownedBefore = await owned("a")
  expect(ownedBefore).toBeGreaterThan(0)

  const slowedAt = Date.now()
  proxy.delay(200) // a round trip of 400 ms and more, past the 300 ms interval
  // Still starting attempts a whole TTL into the slow link: renewals kept counting.
  await eventually(
    "a runs attempts through the slow link",
    async () => ledger(store).filter(startedBy("a", slowedAt + TTL)).length >= 10,
    30_000
  )
  expect(a.pod.messages.some(lostShards)).toBe(false)
  expect(await owned("a")).toBe(ownedBefore)
  proxy.delay(0)
  const submitted = await finishSubmitting(a.pod)
  const rows = await allFinal(runtime, submitted)
  expect(rows.length).toBe(submitted)
  checkLedger(store)
  expect(exited(), `a exited:\n${a.pod.stderr()}`).toBe(false)
}, 120_000)

it("a link slower than the lease allows: the pod stops its runs before its lease could end, and works again once the link is fast", async () => {
  // Every fourth execution's activities take longer than the pod's own deadline (TTL × 4/5), so
  // some are in flight when it must stop.
  const { store, runtime, proxy, a, owned, exited } = await cluster("crawl", {
    slowEvery: 4,
    slowMillis: 4_000
  })
  await a.pod.waitFor((m) => (m.submitted ?? 0) >= 50, 30_000)

  const slowedAt = Date.now()
  proxy.delay(1_500) // a round trip of 3 s: past TTL × 4/5, no renewal can count
  await a.pod.waitFor((m) => m.level === "WARN" && JSON.stringify(m.message).includes("renewed"), 2 * TTL)
  // b takes a's shards once a's lease ended, not before: a's session was still there.
  await eventually("b owns every shard", async () => (await owned("b")) === 300, 4 * TTL)
  expect(Date.now() - slowedAt).toBeGreaterThanOrEqual(TTL - 500)
  const stopsOfA = ledger(store).filter((line) => line.p === "a" && line.k === "stop" && line.t >= slowedAt)
  expect(stopsOfA.length).toBeGreaterThan(0)
  // a's last renewal that counted was sent before the link slowed: by its own clock it stopped
  // before that lease could end, and started nothing after.
  const linesOfA = ledger(store).filter((line) => line.p === "a" && line.t >= slowedAt)
  for (const line of linesOfA) expect(line.t).toBeLessThan(slowedAt + TTL)

  const healedAt = Date.now()
  proxy.delay(0)
  await eventually("a runs attempts again", async () => ledger(store).some(startedBy("a", healedAt)), 30_000)
  const submitted = await finishSubmitting(a.pod)
  const rows = await allFinal(runtime, submitted)
  expect(rows.length).toBe(submitted)
  checkLedger(store)
  expect(exited(), `a exited:\n${a.pod.stderr()}`).toBe(false)
}, 120_000)
