/**
 * A pod frozen (SIGSTOP) past its lease in the middle of activity attempts runs no further line of
 * them when it resumes: two pods as child processes (`pod.ts`) on one real SQLite file or one real
 * PostgreSQL database. Pod a stops itself at the instant one of its attempts' sleep is due (its
 * timer is the next to fire when it resumes, ahead of the pod's lease watchdog: see `pod.ts`), with
 * more attempts asleep; pod b takes a's shards at higher epochs and starts its own attempts of a's
 * executions; then a gets SIGCONT. Each sleeping attempt's timer then fires and would run the body's
 * next line (the "end" of the ledger) unless a notices first, by its own clock, that its lease
 * lapsed. The ledger must show every attempt a had in flight stopped ("stop": interrupted), none
 * ended, and no line of a's attempts written after the freeze under a (shard, epoch) a held then.
 */
import { afterEach, describe, expect, it } from "vitest"
import type * as ChildPod from "../support/ChildPod.ts"
import {
  allFinal,
  checkLedger,
  eventually,
  freshStore,
  isStopped,
  type LedgerLine,
  ledger as ledgerOf,
  type PodMessage,
  type Reader,
  reader,
  readyPod,
  removeStore,
  type Store,
  shards,
  writeLockFree
} from "./harness.ts"

const TTL = 3_000
/** Each attempt sleeps this long: shorter than the TTL, so every sleep is due when a resumes. */
const ACTIVITY = 1_000
/** Submitted by a, 20 a second: attempts keep starting until well after the freeze. */
const EXECUTIONS = 200

const attemptKey = (line: LedgerLine) => `${line.e}/${line.s}#${line.a}`

/** The attempts `podId` had started and not ended (nor stopped) at `at`. */
const inFlight = (store: Store, podId: string, at: number): ReadonlyArray<LedgerLine> => {
  const lines = ledgerOf(store).filter((line) => line.t <= at)
  const over = new Set(lines.filter((line) => line.k !== "start").map(attemptKey))
  return lines.filter((line) => line.k === "start" && line.p === podId && !over.has(attemptKey(line)))
}

/**
 * Asks `pod` to stop itself in its next attempt (`freezeInAttempt`) and waits until it is stopped;
 * returns the attempt's key. On SQLite a pod stopped inside a write transaction would hold the
 * file's write lock and nobody could take its shards: then it is resumed at once (well inside its
 * lease) and asked again.
 */
const freezeInAttempt = async (
  store: Store,
  pod: ChildPod.ChildPod<PodMessage>,
  podId: string
): Promise<string> => {
  for (let tries = 0; tries < 20; tries++) {
    pod.send({ freezeInAttempt: true })
    const freezing = await pod.waitFor((m) => m.freezing === "attempt", 10_000)
    await eventually("the pod is stopped", async () => isStopped(pod.pid), 5_000)
    // On a starved machine the pod's own lease may have run out before the freeze: its runs,
    // that attempt's among them, stopped (a "stop" line) and the freeze is in no attempt. Again.
    const inAttempt = inFlight(store, podId, Date.now()).some((line) => attemptKey(line) === freezing.attempt)
    if (inAttempt && (store.kind === "pg" || (await writeLockFree(store.location)))) return freezing.attempt!
    pod.kill("SIGCONT")
  }
  throw new Error("the pod held the SQLite write lock, or was in no attempt, every time it froze")
}

describe.each(["sqlite", "pg"] as const)("a pod frozen past its lease mid-attempt, on %s", (kind) => {
  const cleanup: Array<() => Promise<void> | void> = []
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step()
  })

  const owners = async (runtime: Reader) => {
    const counts = new Map<string | null, number>()
    for (const shard of await shards(runtime)) counts.set(shard.owner, (counts.get(shard.owner) ?? 0) + 1)
    return counts
  }

  it("resumed after another pod took its shards, it stops its attempts before any of them runs another line", async () => {
    const store = await freshStore(kind, "lapsed")
    const runtime = reader(store)
    cleanup.push(() => removeStore(store))
    cleanup.push(() => runtime.dispose())
    const pod = async (options: Parameters<typeof readyPod>[1]) => {
      const started = await readyPod(store, { leaseTtlMillis: TTL, activityMillis: ACTIVITY, ...options })
      cleanup.push(() => started.pod.dispose())
      return started
    }
    const a = await pod({ podId: "a", submit: { prefix: "l", count: EXECUTIONS, perSecond: 20 } })
    await pod({ podId: "b" })
    await eventually("b owns its share", async () => ((await owners(runtime)).get("b") ?? 0) >= 100)
    await eventually("a has attempts in flight", async () => inFlight(store, "a", Date.now()).length >= 2)

    // The leases a holds: (shard, epoch) as the store records them just before the freeze.
    const held = new Set(
      (await shards(runtime)).filter((s) => s.owner === "a").map((s) => `${s.shard}@${s.epoch}`)
    )
    const subject = await freezeInAttempt(store, a.pod, "a")
    const frozenAt = Date.now()
    const frozen = inFlight(store, "a", frozenAt)
    expect(frozen.map(attemptKey), "the attempt a froze in is in flight").toContain(subject)
    for (const line of frozen) expect(held.has(`${line.sh}@${line.ep}`), attemptKey(line)).toBe(true)
    const frozenExecutions = new Set(frozen.map((line) => line.e))

    // The event, not a time: b has taken a shard of a's and started its own attempt of an
    // execution a was running (a's lease ran out in the store: the freeze is longer than the TTL).
    await eventually(
      "b started an attempt of an execution a was running",
      async () =>
        ledgerOf(store).some(
          (line) => line.k === "start" && line.p === "b" && line.t > frozenAt && frozenExecutions.has(line.e)
        ),
      6 * TTL
    )
    a.pod.kill("SIGCONT")

    // Every attempt a had in flight ends in the ledger, one way or the other.
    const outcome = (line: LedgerLine) =>
      ledgerOf(store).find((l) => l.k !== "start" && l.p === "a" && attemptKey(l) === attemptKey(line))
    await eventually(
      "a's frozen attempts are over",
      async () => frozen.every((line) => outcome(line)),
      15_000
    )
    const outcomes = frozen.map((line) => `${attemptKey(line)}: ${outcome(line)?.k}`)
    // The attempt whose timer was the first to fire on SIGCONT, ahead of the pod's watchdog.
    expect(outcomes, "the attempt a froze in").toContain(`${subject}: stop`)
    expect(outcomes).toEqual(frozen.map((line) => `${attemptKey(line)}: stop`))
    // No attempt body line (a start, an end) of a's under a lease it held at the freeze, after it.
    const late = ledgerOf(store).filter(
      (line) => line.p === "a" && line.t > frozenAt && line.k !== "stop" && held.has(`${line.sh}@${line.ep}`)
    )
    expect(late).toEqual([])

    const rows = await allFinal(runtime, EXECUTIONS, 90_000)
    for (const row of rows) {
      expect(row.result, row.executionId).toBe(
        JSON.stringify({ _tag: "Success", value: `${row.executionId}:reserve+charge` })
      )
    }
    // a's stopped attempts end (in the ledger) after b's began: those executions may overlap.
    checkLedger(store, {}, { allowOverlapOf: frozenExecutions })
  }, 120_000)
})
