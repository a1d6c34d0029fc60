/**
 * A pod whose PostgreSQL session ends while its process runs on: `pg_terminate_backend`, a
 * middlebox that resets the connection, a server restart. The server drops the session's advisory
 * lock (the pod's liveness marker), but the pod may not hear of it for a while (its path to the
 * server hangs, or is slow), and runs its activities meanwhile. The others must not take its
 * shards at once: the pod is `suspect` until its lease has passed (it stops by its own clock
 * before), or until it re-registered itself after stopping its runs. Without that rule both cases
 * ran an execution in two pods at once.
 */
import { Effect, ManagedRuntime } from "effect"
import { SqlClient } from "effect/sql/SqlClient"
import { afterEach, expect, it } from "vitest"
import { PostgresJournal } from "../../src/postgres.ts"
import {
  allFinal,
  checkLedger,
  eventually,
  freshStore,
  ledger,
  lostShards,
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

/** Two pods, `a` through a proxy to PostgreSQL, running long activities on every shard. */
const cluster = async (name: string) => {
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
    activityMillis: 1_500,
    submit: { prefix: "x", count: COUNT, perSecond: 100 }
  })
  cleanup.push(() => a.pod.dispose())
  const b = await readyPod(store, { podId: "b", leaseTtlMillis: TTL, activityMillis: 1_500 })
  cleanup.push(() => b.pod.dispose())
  await a.pod.waitFor((m) => m.submitted === COUNT, 30_000)
  await eventually(
    "a runs attempts",
    async () => ledger(store).filter((l) => l.p === "a" && l.k === "start").length > 5
  )
  await eventually("b owns shards", async () => (await shards(runtime)).some((s) => s.owner === "b"))
  return { store, runtime, proxy, a, b }
}

it("a pod cut off from PostgreSQL whose session the server ended keeps its shards until its lease passed: no execution runs twice at once", async () => {
  const { store, runtime, proxy, a } = await cluster("cut-session")
  proxy.pause()
  const terminatedAt = Date.now()
  await admin(store).terminate("a")
  // a cannot hear of it: it stops by its own clock; only then may b run a's executions.
  // (20 s: a backstop for a loaded machine, not a bound.)
  await a.pod.waitFor(lostShards, 20_000)
  await eventually(
    "b owns every shard",
    async () => (await shards(runtime)).every((s) => s.owner === "b"),
    4 * TTL
  )
  await eventually(
    "b started an attempt",
    async () => ledger(store).some((l) => l.p === "b" && l.k === "start" && l.t > terminatedAt),
    4 * TTL
  )
  checkLedger(store)
  // Healed, a learns that its session ended, joins again with a new one, and the work completes.
  proxy.resume()
  await allFinal(runtime, COUNT, 60_000)
  checkLedger(store)
}, 120_000)

it("a pod on a slow link whose session the server ended learns it late; its shards move only once it stopped them", async () => {
  const { store, runtime, proxy, a } = await cluster("late-session")
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
