/**
 * A pod process restarted with the same pod id on PostgreSQL, its predecessor's registration still
 * in the store. The predecessor's session ended (the server saw its process die, or ended it), but
 * a session can end while its process runs on: the predecessor is `suspect` until its lease has
 * passed, and the store answers the new process's registration busy meanwhile. The new process must
 * wait for that lease, however long it is and whatever its own TTL, or for a proof that the
 * predecessor stopped (nothing listens at its address on this host any more), and then join: it
 * must neither give up after a number of tries (the process exited) nor join earlier without proof.
 */
import { Effect, ManagedRuntime } from "effect"
import { SqlClient } from "effect/sql/SqlClient"
import { afterEach, expect, it } from "vitest"
import { ShardStore } from "../../src/index.ts"
import { PostgresJournal } from "../../src/postgres.ts"
import {
  eventually,
  freshStore,
  type Reader,
  read,
  reader,
  readyPod,
  removeStore,
  type Store
} from "./harness.ts"

const cleanup: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step()
})

/** The store's record of `podId`, as the store judges it now. */
const podOf = async (runtime: Reader, podId: string) =>
  (
    await read(
      runtime,
      Effect.flatMap(ShardStore.ShardStore, (store) => store.pods)
    )
  ).find((pod) => pod.podId === podId)

/** Ends the PostgreSQL session that holds `podId`'s liveness marker, as an operator (or a reset) would. */
const terminateSession = async (store: Store, podId: string) => {
  const runtime = ManagedRuntime.make(PostgresJournal.clientLayer({ url: store.location, maxConnections: 1 }))
  try {
    await runtime.runPromise(
      Effect.gen(function* () {
        const sql = yield* SqlClient
        const [row] = yield* sql<{
          readonly session: string
        }>`SELECT session FROM effect_cluster_pods WHERE pod_id = ${podId}`
        yield* sql`SELECT pg_terminate_backend(${Number(row!.session.split(":")[0])})`
      })
    )
  } finally {
    await runtime.dispose()
  }
}

const setUp = async (name: string) => {
  const store = await freshStore("pg", name)
  cleanup.push(() => removeStore(store))
  const runtime = reader(store)
  cleanup.push(() => runtime.dispose())
  return { store, runtime }
}

it("a pod SIGKILLed and restarted with the same id, alone in its cluster, joins long before its predecessor's lease ends: nothing listens at the old address", async () => {
  const { store, runtime } = await setUp("restart-proven")
  // A lease of 30 s: the bounded retries of a busy registration (one TTL) would end about when it does.
  const first = await readyPod(store, { podId: "a", leaseTtlMillis: 30_000 })
  cleanup.push(() => first.pod.dispose())
  first.pod.kill("SIGKILL")
  await first.pod.exited
  await eventually(
    "the predecessor is suspect",
    async () => (await podOf(runtime, "a"))?.liveness === "suspect"
  )
  const predecessor = (await podOf(runtime, "a"))!
  const second = await readyPod(store, { podId: "a", leaseTtlMillis: 30_000 })
  cleanup.push(() => second.pod.dispose())
  const now = (await podOf(runtime, "a"))!
  expect(now.registeredAt).toBeGreaterThan(predecessor.registeredAt)
  expect(now.registeredAt).toBeLessThan(predecessor.leaseUntil)
  expect(now.liveness).toBe("live")
}, 90_000)

it("a pod restarted with the same id while its predecessor is suspect and unproven (frozen) waits for the predecessor's lease, longer than its own TTL, then joins", async () => {
  const { store, runtime } = await setUp("restart-wait")
  const first = await readyPod(store, { podId: "a", leaseTtlMillis: 8_000 })
  cleanup.push(() => first.pod.dispose())
  // Frozen, its listener accepts connections but answers nothing: no proof that it stopped.
  first.pod.kill("SIGSTOP")
  await terminateSession(store, "a")
  await eventually(
    "the predecessor is suspect",
    async () => (await podOf(runtime, "a"))?.liveness === "suspect"
  )
  const predecessor = (await podOf(runtime, "a"))!
  // Its own TTL (2 s) is a quarter of the predecessor's lease: it must wait past it, not give up.
  const second = await readyPod(store, { podId: "a", leaseTtlMillis: 2_000 })
  cleanup.push(() => second.pod.dispose())
  expect(
    second.pod.messages.some((m) =>
      JSON.stringify(m.message ?? "").includes("an earlier process of this pod id")
    )
  ).toBe(true)
  const now = (await podOf(runtime, "a"))!
  expect(now.registeredAt).toBeGreaterThanOrEqual(predecessor.leaseUntil)
  expect(now.liveness).toBe("live")
}, 90_000)
