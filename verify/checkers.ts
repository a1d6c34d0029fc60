/**
 * The checkers of the verification runner (issue #20): each reads a history recorded while a
 * cluster ran under faults and returns the anomalies it finds, each naming what broke and where.
 * A checker that finds nothing returns an empty list. They are pure functions of the history, so
 * each can be fed a history with the anomaly it looks for (`test/verify/Checkers.test.ts`).
 *
 * The history is what the runner's ledger records (outside the store): acknowledged starts and
 * messages, activity side effects, shard acquisitions and releases, entity messages processed,
 * counter operations with their invocation and completion times, and how each execution ended.
 */

/** One event of a recorded history. Times are epoch milliseconds of the runner's clock. */
export type HistoryEvent =
  /** A start (`send`/`sendDiscard`) the cluster acknowledged. */
  | { readonly type: "start-acked"; readonly executionId: string; readonly at: number }
  /** How an execution ended, read from the store after the faults stopped and the cluster healed. */
  | {
      readonly type: "ended"
      readonly executionId: string
      readonly status: "succeeded" | "failed" | "interrupted" | "suspended" | "running" | "sleeping"
      readonly at: number
    }
  /** An activity's side effect, appended by the activity itself (keyed by persistence id and attempt). */
  | {
      readonly type: "attempt"
      readonly executionId: string
      readonly step: string
      readonly attempt: number
      readonly pod: string
      readonly at: number
    }
  /** A pod began (acquire) or stopped (release) running a shard at an epoch. */
  | {
      readonly type: "acquire" | "release"
      readonly shard: number
      readonly pod: string
      readonly epoch: number
      readonly at: number
    }
  /** A persisted entity message the cluster acknowledged (stored), in its sender's order. */
  | {
      readonly type: "message-acked"
      readonly entity: string
      readonly messageId: string
      readonly sender: string
      readonly senderSeq: number
      readonly at: number
    }
  /** An entity's handler processed a message (appended by the handler). */
  | {
      readonly type: "processed"
      readonly entity: string
      readonly messageId: string
      readonly sender: string
      readonly senderSeq: number
      readonly pod: string
      readonly at: number
    }
  /** A counter operation: an increment acknowledged (or not), or a `GetCurrent` and its reply. */
  | {
      readonly type: "increment"
      readonly entity: string
      readonly invokedAt: number
      /** When the acknowledgement came; undefined if none came (unknown outcome). */
      readonly ackedAt: number | undefined
    }
  | {
      readonly type: "read"
      readonly entity: string
      readonly invokedAt: number
      readonly completedAt: number
      readonly value: number
    }

/** What a checker found wrong. */
export interface Anomaly {
  readonly checker: string
  readonly message: string
}

const anomaly = (checker: string, message: string): Anomaly => ({ checker, message })

/** Every acknowledged start ends terminal (or suspended by design); every acked message is processed. */
export const nothingLost = (history: ReadonlyArray<HistoryEvent>): ReadonlyArray<Anomaly> => {
  const ended = new Map<string, string>()
  const processed = new Set<string>()
  for (const event of history) {
    if (event.type === "ended") ended.set(event.executionId, event.status)
    if (event.type === "processed") processed.add(`${event.entity}/${event.messageId}`)
  }
  const found: Array<Anomaly> = []
  for (const event of history) {
    if (event.type === "start-acked") {
      const status = ended.get(event.executionId)
      if (status === undefined) {
        found.push(
          anomaly("lost", `execution ${event.executionId}, acknowledged at ${event.at}, is not in the store`)
        )
      } else if (status === "running" || status === "sleeping") {
        found.push(
          anomaly(
            "lost",
            `execution ${event.executionId}, acknowledged at ${event.at}, never ended (${status})`
          )
        )
      }
    }
    if (event.type === "message-acked" && !processed.has(`${event.entity}/${event.messageId}`)) {
      found.push(
        anomaly(
          "lost",
          `message ${event.messageId} to ${event.entity}, acknowledged at ${event.at}, was never processed`
        )
      )
    }
  }
  return found
}

