/**
 * A pod whose PostgreSQL session ends while its process runs on: `pg_terminate_backend`, a
 * middlebox that resets the connection, a server restart. The server drops the session's advisory
 * lock (the pod's liveness marker), but the pod may not hear of it for a while (its path to the
 * server hangs, or is slow), and runs its activities meanwhile. The others must not take its
 * shards at once: the pod is `suspect` until its lease has passed (it stops by its own clock
 * before), until it re-registered itself after stopping its runs, or until it is proven stopped
 * over the pods' network (`Suspects`): it answers a stand-down once its runs stopped, or nothing
 * listens at its address any more (a crash). Without the rule the first two cases ran an execution
 * in two pods at once; without the proofs the pause and the SIGKILL waited for the lease.
 */
import { Effect, ManagedRuntime } from "effect"
import { SqlClient } from "effect/sql/SqlClient"
import { afterEach, expect, it } from "vitest"
import { ShardStore } from "../../src/index.ts"
import { PostgresJournal } from "../../src/postgres.ts"
import {
  allFinal,
  checkLedger,
  eventually,
  freshStore,
  ledger,
  lostShards,
  type Reader,
  read,
  reader,
  readyPod,
  removeStore,
  type Store,
  shards,
  viaProxy
} from "./harness.ts"

const TTL = 3_000
const COUNT = 100
const cleanup: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step()
})

/** When `podId`'s lease ends (store clock), as the store says now. */
const leaseOf = async (runtime: Reader, podId: string) =>
  (
    await read(
      runtime,
      Effect.flatMap(ShardStore.ShardStore, (store) => store.pods)
    )
  ).find((pod) => pod.podId === podId)?.leaseUntil

/** When (store clock) the first of `ids` went to another owner than `from`. */
const movedAt = async (runtime: Reader, ids: ReadonlySet<number>, from: string) => {
  const moved = (await shards(runtime)).filter(
    (s) => ids.has(s.shard) && s.owner !== from && s.owner !== null
  )
  return Math.min(...moved.map((s) => s.updatedAt))
}

/** The shards `podId` owns now. */
const shardsOf = async (runtime: Reader, podId: string) =>
  new Set((await shards(runtime)).filter((s) => s.owner === podId).map((s) => s.shard))

/** The executions `podId` had an attempt in flight for (started, not ended) at `at`. */
const inFlightOf = (store: Store, podId: string, at: number) => {
  const lines = ledger(store)
  const ended = new Set(lines.filter((l) => l.k !== "start" && l.t <= at).map((l) => `${l.e}/${l.s}#${l.a}`))
  return new Set(
    lines
      .filter((l) => l.k === "start" && l.p === podId && l.t <= at && !ended.has(`${l.e}/${l.s}#${l.a}`))
      .map((l) => l.e)
  )
}

/** A client of the store that is no pod: reads a pod's session, ends it. */
const admin = (store: Store) => {
  const runtime = ManagedRuntime.make(PostgresJournal.clientLayer({ url: store.location, maxConnections: 1 }))
  cleanup.push(() => runtime.dispose())
  /** The liveness marker of `podId`'s registration: `<backend pid>:<key>`. */
  const session = (podId: string) =>
    runtime.runPromise(
      Effect.map(
        Effect.flatMap(
          SqlClient,
          (sql) =>
            sql<{ readonly session: string }>`SELECT session FROM effect_cluster_pods WHERE pod_id = ${podId}`
        ),
        (rows) => rows[0]?.session
      )
    )
  /** Ends the session that holds `podId`'s liveness marker; returns the marker. */
  const terminate = async (podId: string) => {
    const marker = (await session(podId))!
    const [row] = await runtime.runPromise(
      Effect.flatMap(
        SqlClient,
        (sql) =>
          sql<{
            readonly done: boolean
          }>`SELECT pg_terminate_backend(${Number(marker.split(":")[0])}) AS done`
      )
    )
    expect(row?.done).toBe(true)
    return marker
  }
  return { session, terminate }
}

/**
 * Two pods, `a` through a proxy to PostgreSQL, running long activities on every shard (`work`);
 * `settle`: until the shards are evenly spread with no handover pending (one would move a shard of
 * a's on its own, which the tests that compare times must not see).
 */
const cluster = async (
  name: string,
  { ttl = TTL, work = true, settle = true, activityMillis = 1_500 } = {}
) => {
  const store = await freshStore("pg", name)
  cleanup.push(() => removeStore(store))
  const runtime = reader(store)
  cleanup.push(() => runtime.dispose())
  const { proxy, via } = await viaProxy(store)
  cleanup.push(() => proxy.close())
  const a = await readyPod(store, {
    podId: "a",
    via,
    leaseTtlMillis: ttl,
    activityMillis,
    ...(work ? { submit: { prefix: "x", count: COUNT, perSecond: 100 } } : {})
  })
  cleanup.push(() => a.pod.dispose())
  const b = await readyPod(store, { podId: "b", leaseTtlMillis: ttl, activityMillis })
  cleanup.push(() => b.pod.dispose())
  if (work) {
    await a.pod.waitFor((m) => m.submitted === COUNT, 30_000)
    await eventually(
      "a runs attempts",
      async () => ledger(store).filter((l) => l.p === "a" && l.k === "start").length > 5
    )
  }
  if (settle) {
    await eventually("the shards are spread", async () => {
      const all = await shards(runtime)
      return all.every((s) => s.nextOwner === null) && all.filter((s) => s.owner === "b").length === 150
    })
  } else {
    await eventually("b owns shards", async () => (await shards(runtime)).some((s) => s.owner === "b"))
  }
  return { store, runtime, proxy, a, b }
}

