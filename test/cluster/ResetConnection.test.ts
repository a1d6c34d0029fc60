/**
 * Connections reset under a pod, again and again: one pod reaches PostgreSQL through a TCP proxy
 * that resets every open connection (an RST, as a middlebox or a restarted NAT sends) each time the
 * pod made a little progress. Statements in flight fail, some of them a COMMIT whose outcome the
 * pod cannot know. The pod must reconnect, retry what is safe to retry, finish every execution,
 * run no attempt twice, and not crash.
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
  removeStore,
  viaProxy
} from "./harness.ts"

const TTL = 3_000
const COUNT = 200
const cleanup: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step()
})

it("a pod whose PostgreSQL connections are reset again and again finishes every execution, runs no attempt twice, and does not crash", async () => {
  const store = await freshStore("pg", "reset")
  cleanup.push(() => removeStore(store))
  const runtime = reader(store)
  cleanup.push(() => runtime.dispose())
  const { proxy, via } = await viaProxy(store)
  cleanup.push(() => proxy.close())

  const a = await readyPod(store, {
    podId: "a",
    via,
    leaseTtlMillis: TTL,
    activityMillis: 20,
    submit: { prefix: "r", count: COUNT, perSecond: 40 }
  })
  cleanup.push(() => a.pod.dispose())
  let exited = false
  void a.pod.exited.then(() => {
    exited = true
  })

  // Reset every connection each time a few more attempts started: until every execution was
  // submitted (acknowledged starts go through resets too), then until every attempt ended.
  const ended = () => ledger(store).filter((line) => line.k === "end").length >= 2 * COUNT
  let resets = 0
  let reconnected = 0
  while (!ended()) {
    const seen = ledger(store).length
    const accepted = proxy.accepted()
    await eventually(
      "the pod makes progress between resets",
      async () => ledger(store).length >= seen + 5 || ended()
    )
    // An attempt starts only once the journal recorded it: progress after a reset went through a
    // connection the pod opened anew (every open one was reset).
    if (proxy.accepted() > accepted) reconnected++
    proxy.reset()
    resets++
  }
  expect(resets).toBeGreaterThanOrEqual(10)
  // The resets cut the pod's connections, and it reconnected after them (the last round may have
  // ended on attempts already under way, so not necessarily after every one).
  expect(reconnected).toBeGreaterThanOrEqual(resets - 1)

  const rows = await allFinal(runtime, COUNT)
  expect(rows.length).toBe(COUNT)
  for (const row of rows) {
    expect(row.result).toBe(JSON.stringify({ _tag: "Success", value: `${row.executionId}:reserve+charge` }))
  }
  checkLedger(store)
  expect(exited, `the pod exited:\n${a.pod.stderr()}`).toBe(false)
}, 120_000)
