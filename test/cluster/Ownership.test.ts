/**
 * One owner per execution, with real processes: pods are child processes (`pod.ts`) on one real
 * SQLite file or one real PostgreSQL database; the test deploys over them, SIGKILLs, SIGSTOPs and
 * SIGTERMs them, and checks the ledger their activities write (no attempt twice, no execution in
 * two pods at once) and the store (every execution completes with its result).
 */
import { afterEach, describe, expect, it } from "vitest"
import type * as ChildPod from "../support/ChildPod.ts"
import {
  allFinal,
  checkLedger,
  eventually,
  freeze,
  freshStore,
  ledger as ledgerOf,
  lostShards,
  type PodMessage,
  type Reader,
  reader,
  readyPod,
  refusedWrite,
  removeStore,
  type Store,
  shards,
  startPod
} from "./harness.ts"

const TTL = 3_000

const resultOf = (id: string) => JSON.stringify({ _tag: "Success", value: `${id}:reserve+charge` })

describe.each(["sqlite", "pg"] as const)("ownership across processes on %s", (kind) => {
  const cleanup: Array<() => Promise<void> | void> = []
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step()
  })

  const setup = async (name: string) => {
    const store = await freshStore(kind, name)
    const runtime = reader(store)
    cleanup.push(() => removeStore(store))
    cleanup.push(() => runtime.dispose())
    return { store, runtime }
  }

  const pod = async (store: Store, options: Parameters<typeof readyPod>[1]) => {
    const started = await readyPod(store, { leaseTtlMillis: TTL, ...options })
    cleanup.push(() => started.pod.dispose())
    return started
  }

  const owners = async (runtime: Reader) => {
    const counts = new Map<string | null, number>()
    for (const shard of await shards(runtime)) counts.set(shard.owner, (counts.get(shard.owner) ?? 0) + 1)
    return counts
  }

  const expectResults = async (runtime: Reader, count: number) => {
    const rows = await allFinal(runtime, count)
    for (const row of rows) expect(row.result, row.executionId).toBe(resultOf(row.executionId))
    return rows
  }

  it("an overlapping deploy: old and new pods side by side, then the old one stops; nothing runs twice or in two pods at once", async () => {
    const { store, runtime } = await setup("deploy")
    const old = await pod(store, { podId: "old", submit: { prefix: "old", count: 150, perSecond: 100 } })
    await old.pod.waitFor((m) => (m.submitted ?? 0) >= 50)
    const fresh = await pod(store, { podId: "new", submit: { prefix: "new", count: 150, perSecond: 100 } })
    // Both run side by side until the new pod has its share.
    await eventually("the new pod owns shards", async () => ((await owners(runtime)).get("new") ?? 0) >= 100)
    old.pod.kill("SIGTERM")
    await old.pod.waitFor((m) => m.stopped !== undefined, 30_000)
    expect((await old.pod.exited).code).toBe(0)
    await fresh.pod.waitFor((m) => m.submitted === 150, 30_000)
    const stored = (await shards(runtime)).length
    const rows = await expectResults(runtime, 200)
    expect(rows.filter((row) => row.executionId.startsWith("new-"))).toHaveLength(150)
    const attempts = checkLedger(store)
    expect(new Set(attempts.map((a) => a.p))).toEqual(new Set(["old", "new"]))
    expect((await owners(runtime)).get("new")).toBe(stored)
  })

  it("SIGKILL of one pod of three mid-traffic: its shards move within TTL + 1 s and all 1,000 executions complete once", async () => {
    const { store, runtime } = await setup("sigkill")
    const a = await pod(store, {
      podId: "a",
      activityMillis: 5,
      submit: { prefix: "k", count: 1000, perSecond: 250 }
    })
    await pod(store, { podId: "b", activityMillis: 5 })
    const c = await pod(store, { podId: "c", activityMillis: 5 })
    await eventually("c owns its share", async () => ((await owners(runtime)).get("c") ?? 0) >= 90)
    await a.pod.waitFor((m) => (m.submitted ?? 0) >= 300, 30_000)
    // c is killed mid-traffic: once it has run attempts of its own (owning shards is not enough:
    // on a loaded machine it may not have started one yet).
    await eventually("c runs attempts", async () => ledgerOf(store).some((line) => line.p === "c"), 30_000)
    const killedAt = Date.now()
    c.pod.kill("SIGKILL")
    expect((await c.pod.exited).signal).toBe("SIGKILL")
    const moved = await eventually(
      "no shard left with c",
      async () => !(await owners(runtime)).has("c"),
      TTL + 5_000
    )
    expect(moved).toBeLessThanOrEqual(TTL + 1_000)
    await a.pod.waitFor((m) => m.submitted === 1000, 30_000)
    await expectResults(runtime, 1000)
    const attempts = checkLedger(store, { c: killedAt })
    expect(attempts.some((attempt) => attempt.p === "c")).toBe(true)
  })

  it("a pod SIGSTOPped past its lease: the others take its shards, and once resumed it records nothing and stops its runs", async () => {
    const { store, runtime } = await setup("sigstop")
    const a = await pod(store, {
      podId: "a",
      activityMillis: 1_500,
      submit: { prefix: "s", count: 30, perSecond: 30 }
    })
    const b = await pod(store, { podId: "b", activityMillis: 1_500 })
    await eventually("b owns its share", async () => ((await owners(runtime)).get("b") ?? 0) >= 100)
    await a.pod.waitFor((m) => m.submitted === 30, 30_000)
    // a is in the middle of activities when it freezes.
    const before = await shards(runtime)
    await freeze(store, a.pod)
    const stoppedAt = Date.now()
    await eventually("b took a's shards", async () => !(await owners(runtime)).has("a"), 4 * TTL)
    // Only once a's lease had run out: a paused pod is alive, so there is no early takeover.
    expect(Date.now() - stoppedAt).toBeGreaterThanOrEqual(TTL - 500)
    const after = await shards(runtime)
    for (const shard of after) {
      const earlier = before.find((s) => s.shard === shard.shard)!
      if (earlier.owner === "a") expect(shard.epoch).toBeGreaterThan(earlier.epoch)
    }
    a.pod.kill("SIGCONT")
    // a notices that it lost its shards — by its own clock, by the store no longer listing it, or
    // by a write of its being refused for its old epoch — and stops its runs.
    await eventually(
      "a reports the loss of its shards",
      async () => a.pod.messages.some((m) => refusedWrite(m) || lostShards(m)),
      15_000
    )
    await expectResults(runtime, 30)
    const lines = checkLedger(store, {}, { allowOverlapOf: new Set(inFlightOf(store, "a", stoppedAt)) })
    // Every outcome recorded for work a had in flight is the new owner's.
    for (const id of inFlightOf(store, "a", stoppedAt)) {
      const late = lines.filter((line) => line.e === id && line.p !== "a")
      expect(late.length, `${id} was run again by b`).toBeGreaterThan(0)
    }
    void b
  })

  it("join, leave and manager death: a new pod gets its share, SIGTERM hands over at once, a dead manager is replaced", async () => {
    const { store, runtime } = await setup("membership")
    const a = await pod(store, {
      podId: "a",
      leaseTtlMillis: 30_000,
      submit: { prefix: "m", count: 400, perSecond: 100 }
    })
    const b = await pod(store, { podId: "b", leaseTtlMillis: 30_000 })
    await eventually("b gets half", async () => (await owners(runtime)).get("b") === 150)
    b.pod.kill("SIGTERM")
    expect((await b.pod.exited).code).toBe(0)
    // No TTL wait (30 s): b handed its shards back when it left.
    const handedBack = await eventually(
      "a owns all again",
      async () => (await owners(runtime)).get("a") === 300,
      10_000
    )
    expect(handedBack).toBeLessThan(10_000)
    const c = await pod(store, { podId: "c", leaseTtlMillis: 30_000 })
    await eventually("c gets half", async () => (await owners(runtime)).get("c") === 150)
    await a.pod.waitFor((m) => (m.submitted ?? 0) >= 300, 30_000)
    // a is the manager (it started first). Kill it: c becomes manager and takes every shard, at
    // once instead of after the 30 s lease: a's process is provably gone (on SQLite its lock file
    // is free; on PostgreSQL its session ended, which alone proves nothing, and nothing listens at
    // its address any more).
    const killedAt = Date.now()
    a.pod.kill("SIGKILL")
    await a.pod.exited
    await eventually("c owns every shard", async () => (await owners(runtime)).get("c") === 300, 10_000)
    const submitted = a.pod.messages.reduce((n, m) => Math.max(n, m.submitted ?? 0), 0)
    await expectResults(runtime, submitted)
    checkLedger(store, { a: killedAt })
    void c
  })

  it("bad configuration: another shard count, a duplicate pod id, an unreachable store: a clear error at start, nothing written", async () => {
    const { store, runtime } = await setup("config")
    await pod(store, { podId: "a" })
    const pods = async () => (await shards(runtime)).map((s) => `${s.shard}:${s.owner}:${s.epoch}`).join(",")
    const before = await pods()
    const failed = async (child: ChildPod.ChildPod<PodMessage>) => {
      const exit = await child.exited
      expect(exit.code).toBe(1)
      return child.stderr()
    }
    const otherCount = startPod(store, { podId: "x", shardCount: 64 })
    cleanup.push(() => otherCount.dispose())
    const countError = await failed(otherCount)
    expect(countError).toContain("ShardCountMismatchError")
    expect(countError).toContain("64")
    expect(countError).toContain("300")
    const duplicate = startPod(store, { podId: "a" })
    cleanup.push(() => duplicate.dispose())
    expect(await failed(duplicate)).toContain("DuplicatePodError")
    expect(await pods()).toBe(before)
    const unreachable = startPod(
      store,
      kind === "sqlite"
        ? { via: `${store.ledger}/journal.db` }
        : { via: "postgres://postgres@127.0.0.1:1/nowhere?connect_timeout=2" }
    )
    cleanup.push(() => unreachable.dispose())
    expect(await failed(unreachable)).toMatch(
      kind === "sqlite"
        ? /JournalError[\s\S]*ledger\.jsonl\/journal\.db[\s\S]*directory cannot be created/
        : /JournalError[\s\S]*(127\.0\.0\.1:1|ECONNREFUSED)/
    )
  })
})

/** The executions `podId` had an attempt in flight for (started, not ended) at `at`. */
const inFlightOf = (store: Store, podId: string, at: number): ReadonlyArray<string> => {
  const lines = ledgerOf(store)
  const ended = new Set(lines.filter((l) => l.k !== "start" && l.t <= at).map((l) => `${l.e}/${l.s}#${l.a}`))
  return [
    ...new Set(
      lines
        .filter((l) => l.k === "start" && l.p === podId && l.t <= at && !ended.has(`${l.e}/${l.s}#${l.a}`))
        .map((l) => l.e)
    )
  ]
}
