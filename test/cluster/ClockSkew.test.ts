/**
 * Leases under clock skew, with real processes: two pods (`pod.ts`) on one real SQLite file or one
 * real PostgreSQL database, one with its effect `Clock` half a lease behind the host's ("slow"),
 * the other half a lease ahead ("fast"): a skew of a whole lease between them. Whatever their
 * clocks say, no shard may run in two pods at once.
 *
 * The first pod to start is the shard manager and owns every shard; it submits work; the other
 * joins and gets its share. Then the slow pod stops renewing its lease but keeps running: by its
 * own clock it stops its runs (TTL × 4/5 after its last renewal was sent), and only once its lease
 * ended does the fast pod take its shards. Both orders:
 * - slow first: a fast pod that judged the slow one's stored lease end by its own clock would find
 *   it expired the moment it was written, take the manager's lease and every shard while the slow
 *   pod still ran them;
 * - fast first: the fast pod is the manager throughout, and it is the one that judges when the
 *   slow pod's lease ends.
 *
 * The ledger of activity attempts (host times) shows any execution that ran in two pods at once.
 */
import { afterEach, describe, expect, it } from "vitest"
import {
  allFinal,
  checkLedger,
  eventually,
  freshStore,
  lostShards,
  type PodOptions,
  type Reader,
  reader,
  readyPod,
  removeStore,
  type Store,
  shards
} from "./harness.ts"

const TTL = 3_000
const SHARDS = 300
const SUBMITTED = 200
/** The pods' clocks, ahead of the host's (behind when negative). */
const OFFSETS = { slow: -TTL / 2, fast: TTL / 2 } as const

describe.each(["sqlite", "pg"] as const)("clock skew of a whole lease between two pods on %s", (kind) => {
  const cleanup: Array<() => Promise<void> | void> = []
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step()
  })

  const pod = async (store: Store, podId: "slow" | "fast", options: PodOptions = {}) => {
    // Attempts longer than an ownership interval (TTL / 10): some are in flight at every move.
    const started = await readyPod(store, {
      podId,
      clockOffsetMillis: OFFSETS[podId],
      leaseTtlMillis: TTL,
      activityMillis: 400,
      ...options
    })
    cleanup.push(() => started.pod.dispose())
    return started.pod
  }

  const owned = async (runtime: Reader, podId: string) =>
    (await shards(runtime)).filter((shard) => shard.owner === podId).length

  it.each(["slow", "fast"] as const)(
    "the %s pod starts first: no shard runs in both at once, also when the slow pod stops renewing",
    async (first) => {
      const store = await freshStore(kind, `skew-${first}`)
      cleanup.push(() => removeStore(store))
      const runtime = reader(store)
      cleanup.push(() => runtime.dispose())

      const submitter = await pod(store, first, {
        submit: { prefix: "skew", count: SUBMITTED, perSecond: 20 }
      })
      await submitter.waitFor((m) => (m.submitted ?? 0) >= 50, 30_000)
      const second = first === "slow" ? "fast" : "slow"
      const joiner = await pod(store, second)
      const slow = first === "slow" ? submitter : joiner
      await eventually(
        `the ${second} pod owns its share`,
        async () => (await owned(runtime, second)) >= SHARDS / 3
      )
      // Both run work side by side for a while; meanwhile nothing ran in two pods at once.
      await submitter.waitFor((m) => (m.submitted ?? 0) >= 100, 30_000)
      checkLedger(store)

      slow.send({ stopRenewing: true })
      await slow.waitFor((m) => m.renewalsStopped !== undefined)
      const stoppedAt = Date.now()
      await eventually(
        "the fast pod owns every shard",
        async () => (await owned(runtime, "fast")) === SHARDS,
        4 * TTL
      )
      // Taken over once the slow pod's lease had ended (it was alive: no early takeover).
      expect(Date.now() - stoppedAt).toBeGreaterThanOrEqual(TTL - 500)

      await submitter.waitFor((m) => m.submitted === SUBMITTED, 30_000)
      await allFinal(runtime, SUBMITTED)
      // The fast pod ran what the slow one had in flight only once the slow one had stopped it.
      const attempts = checkLedger(store)
      expect(new Set(attempts.map((attempt) => attempt.p))).toEqual(new Set(["slow", "fast"]))
      // The slow pod, still running, had stopped its runs by its own clock.
      expect(slow.messages.some(lostShards)).toBe(true)
      expect(slow.messages.some((m) => m.stopped !== undefined)).toBe(false)
    }
  )
})
