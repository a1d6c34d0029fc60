/**
 * The verification runner's checkers (`verify/checkers.ts`), each fed a history with the anomaly
 * it looks for (it must flag it, naming what broke) and the same history without it (nothing).
 * A checker that cannot fail is worth nothing.
 */
import { describe, expect, it } from "vitest"
import {
  checkAll,
  exactlyOnceInOrder,
  type HistoryEvent,
  linearizableCounters,
  liveAfterHeal,
  noDuplicateAttempts,
  noOverlappingOwners,
  nothingLost,
  recoveries
} from "../../verify/checkers.ts"

const clean: ReadonlyArray<HistoryEvent> = [
  { type: "acquire", shard: 1, pod: "a", epoch: 1, at: 0 },
  { type: "start-acked", executionId: "order-1", at: 10 },
  { type: "attempt", executionId: "order-1", step: "charge", attempt: 1, pod: "a", at: 12 },
  { type: "release", shard: 1, pod: "a", epoch: 1, at: 20 },
  { type: "acquire", shard: 1, pod: "b", epoch: 2, at: 21 },
  { type: "attempt", executionId: "order-1", step: "charge", attempt: 2, pod: "b", at: 25 },
  { type: "ended", executionId: "order-1", status: "succeeded", at: 30 },
  { type: "message-acked", entity: "counter-1", messageId: "m1", sender: "s", senderSeq: 1, at: 11 },
  { type: "message-acked", entity: "counter-1", messageId: "m2", sender: "s", senderSeq: 2, at: 12 },
  { type: "processed", entity: "counter-1", messageId: "m1", sender: "s", senderSeq: 1, pod: "a", at: 13 },
  { type: "processed", entity: "counter-1", messageId: "m2", sender: "s", senderSeq: 2, pod: "b", at: 22 },
  { type: "increment", entity: "counter-1", invokedAt: 10, ackedAt: 13 },
  { type: "increment", entity: "counter-1", invokedAt: 11, ackedAt: 22 },
  { type: "read", entity: "counter-1", invokedAt: 15, completedAt: 16, value: 1 },
  { type: "read", entity: "counter-1", invokedAt: 23, completedAt: 24, value: 2 }
]

const liveness = { healedAt: 20, boundMillis: 100 }

describe("the verification checkers", () => {
  it("find nothing in a history without anomalies", () => {
    expect(checkAll(clean, liveness)).toEqual([])
  })

  it("a lost execution and a lost message are flagged", () => {
    const lostExecution = clean.filter((e) => !(e.type === "ended" && e.executionId === "order-1"))
    expect(nothingLost(lostExecution).map((a) => a.message)).toEqual([
      "execution order-1, acknowledged at 10, is not in the store"
    ])
    const stuck = clean.map((e) => (e.type === "ended" ? { ...e, status: "running" as const } : e))
    expect(nothingLost(stuck)[0]?.message).toContain("never ended (running)")
    const lostMessage = clean.filter((e) => !(e.type === "processed" && e.messageId === "m2"))
    expect(nothingLost(lostMessage).map((a) => a.message)).toEqual([
      "message m2 to counter-1, acknowledged at 12, was never processed"
    ])
  })

  it("an attempt that ran twice is flagged with both pods", () => {
    const twice: ReadonlyArray<HistoryEvent> = [
      ...clean,
      { type: "attempt", executionId: "order-1", step: "charge", attempt: 2, pod: "a", at: 26 }
    ]
    expect(noDuplicateAttempts(twice).map((a) => a.message)).toEqual([
      "attempt order-1/charge#2 ran twice: in b at 25 and in a at 26"
    ])
  })

  it("two pods running one shard at once are flagged, and an epoch going back", () => {
    const overlap: ReadonlyArray<HistoryEvent> = [
      ...clean.filter((e) => e.type !== "release"),
      { type: "release", shard: 1, pod: "a", epoch: 1, at: 23 }
    ]
    const found = noOverlappingOwners(overlap)
    expect(found).toHaveLength(1)
    expect(found[0]?.message).toContain("shard 1 ran in a (epoch 1, 0–23) and b (epoch 2, 21–")
    const backwards: ReadonlyArray<HistoryEvent> = [
      { type: "acquire", shard: 7, pod: "a", epoch: 5, at: 0 },
      { type: "release", shard: 7, pod: "a", epoch: 5, at: 10 },
      { type: "acquire", shard: 7, pod: "b", epoch: 4, at: 11 }
    ]
    expect(noOverlappingOwners(backwards).map((a) => a.message)).toEqual([
      "shard 7: epoch 4 (b) began after epoch 5 (a)"
    ])
  })

  it("a message processed twice, or out of its sender's order, is flagged", () => {
    const twice: ReadonlyArray<HistoryEvent> = [
      ...clean,
      { type: "processed", entity: "counter-1", messageId: "m1", sender: "s", senderSeq: 1, pod: "b", at: 30 }
    ]
    expect(exactlyOnceInOrder(twice).map((a) => a.checker)).toEqual(["exactly once"])
    const reordered = clean.map((e) =>
      e.type === "processed" ? { ...e, at: e.messageId === "m1" ? 22 : 13 } : e
    )
    const swapped = [...reordered].sort((a, b) => ("at" in a ? a.at : 0) - ("at" in b ? b.at : 0))
    expect(exactlyOnceInOrder(swapped).map((a) => a.message)).toEqual([
      "counter-1 processed message 1 of s after its message 2"
    ])
  })

  it("a stale read of a counter, or a read of more than was sent, is flagged", () => {
    // The second increment was acknowledged at 22, before this read was invoked: it must see 2.
    const stale: ReadonlyArray<HistoryEvent> = [
      ...clean,
      { type: "read", entity: "counter-1", invokedAt: 25, completedAt: 26, value: 1 }
    ]
    // Stale twice over: below the acknowledged increments, and below the read of 2 answered at 24.
    expect(linearizableCounters(stale).map((a) => a.message)).toEqual([
      "counter-1 read 1 (invoked 25) after a read of 2 was answered (24): the counter went back",
      "counter-1 read 1 (invoked 25, answered 26); it had to lie in [2, 2]"
    ])
    const tooMuch: ReadonlyArray<HistoryEvent> = [
      ...clean,
      { type: "read", entity: "counter-1", invokedAt: 5, completedAt: 9, value: 1 }
    ]
    expect(linearizableCounters(tooMuch)[0]?.message).toContain("it had to lie in [0, 0]")
    // An increment with no acknowledgement may or may not be seen.
    const unknown: ReadonlyArray<HistoryEvent> = [
      { type: "increment", entity: "c", invokedAt: 1, ackedAt: undefined },
      { type: "read", entity: "c", invokedAt: 5, completedAt: 6, value: 0 },
      { type: "read", entity: "c", invokedAt: 7, completedAt: 8, value: 1 }
    ]
    expect(linearizableCounters(unknown)).toEqual([])
    // ...but once a read saw it, a later read cannot miss it.
    const wentBack: ReadonlyArray<HistoryEvent> = [
      ...unknown,
      { type: "read", entity: "c", invokedAt: 9, completedAt: 10, value: 0 }
    ]
    expect(linearizableCounters(wentBack).map((a) => a.message)).toEqual([
      "c read 0 (invoked 9) after a read of 1 was answered (8): the counter went back"
    ])
  })

  it("an execution that ended long after the cluster healed is flagged", () => {
    expect(liveAfterHeal(20, 5)(clean).map((a) => a.message)).toEqual([
      "execution order-1 ended 10 ms after the last fault healed (bound 5 ms)"
    ])
  })
})