/** No activity attempt (execution, step, attempt number) ran twice. */
export const noDuplicateAttempts = (history: ReadonlyArray<HistoryEvent>): ReadonlyArray<Anomaly> => {
  const seen = new Map<string, { readonly pod: string; readonly at: number }>()
  const found: Array<Anomaly> = []
  for (const event of history) {
    if (event.type !== "attempt") continue
    const key = `${event.executionId}/${event.step}#${event.attempt}`
    const earlier = seen.get(key)
    if (earlier === undefined) seen.set(key, { pod: event.pod, at: event.at })
    else {
      found.push(
        anomaly(
          "duplicate attempt",
          `attempt ${key} ran twice: in ${earlier.pod} at ${earlier.at} and in ${event.pod} at ${event.at}`
        )
      )
    }
  }
  return found
}

/**
 * No two pods ran one shard at the same time: each acquisition holds the shard until its release
 * by the same pod and epoch (or, without one, until the end of the history); two holdings of one
 * shard by different pods never overlap, and a later epoch never precedes an earlier one.
 */
export const noOverlappingOwners = (history: ReadonlyArray<HistoryEvent>): ReadonlyArray<Anomaly> => {
  interface Holding {
    readonly pod: string
    readonly epoch: number
    readonly from: number
    to: number
  }
  const byShard = new Map<number, Array<Holding>>()
  const open = new Map<string, Holding>()
  for (const event of history) {
    if (event.type !== "acquire" && event.type !== "release") continue
    const key = `${event.shard}/${event.pod}/${event.epoch}`
    if (event.type === "acquire") {
      const holding: Holding = {
        pod: event.pod,
        epoch: event.epoch,
        from: event.at,
        to: Number.POSITIVE_INFINITY
      }
      open.set(key, holding)
      byShard.set(event.shard, [...(byShard.get(event.shard) ?? []), holding])
    } else {
      const holding = open.get(key)
      if (holding !== undefined) {
        holding.to = event.at
        open.delete(key)
      }
    }
  }
  const found: Array<Anomaly> = []
  for (const [shard, holdings] of byShard) {
    const sorted = [...holdings].sort((a, b) => a.from - b.from)
    for (let i = 0; i < sorted.length; i++) {
      for (let j = i + 1; j < sorted.length; j++) {
        const a = sorted[i]!
        const b = sorted[j]!
        if (a.pod !== b.pod && a.from < b.to && b.from < a.to) {
          found.push(
            anomaly(
              "overlapping owners",
              `shard ${shard} ran in ${a.pod} (epoch ${a.epoch}, ${a.from}–${a.to}) and ${b.pod} (epoch ${b.epoch}, ${b.from}–${b.to}) at once`
            )
          )
        }
        if (b.epoch < a.epoch) {
          found.push(
            anomaly(
              "overlapping owners",
              `shard ${shard}: epoch ${b.epoch} (${b.pod}) began after epoch ${a.epoch} (${a.pod})`
            )
          )
        }
      }
    }
  }
  return found
}

/** Each message is processed once by id, and one sender's messages to an entity in the order sent. */
export const exactlyOnceInOrder = (history: ReadonlyArray<HistoryEvent>): ReadonlyArray<Anomaly> => {
  const done = new Set<string>()
  const lastSeq = new Map<string, number>()
  const found: Array<Anomaly> = []
  for (const event of history) {
    if (event.type !== "processed") continue
    const id = `${event.entity}/${event.messageId}`
    if (done.has(id)) {
      found.push(
        anomaly(
          "exactly once",
          `message ${event.messageId} to ${event.entity} was processed twice (again in ${event.pod} at ${event.at})`
        )
      )
      continue
    }
    done.add(id)
    const stream = `${event.entity}/${event.sender}`
    const last = lastSeq.get(stream)
    if (last !== undefined && event.senderSeq < last) {
      found.push(
        anomaly(
          "order",
          `${event.entity} processed message ${event.senderSeq} of ${event.sender} after its message ${last}`
        )
      )
    }
    lastSeq.set(stream, Math.max(last ?? event.senderSeq, event.senderSeq))
  }
  return found
}

/**
 * The counters are linearizable: every read's value lies between the increments acknowledged
 * before the read was invoked (they must be visible) and the increments invoked before the read
 * completed (no more can be); and a read that began after another read was answered never sees
 * less (increments only add, so a counter never goes back).
 */
