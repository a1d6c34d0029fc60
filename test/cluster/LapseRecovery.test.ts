/**
 * A pod frozen a little longer than its own deadline (TTL × 4/5) but less than its lease: on
 * SIGCONT its runs may try to write before its watchdog or its next renewal runs. Those writes are
 * withheld (the pod's own clock says its lease ran out), and then the renewal succeeds: the store
 * never gave the shards away, so the pod keeps them at the same epoch. Found by `npm run verify`
 * (seed 21): the runs whose write was withheld had stopped and nothing started them again, so
 * their executions stayed `running` forever. Every execution must complete.
 */
import { afterEach, describe, expect, it } from "vitest"
import { allFinal, checkLedger, freshStore, reader, readyPod, removeStore } from "./harness.ts"

const TTL = 3_000
/** Past the pod's own deadline (TTL − TTL/5 = 2.4 s), inside its lease in the store (3 s). */
const FROZEN = 2_700
const COUNT = 1_500

describe.each(["sqlite", "pg"] as const)(
  "a pod frozen past its own deadline but not its lease, on %s",
  (kind) => {
    const cleanup: Array<() => Promise<void> | void> = []
    afterEach(async () => {
      for (const step of cleanup.splice(0).reverse()) await step()
    })

    it("resumes every run its lapse stopped: every execution completes, no attempt twice", async () => {
      const store = await freshStore(kind, "lapse")
      cleanup.push(() => removeStore(store))
      const runtime = reader(store)
      cleanup.push(() => runtime.dispose())
      const { pod } = await readyPod(store, {
        podId: "a",
        leaseTtlMillis: TTL,
        // Many attempts in flight at each freeze: on SIGCONT their timers all fire, and the pod's
        // watchdog waits its turn behind them while its (urgent) renewal goes through.
        activityMillis: 300,
        submit: { prefix: "l", count: COUNT, perSecond: 400 }
      })
      cleanup.push(() => pod.dispose())
      // Four freezes while executions are in flight.
      for (const submitted of [200, 500, 800, 1_100]) {
        await pod.waitFor((m) => (m.submitted ?? 0) >= submitted, 30_000)
        pod.kill("SIGSTOP")
        await new Promise((resolve) => setTimeout(resolve, FROZEN))
        pod.kill("SIGCONT")
      }
      await pod.waitFor((m) => m.submitted === COUNT, 60_000)
      const rows = await allFinal(runtime, COUNT, 60_000)
      expect(rows.filter((row) => row.status !== "succeeded")).toEqual([])
      checkLedger(store)
    }, 120_000)
  }
)
