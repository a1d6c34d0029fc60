/**
 * A pod under load keeps its lease: two pods as child processes (`pod.ts`) on one real PostgreSQL
 * database or one real SQLite file, a short lease (3 s), and a burst far beyond what they can run
 * at once: each pod's callers `send` thousands of executions at the same moment. The pods keep
 * every shard they had (same owner, same epoch: no lease lapsed, nothing moved), log no stopped
 * runs and no refused writes, and every execution completes with each activity attempt run once.
 */
import { afterEach, describe, expect, it } from "vitest"
import {
  allFinal,
  checkLedger,
  eventually,
  freshStore,
  lostShards,
  type PodMessage,
  reader,
  readyPod,
  refusedWrite,
  removeStore,
  shards
} from "./harness.ts"

const TTL = 3_000
/** Executions each pod's callers send at once. */
const BURST = 15_000

describe.each(["pg", "sqlite"] as const)(
  "two pods under a burst far beyond their capacity, on %s",
  (kind) => {
    const cleanup: Array<() => Promise<void> | void> = []
    afterEach(async () => {
      for (const step of cleanup.splice(0).reverse()) await step()
    })

    it("keep their shards and their leases, and complete every execution once", async () => {
      const store = await freshStore(kind, "overload")
      const runtime = reader(store)
      cleanup.push(() => removeStore(store))
      cleanup.push(() => runtime.dispose())
      const pod = async (podId: string) => {
        const started = await readyPod(store, { podId, leaseTtlMillis: TTL, activityMillis: 1 })
        cleanup.push(() => started.pod.dispose())
        return started.pod
      }
      const a = await pod("a")
      const b = await pod("b")
      // Balanced (half each, no hand-over pending): the manager has no reason to move a shard.
      await eventually("the shards are spread evenly", async () => {
        const owned = await shards(runtime)
        const of = (podId: string) =>
          owned.filter((shard) => shard.owner === podId && shard.nextOwner === null).length
        return of("a") === owned.length / 2 && of("b") === owned.length / 2
      })
      const before = await shards(runtime)
      const [aFrom, bFrom] = [a.messages.length, b.messages.length]

      a.send({ burst: { prefix: "a", count: BURST } })
      b.send({ burst: { prefix: "b", count: BURST } })
      await Promise.all([a, b].map((pod) => pod.waitFor((m: PodMessage) => m.burstDone === BURST, 240_000)))

      // Nothing moved: every shard has the owner and epoch it had before the burst.
      const after = await shards(runtime)
      for (const shard of after) {
        const earlier = before.find((s) => s.shard === shard.shard)!
        expect(`${shard.owner}@${shard.epoch}`, `shard ${shard.shard}`).toBe(
          `${earlier.owner}@${earlier.epoch}`
        )
      }
      for (const [name, live, from] of [
        ["a", a, aFrom],
        ["b", b, bFrom]
      ] as const) {
        const trouble = live.messages.slice(from).filter((m) => lostShards(m) || refusedWrite(m))
        expect(trouble, `${name} lost its lease or had a write refused under the burst`).toEqual([])
      }
      const rows = await allFinal(runtime, 2 * BURST)
      expect(rows.length).toBe(2 * BURST)
      // Every activity attempt ran once: no execution was run twice or in two pods.
      const starts = checkLedger(store)
      expect(starts.length).toBe(2 * 2 * BURST)
    }, 300_000)
  }
)