describe("the fault schedule", () => {
  it("is the same for the same seed, and another for another seed", async () => {
    const { POD_FAULTS, schedule } = await import("../../verify/schedule.ts")
    const options = { durationMillis: 600_000, pods: 3, leaseMillis: 3_000 }
    const first = schedule(42, options)
    expect(schedule(42, options)).toEqual(first)
    expect(schedule(43, options)).not.toEqual(first)
    expect(first.length).toBeGreaterThan(50)
    // Never two faults at once on one pod; every kind of fault appears over ten minutes.
    for (const pod of [0, 1, 2]) {
      const ofPod = first.filter((fault) => fault.pod === pod)
      for (let i = 1; i < ofPod.length; i++) {
        expect(ofPod[i]!.at).toBeGreaterThan(ofPod[i - 1]!.at + ofPod[i - 1]!.millis)
      }
    }
    expect(new Set(first.map((fault) => fault.kind))).toEqual(new Set(POD_FAULTS))
  })
})

describe.each(["SQLITE_FAULTS", "POSTGRES_FAULTS"] as const)("the %s schedule", (kinds) => {
  it("adds the store's faults, which no other fault overlaps", async () => {
    const schedules = await import("../../verify/schedule.ts")
    const faults = schedules.schedule(11, {
      durationMillis: 600_000,
      pods: 3,
      leaseMillis: 3_000,
      kinds: schedules[kinds]
    })
    expect(new Set(faults.map((fault) => fault.kind))).toEqual(new Set(schedules[kinds]))
    for (const storeFault of faults.filter(
      (fault) => fault.kind === "terminate" || fault.kind === "db-restart" || fault.kind === "disk-full"
    )) {
      const end = storeFault.at + storeFault.millis
      const during = faults.filter(
        (fault) => fault !== storeFault && fault.at >= storeFault.at && fault.at <= end
      )
      expect(during).toEqual([])
    }
    // The slow paths say how slow; the clock skews how far.
    for (const fault of faults) {
      if (fault.kind.endsWith("-slow")) expect(fault.delayMillis).toBeGreaterThanOrEqual(50)
    }
  })

  it("recoveries: a pod's recovery warning is an anomaly naming the process and the executions; other lines are not", () => {
    const warning = JSON.stringify({
      message:
        "recovery: 1 execution(s) were running with no run on this pod, which owns their shards; started them: p0i0s1-4",
      level: "WARN"
    })
    const output = [
      '{"ready":"pod-0"}',
      JSON.stringify({ message: "the journal recovered after 101 ms", level: "INFO" }),
      JSON.stringify({ message: "a recovery: not at the start", level: "WARN" }),
      "[12:00:00.000] WARN (#1): recovery: printed by the pretty logger, not the pod's",
      warning
    ].join("\n")
    expect(recoveries("pod-0-1", output)).toEqual([
      {
        checker: "recovery",
        message:
          "pod-0-1: recovery: 1 execution(s) were running with no run on this pod, which owns their shards; started them: p0i0s1-4"
      }
    ])
    expect(recoveries("pod-0-1", output.replace(warning, ""))).toEqual([])
  })
})