export const linearizableCounters = (history: ReadonlyArray<HistoryEvent>): ReadonlyArray<Anomaly> => {
  type Read = Extract<HistoryEvent, { readonly type: "read" }>
  const byEntity = new Map<
    string,
    { readonly acked: Array<number>; readonly invoked: Array<number>; readonly reads: Array<Read> }
  >()
  const of = (entity: string) => {
    let entry = byEntity.get(entity)
    if (entry === undefined) {
      entry = { acked: [], invoked: [], reads: [] }
      byEntity.set(entity, entry)
    }
    return entry
  }
  for (const event of history) {
    if (event.type === "increment") {
      const entry = of(event.entity)
      entry.invoked.push(event.invokedAt)
      if (event.ackedAt !== undefined) entry.acked.push(event.ackedAt)
    } else if (event.type === "read") of(event.entity).reads.push(event)
  }
  /** How many of the sorted `times` are strictly below `bound`. */
  const below = (times: ReadonlyArray<number>, bound: number) => {
    let low = 0
    let high = times.length
    while (low < high) {
      const middle = (low + high) >>> 1
      if (times[middle]! < bound) low = middle + 1
      else high = middle
    }
    return low
  }
  const found: Array<Anomaly> = []
  for (const [entity, { acked, invoked, reads }] of byEntity) {
    acked.sort((a, b) => a - b)
    invoked.sort((a, b) => a - b)
    // A read that began after another read was answered never sees less: sweep the reads by
    // invocation, keeping the highest value answered before each.
    const byCompletion = [...reads].sort((a, b) => a.completedAt - b.completedAt)
    let answered = 0
    let highest: Read | undefined
    for (const read of [...reads].sort((a, b) => a.invokedAt - b.invokedAt)) {
      while (answered < byCompletion.length && byCompletion[answered]!.completedAt < read.invokedAt) {
        const earlier = byCompletion[answered++]!
        if (highest === undefined || earlier.value > highest.value) highest = earlier
      }
      if (highest !== undefined && read.value < highest.value) {
        found.push(
          anomaly(
            "linearizability",
            `${entity} read ${read.value} (invoked ${read.invokedAt}) after a read of ${highest.value} was answered (${highest.completedAt}): the counter went back`
          )
        )
      }
      const atLeast = below(acked, read.invokedAt)
      const atMost = below(invoked, read.completedAt)
      if (read.value < atLeast || read.value > atMost) {
        found.push(
          anomaly(
            "linearizability",
            `${entity} read ${read.value} (invoked ${read.invokedAt}, answered ${read.completedAt}); it had to lie in [${atLeast}, ${atMost}]`
          )
        )
      }
    }
  }
  return found
}

/** Every acknowledged execution ended within `boundMillis` after the last fault healed. */
export const liveAfterHeal =
  (healedAt: number, boundMillis: number) =>
  (history: ReadonlyArray<HistoryEvent>): ReadonlyArray<Anomaly> => {
    const found: Array<Anomaly> = []
    for (const event of history) {
      if (event.type === "ended" && event.at > healedAt + boundMillis && event.status !== "running") {
        found.push(
          anomaly(
            "liveness",
            `execution ${event.executionId} ended ${event.at - healedAt} ms after the last fault healed (bound ${boundMillis} ms)`
          )
        )
      }
    }
    return found
  }

/** Every checker over one history (liveness with the given heal time and bound). */
export const checkAll = (
  history: ReadonlyArray<HistoryEvent>,
  liveness: { readonly healedAt: number; readonly boundMillis: number }
): ReadonlyArray<Anomaly> => [
  ...nothingLost(history),
  ...noDuplicateAttempts(history),
  ...noOverlappingOwners(history),
  ...exactlyOnceInOrder(history),
  ...linearizableCounters(history),
  ...liveAfterHeal(liveness.healedAt, liveness.boundMillis)(history)
]

/**
 * The recovery warnings in a pod's output (JSON log lines): each an execution the engine found
 * `running` with no run in the pod that owns its shard (see the engine's `recoveryInterval`). Every
 * one is an anomaly: the backstop healed it, but a path that should have run it let it slip.
 */
export const recoveries = (process: string, output: string): ReadonlyArray<Anomaly> =>
  output.split("\n").flatMap((line) => {
    if (!line.includes('"recovery: ')) return []
    try {
      const message: unknown = JSON.parse(line).message
      return typeof message === "string" && message.startsWith("recovery: ")
        ? [{ checker: "recovery", message: `${process}: ${message}` }]
        : []
    } catch {
      return []
    }
  })
