/**
 * The waiters' ledger: one JSON line per event of every step attempt (taken, cooked, served),
 * appended by the waiter that runs it, so the demo can check afterwards what the journal alone
 * cannot show — which process ran which attempt, when, at which epoch.
 *
 * Every waiter appends to the same file with `O_APPEND` (one `write` per line: lines never mix),
 * synchronously, so a line written before a SIGKILL is in the file.
 */
import { appendFileSync, readFileSync } from "node:fs"

/** One event of one attempt of one step of one order. */
export interface LedgerLine {
  /** The attempt began, ended (its body returned), or was stopped (interrupted: a handover, a shutdown). */
  readonly k: "start" | "end" | "stop"
  readonly order: string
  /** The activity: `take-order`, `cook` or `serve`. */
  readonly step: string
  /** 1, 2, … counted by the journal across processes. */
  readonly attempt: number
  readonly waiter: string
  /** The order's table (its shard) and the epoch at which this waiter owned it. */
  readonly table: number
  readonly epoch: number
  /** Wall clock, ms. */
  readonly t: number
}

const attemptKey = (line: LedgerLine) => `${line.order}/${line.step}#${line.attempt}`

/** Appends one event to the ledger file. */
export const append = (file: string, line: LedgerLine): void => {
  appendFileSync(file, `${JSON.stringify(line)}\n`)
}

/** Every event in the ledger file, in the order they were appended. */
export const read = (file: string): ReadonlyArray<LedgerLine> =>
  readFileSync(file, "utf8")
    .split("\n")
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as LedgerLine)

/** The attempts that started and have not ended or stopped (yet), oldest first. */
export const open = (lines: ReadonlyArray<LedgerLine>): ReadonlyArray<LedgerLine> => {
  const ended = new Set(lines.filter((line) => line.k !== "start").map(attemptKey))
  return lines.filter((line) => line.k === "start" && !ended.has(attemptKey(line)))
}

/** A waiter that was SIGKILLed at `at` (epoch ms): its attempts still open then ended there. */
export interface Death {
  readonly waiter: string
  readonly at: number
}

/** An attempt as the ledger tells it: who ran it, from when to when, and how it ended. */
export interface Attempt {
  readonly start: LedgerLine
  /** When it ended: its `end` or `stop` line, else its waiter's death. */
  readonly until: number
  /** `cut`: its waiter died in the middle of it. `open`: nothing ended it (yet). */
  readonly how: "ended" | "stopped" | "cut" | "open"
}

/** A step that ran more than once, and why its earlier attempts did not count. */
export interface Rerun {
  readonly order: string
  readonly step: string
  readonly attempts: ReadonlyArray<Attempt>
}

/** What the ledger proves about a run of the restaurant. */
export interface Audit {
  readonly attempts: ReadonlyArray<Attempt>
  /** `order/step#attempt` keys that started more than once (must be none). */
  readonly duplicates: ReadonlyArray<string>
  /** Orders that were in the hands of two waiters at the same time (must be none). */
  readonly overlaps: ReadonlyArray<string>
  /** Steps with more than one attempt, in order of their first attempt. */
  readonly reruns: ReadonlyArray<Rerun>
}

/**
 * Reads the ledger's story: every attempt with its span, the attempts started twice, the orders
 * two waiters held at once (spans of one order in different waiters that overlap), and the steps
 * that ran again.
 */
export const audit = (lines: ReadonlyArray<LedgerLine>, deaths: ReadonlyArray<Death>): Audit => {
  const endings = new Map<string, LedgerLine>()
  for (const line of lines) if (line.k !== "start") endings.set(attemptKey(line), line)
  const seen = new Set<string>()
  const duplicates: Array<string> = []
  const attempts: Array<Attempt> = []
  for (const start of lines) {
    if (start.k !== "start") continue
    const key = attemptKey(start)
    if (seen.has(key)) duplicates.push(key)
    seen.add(key)
    const ending = endings.get(key)
    const death = deaths.find((d) => d.waiter === start.waiter && d.at >= start.t)
    attempts.push(
      ending !== undefined && (death === undefined || ending.t <= death.at)
        ? { start, until: ending.t, how: ending.k === "end" ? "ended" : "stopped" }
        : death !== undefined
          ? { start, until: death.at, how: "cut" }
          : { start, until: Number.POSITIVE_INFINITY, how: "open" }
    )
  }
  const byOrder = new Map<string, Array<Attempt>>()
  const byStep = new Map<string, Array<Attempt>>()
  for (const attempt of attempts) {
    const { order, step } = attempt.start
    byOrder.set(order, [...(byOrder.get(order) ?? []), attempt])
    byStep.set(`${order}/${step}`, [...(byStep.get(`${order}/${step}`) ?? []), attempt])
  }
  const overlaps: Array<string> = []
  for (const [order, list] of byOrder) {
    const clash = list.some((a) =>
      list.some((b) => a.start.waiter !== b.start.waiter && a.start.t < b.until && b.start.t < a.until)
    )
    if (clash) overlaps.push(order)
  }
  const reruns = [...byStep.values()]
    .filter((list) => list.length > 1)
    .map((list) => ({ order: list[0]!.start.order, step: list[0]!.start.step, attempts: list }))
  return { attempts, duplicates, overlaps, reruns }
}