it("a pod cut off from PostgreSQL under load whose session the server ended: asked over the network, it stands down; b takes its shards once that is proven or its lease passed, and no execution runs twice at once", async () => {
  // A lease longer than the request timeout (5 s): an eviction without proof would come before it.
  const { store, runtime, proxy, a } = await cluster("cut-session", { ttl: 10_000, settle: false })
  proxy.pause()
  const terminatedAt = Date.now()
  await admin(store).terminate("a")
  // a cannot hear of it from the store; b asks it over the network: it stops its runs. A run
  // whose write is on the wire to the hung store cannot end, so that may prove nothing in time:
  // then b waits for a's lease. (30 s: a backstop for a loaded machine, not a bound.)
  await a.pod.waitFor(lostShards, 30_000)
  expect(a.pod.messages.some((m) => lostShards(m) && JSON.stringify(m.message).includes("stands down"))).toBe(
    true
  )
  await eventually(
    "b owns every shard",
    async () => (await shards(runtime)).every((s) => s.owner === "b"),
    30_000
  )
  await eventually(
    "b started an attempt",
    async () => ledger(store).some((l) => l.p === "b" && l.k === "start" && l.t > terminatedAt),
    30_000
  )
  checkLedger(store)
  // Healed, a learns that its session ended, joins again with a new one, and the work completes.
  proxy.resume()
  await allFinal(runtime, COUNT, 60_000)
  checkLedger(store)
}, 120_000)

it("an idle pod cut off from PostgreSQL whose session the server ended stands down when asked: its shards move before its lease ends", async () => {
  const { store, runtime, proxy, a } = await cluster("idle-session", { work: false })
  const owned = await shardsOf(runtime, "a")
  expect(owned.size).toBeGreaterThan(0)
  proxy.pause()
  const before = await admin(store).terminate("a")
  const leaseUntil = (await leaseOf(runtime, "a"))!
  await eventually(
    "b owns every shard",
    async () => (await shards(runtime)).every((s) => s.owner === "b"),
    4 * TTL
  )
  // a had no run in flight: it stopped at once when asked, said so, and b evicted it.
  expect(a.pod.messages.some((m) => lostShards(m) && JSON.stringify(m.message).includes("stands down"))).toBe(
    true
  )
  expect(await movedAt(runtime, owned, "a")).toBeLessThan(leaseUntil)
  // Healed, it joins again with a new session and gets its share.
  proxy.resume()
  await eventually("a joined again with a new session", async () => {
    const now = await admin(store).session("a")
    return now !== undefined && now !== before
  })
  await eventually("a owns shards again", async () => (await shardsOf(runtime, "a")).size > 0)
}, 120_000)

it("a SIGKILLed pod: nothing listens at its address any more, so its shards move long before its lease ends", async () => {
  const { store, runtime, a } = await cluster("killed", { ttl: 30_000 })
  const owned = await shardsOf(runtime, "a")
  const leaseUntil = (await leaseOf(runtime, "a"))!
  const killedAt = Date.now()
  a.pod.kill("SIGKILL")
  await a.pod.exited
  await eventually(
    "b owns every shard",
    async () => (await shards(runtime)).every((s) => s.owner === "b"),
    20_000
  )
  // Its lease (30 s) still ran: the store saw its session end, and its address refused connections.
  expect(await movedAt(runtime, owned, "a")).toBeLessThan(leaseUntil)
  await allFinal(runtime, COUNT, 60_000)
  checkLedger(store, { a: killedAt })
}, 120_000)

it("a frozen pod whose session the server ended answers nothing: its shards wait for its lease, and no execution runs twice at once", async () => {
  // A lease longer than the request timeout (5 s): an eviction without proof would come before it.
  const { store, runtime, a } = await cluster("frozen-session", { ttl: 10_000, activityMillis: 5_000 })
  const owned = await shardsOf(runtime, "a")
  a.pod.kill("SIGSTOP")
  const stoppedAt = Date.now()
  await admin(store).terminate("a")
  const leaseUntil = (await leaseOf(runtime, "a"))!
  await eventually(
    "b owns every shard",
    async () => (await shards(runtime)).every((s) => s.owner === "b"),
    30_000
  )
  // No proof that it stopped (its listener accepts, nobody answers): b waited for a's lease.
  expect(await movedAt(runtime, owned, "a")).toBeGreaterThanOrEqual(leaseUntil)
  a.pod.kill("SIGCONT")
  await a.pod.waitFor(lostShards, 30_000)
  await allFinal(runtime, COUNT, 60_000)
  // A frozen process runs nothing: its attempts in flight at the freeze count until then.
  checkLedger(store, {}, { allowOverlapOf: inFlightOf(store, "a", stoppedAt) })
}, 120_000)

it("a pod on a slow link whose session the server ended learns it late; its shards move only once it stopped them", async () => {
  const { store, runtime, proxy, a } = await cluster("late-session", { settle: false })
  const server = admin(store)
  // Every byte between a and the server is held 600 ms: its renewals still count (round trip 1.2 s,
  // within the pod's deadline of TTL × 4/5), but the end of its session reaches it that late.
  proxy.delay(600)
  const before = await server.terminate("a")
  // A backstop, not a bound: on a loaded machine the late news takes longer to arrive.
  await a.pod.waitFor(lostShards, 20_000)
  // Its registration takes a dozen round trips: on a fast link again, it joins with a new session.
  proxy.delay(0)
  await eventually("a joined again with a new session", async () => {
    const now = await server.session("a")
    return now !== undefined && now !== before
  })
  await allFinal(runtime, COUNT, 60_000)
  checkLedger(store)
}, 120_000)
