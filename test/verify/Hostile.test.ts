/**
 * The hostile sender of the verification runner (`verify/hostile.ts`) against two small real
 * clusters, each on its own SQLite file: pods hosting the talk's `Counter` entities
 * (`examples/counter/pod.ts`) while one of them sends 300 increments and decrements, and pods
 * running `Order` workflows (`test/cluster/pod.ts`) while one of them submits 150. During the
 * attack (garbage, oversized and malformed frames, a hang, a flood, misuse of the API, rows that
 * do not decode): every pod stays up and serving, the hostile input is refused as it must be, and
 * what the honest senders sent is exact: the counters read what was sent, every order succeeded,
 * no message and no activity attempt ran twice.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { expectedCounts } from "../../examples/counter/counter.ts"
import { aftermath, attack, describeReport, type HostileReport } from "../../verify/hostile.ts"
import { checkLedger, eventually, executions, reader, type Store, startPod } from "../cluster/harness.ts"
import * as ChildPod from "../support/ChildPod.ts"

const SHARDS = 12
const LEASE = 3_000

const cleanup: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step()
})

const dir = () => {
  const path = mkdtempSync(join(tmpdir(), "hostile-"))
  cleanup.push(() => rmSync(path, { recursive: true, force: true }))
  return path
}

interface CounterLine {
  readonly ready?: string
  readonly sent?: number
  readonly counts?: Record<string, number>
}

const counterPod = (store: string, ledger: string, podId: string, extra: Record<string, unknown> = {}) => {
  const pod = ChildPod.spawn<CounterLine>("examples/counter/pod.ts", {
    args: [JSON.stringify({ store, ledger, podId, shardCount: SHARDS, leaseTtlMillis: LEASE, ...extra })]
  })
  cleanup.push(pod.dispose)
  return pod
}

const show = (report: HostileReport) => describeReport(report).join("\n")

describe("verify/hostile.ts: attack", () => {
  it("against a cluster of counters and one of workflows: pods up, hostile input refused, honest work exact", async () => {
    // The counters: pods a and b, and c which sends 300 messages to 6 counters during the attack.
    const counters = dir()
    const counterStore = join(counters, "journal.db")
    const counterLedger = join(counters, "ledger.jsonl")
    writeFileSync(counterLedger, "")
    const a = counterPod(counterStore, counterLedger, "a")
    const b = counterPod(counterStore, counterLedger, "b")
    for (const pod of [a, b]) await pod.waitFor((line) => line.ready !== undefined, 30_000)
    const sender = counterPod(counterStore, counterLedger, "c", {
      send: { from: 0, count: 300, counters: 6, perSecond: 15 }
    })
    await sender.waitFor((line) => line.ready !== undefined, 30_000)

    // The workflows: pods o1 and o2; o1 submits 150 orders during the attack.
    const orders = dir()
    const orderStore: Store = {
      kind: "sqlite",
      location: join(orders, "journal.db"),
      ledger: join(orders, "ledger.jsonl"),
      dir: orders
    }
    writeFileSync(orderStore.ledger, "")
    const o1 = startPod(orderStore, {
      podId: "o1",
      shardCount: SHARDS,
      leaseTtlMillis: LEASE,
      submit: { prefix: "order", count: 150, perSecond: 8 }
    })
    cleanup.push(o1.dispose)
    const o2 = startPod(orderStore, { podId: "o2", shardCount: SHARDS, leaseTtlMillis: LEASE })
    cleanup.push(o2.dispose)
    for (const pod of [o1, o2]) await pod.waitFor((line) => line.ready !== undefined, 30_000)

    const counterTarget = {
      store: counterStore,
      seed: 7,
      workflow: false as const,
      user: { counter: true, shardCount: SHARDS, leaseTtlMillis: LEASE }
    }
    const orderTarget = {
      store: orderStore.location,
      seed: 11,
      entityType: false as const,
      user: {
        orders: { ledger: orderStore.ledger, activityMillis: 20 },
        shardCount: SHARDS,
        leaseTtlMillis: LEASE
      }
    }
    const [counterReport, orderReport] = await Promise.all([attack(counterTarget), attack(orderTarget)])
    console.log(`counters:\n${show(counterReport)}\norders:\n${show(orderReport)}`)

    // What must hold after the attack: every pod serves, every planted row refused as it must.
    expect(await aftermath(counterTarget, counterReport)).toEqual([])
    expect(await aftermath(orderTarget, orderReport)).toEqual([])
    const kinds = (report: HostileReport) => new Set(report.actions.map((action) => action.kind))
    expect(kinds(counterReport)).toEqual(new Set(["network", "api", "store"]))
    expect(kinds(orderReport)).toEqual(new Set(["network", "api", "store"]))

    // The honest counters are exact, and no message ran twice.
    await sender.waitFor((line) => line.sent === 300, 60_000)
    const expected = expectedCounts(300, 6)
    let counts: Record<string, number> | undefined
    for (let round = 0; round < 100 && JSON.stringify(counts) !== JSON.stringify(expected); round++) {
      sender.skipReceived()
      sender.send({ get: 6 })
      counts = (await sender.waitFor((line) => line.counts !== undefined, 30_000)).counts
      if (JSON.stringify(counts) !== JSON.stringify(expected)) await new Promise((r) => setTimeout(r, 200))
    }
    expect(counts).toEqual(expected)
    const handled = readFileSync(counterLedger, "utf8")
      .split("\n")
      .filter((line) => line.length > 0)
      .map((line) => JSON.parse(line) as { m: string })
      .filter((line) => line.m.startsWith("m-"))
    expect(new Set(handled.map((line) => line.m)).size).toBe(handled.length)

    // Every honest order succeeded, no activity attempt twice, no two pods running one at once.
    await o1.waitFor((line) => line.submitted === 150, 60_000)
    const runtime = reader(orderStore)
    cleanup.push(() => runtime.dispose())
    const succeeded = async () =>
      (await executions(runtime)).filter(
        (row) => row.executionId.startsWith("order-") && row.status === "succeeded"
      )
    await eventually("every honest order to succeed", async () => (await succeeded()).length === 150, 60_000)
    checkLedger(orderStore)

    // No pod crashed.
    for (const pod of [a, b, sender, o1, o2]) {
      expect(await Promise.race([pod.exited.then(() => "exited"), Promise.resolve("running")])).toBe(
        "running"
      )
    }
  }, 240_000)
})
