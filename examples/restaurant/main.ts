/**
 * `npm run restaurant`: the talk's restaurant — 30 tables (shards) and the waiters (pods) who
 * serve them — as processes on one store, with orders (workflows) coming in all the time.
 * `npm run restaurant -- --postgres URL` runs it on PostgreSQL instead of the embedded SQLite file;
 * `--data DIR` puts the SQLite file, the ledger and the pass in DIR (default `.data`).
 *
 * The steps: waiter-1 opens the restaurant (and seats guests: 10 orders a second); waiter-2 and
 * waiter-3 arrive and the tables are split between them; waiter-2 is killed with SIGKILL and its
 * tables move to the others at once; waiter-2 comes back and takes its share again; at closing
 * time every waiter gets SIGTERM. After each step the assignment table is printed, read from the
 * store's ownership rows (this process opens the journal layer for its `ShardStore`, without an
 * engine: it is not a waiter). At the end the journal, the waiters' ledger and the pass are
 * checked: every order placed completed, no order was served twice, no step attempt ran twice, no
 * order was in two waiters' hands at once.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { join } from "node:path"
import { createInterface } from "node:readline"
import { Effect, ManagedRuntime } from "effect"
import { DurableExecutionJournal, ShardStore } from "effect-cluster"
import * as Ledger from "./ledger.ts"
import { done, STEP_MILLIS } from "./order.ts"
import * as Pass from "./pass.ts"
import { describeStore, isPostgres, journalLayer, resetStore, storeFromArgs } from "./store.ts"
import { CLUSTER, type Floor, ranges, render, settled, TABLES, tableName, tablesByWaiter } from "./tables.ts"

/** Orders a second the host (waiter-1) places. */
const GUESTS_PER_SECOND = 10
/** How long orders run between two steps, so every waiter serves some. */
const SERVICE_MILLIS = 1_500
/** The waiter killed with SIGKILL (not waiter-1: it seats the guests). */
const VICTIM = "waiter-2"
/** How long any step may take before the demo gives up. */
const STEP_TIMEOUT_MILLIS = 30_000

const say = (line = "") => console.log(line)
const indent = (lines: ReadonlyArray<string>) => {
  for (const line of lines) say(`   ${line}`)
}
const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

const store = (() => {
  try {
    return storeFromArgs(process.argv.slice(2))
  } catch (error) {
    console.error(
      `✘ bad arguments: ${error instanceof Error ? error.message : String(error)}\nusage: npm run restaurant [-- [--postgres URL] [--data DIR]]`
    )
    return process.exit(2)
  }
})()

/** The waiters' processes: SIGKILLed if this process ends first, so none is left behind. */
const children = new Set<ChildProcess>()
const killChildren = () => {
  for (const child of children) child.kill("SIGKILL")
}
process.once("exit", killChildren)
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    killChildren()
    process.exit(130)
  })
}

const fail = (message: string): never => {
  console.error(`\n✘ ${message}`)
  killChildren()
  return process.exit(1)
}

await resetStore(store).catch((error) =>
  fail(`cannot reset the journal at ${describeStore(store.location)}: ${error}`)
)
const reader = ManagedRuntime.make(journalLayer(store.location))

/** The floor as the store sees it now. */
const look = (): Promise<Floor> =>
  reader.runPromise(
    Effect.gen(function* () {
      const ownership = yield* ShardStore.ShardStore
      const [shards, pods, manager] = yield* Effect.all([ownership.shards, ownership.pods, ownership.manager])
      return { shards, pods, manager: manager?.podId }
    })
  )

/** Every order in the journal. */
const orders = () =>
  reader.runPromise(
    Effect.gen(function* () {
      const journal = yield* DurableExecutionJournal.DurableExecutionJournal
      const rows: Array<DurableExecutionJournal.ExecutionRecord> = []
      while (true) {
        const page = yield* journal.list({ after: rows.at(-1)?.executionId, limit: 1000 })
        rows.push(...page)
        if (page.length < 1000) return rows
      }
    })
  )

/** Looks at the floor every 50 ms until `check` holds; returns how long it took and the floor then. */
const until = async (what: string, check: (floor: Floor) => boolean, from = performance.now()) => {
  while (true) {
    const floor = await look()
    if (check(floor)) return { ms: performance.now() - from, floor }
    if (performance.now() - from > STEP_TIMEOUT_MILLIS) {
      indent(render(floor))
      return fail(`${what}: not done after ${seconds(STEP_TIMEOUT_MILLIS)}`)
    }
    await sleep(50)
  }
}

/** A waiter process. */
interface Waiter {
  readonly name: string
  readonly child: ChildProcess
  /** Sends it a signal; it is then expected to exit (any other exit stops the demo). */
  readonly kill: (signal: "SIGKILL" | "SIGTERM") => void
  readonly ready: Promise<void>
  /** Resolves with the number of orders placed once the door is closed (the host only). */
  readonly closed: Promise<number>
  readonly exited: Promise<{ readonly code: number | null; readonly signal: string | null }>
}

const waiterScript = join(import.meta.dirname, "waiter.ts")

/** Starts a waiter; its logs are printed indented, with its name. */
const startWaiter = (name: string, guests?: number): Waiter => {
  const child = spawn(
    process.execPath,
    // The waiter runs with this process's Node flags (they resolve "effect-cluster" to the sources).
    [
      ...process.execArgv,
      waiterScript,
      ...["--waiter", name, "--store", store.location, "--ledger", store.ledger, "--pass", store.pass],
      ...(guests === undefined ? [] : ["--guests", String(guests)])
    ],
    { stdio: ["pipe", "pipe", "inherit"] }
  )
  children.add(child)
  let onReady = () => {}
  let onClosed = (_placed: number) => {}
  const ready = new Promise<void>((resolve) => (onReady = resolve))
  const closed = new Promise<number>((resolve) => (onClosed = resolve))
  let expected = false
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
    child.once("exit", (code, signal) => {
      children.delete(child)
      if (!expected) fail(`${name} exited on its own (code ${code}, signal ${signal})`)
      resolve({ code, signal })
    })
  )
  const kill = (signal: "SIGKILL" | "SIGTERM") => {
    expected = true
    child.kill(signal)
  }
  createInterface({ input: child.stdout! }).on("line", (line) => {
    let message: Record<string, unknown>
    try {
      message = JSON.parse(line)
    } catch {
      return say(`      [${name}] ${line}`)
    }
    if (message.ready !== undefined) onReady()
    else if (typeof message.closed === "number") onClosed(message.closed)
    else if (typeof message.waited === "object" && message.waited !== null) {
      waited.push({ ...(message.waited as { readonly ms: number; readonly by: string }), host: name })
    } else if (typeof message.level === "string" && message.level !== "DEBUG") {
      const text = [message.message].flat().map(String).join(" ")
      say(
        `      [${name}] ${message.level} ${text}${typeof message.cause === "string" ? `\n${message.cause}` : ""}`
      )
    }
  })
  return { name, child, kill, ready, closed, exited }
}

/** Waits until `waiter` runs; fails if it exits first or takes too long. */
const readyOrFail = async (waiter: Waiter) => {
  let timer: ReturnType<typeof setTimeout> | undefined
  const ready = await Promise.race([
    waiter.ready.then(() => true),
    waiter.exited.then(() => false),
    new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), STEP_TIMEOUT_MILLIS)))
  ])
  clearTimeout(timer)
  if (!ready)
    fail(`${waiter.name} did not start: it exited or was not ready after ${seconds(STEP_TIMEOUT_MILLIS)}`)
}

/** The orders the host waited for (`send`): how long, and which waiter served them. */
const waited: Array<{ readonly ms: number; readonly by: string; readonly host: string }> = []

const deaths: Array<Ledger.Death> = []
/** Since when the ledger's re-runs are new, and the floor of the last table printed. */
let stepStarted = Date.now()
let lastFloor: Floor | undefined

const why: Record<Ledger.Attempt["how"], string> = {
  cut: "cut short by the SIGKILL",
  stopped: "stopped: its table changed hands",
  ended: "finished, but its waiter died before the journal recorded it",
  open: "still running"
}

/** The assignment table, then how the orders went since the step began. */
const report = async (floor: Floor) => {
  say()
  indent(render(floor, lastFloor))
  lastFloor = floor
  await sleep(SERVICE_MILLIS)
  const rows = await orders()
  const completed = rows.filter((row) => row.status === "succeeded").length
  const lines = Ledger.read(store.ledger)
  const servedBy = new Map<string, number>()
  for (const line of lines)
    if (line.k === "end" && line.step === "serve" && line.t >= stepStarted)
      servedBy.set(line.waiter, (servedBy.get(line.waiter) ?? 0) + 1)
  say()
  say(
    `   orders: ${rows.length} placed, ${completed} completed so far; served since the last step: ${
      [...servedBy]
        .sort()
        .map(([waiter, n]) => `${waiter} ${n}`)
        .join(", ") || "none"
    }`
  )
  const reruns = Ledger.audit(lines, deaths).reruns.filter(
    (rerun) => rerun.attempts.at(-1)!.start.t >= stepStarted
  )
  for (const rerun of reruns.slice(0, 4)) {
    const attempts = rerun.attempts.map(
      ({ start, how }) =>
        `#${start.attempt} ${start.waiter} ${tableName(start.table)} e${start.epoch}${how === "ended" && start === rerun.attempts.at(-1)!.start ? "" : ` (${why[how]})`}`
    )
    say(`   ran again: ${rerun.order} ${rerun.step}: ${attempts.join(" → ")}`)
  }
  if (reruns.length > 4) say(`   … and ${reruns.length - 4} more step(s) ran again`)
  stepStarted = Date.now()
}

const step = (title: string) => say(`\n▶ ${title}`)

/** A cook the victim has just started (so is in the middle of), waiting up to 10 s for one. */
const victimCooking = async (): Promise<Ledger.LedgerLine | undefined> => {
  const deadline = performance.now() + 10_000
  while (performance.now() < deadline) {
    const cooking = Ledger.open(Ledger.read(store.ledger)).find(
      (line) => line.waiter === VICTIM && line.step === "cook" && Date.now() - line.t < STEP_MILLIS.cook / 2
    )
    if (cooking !== undefined) return cooking
    await sleep(20)
  }
  return undefined
}

/** The next attempt of the step `attempt` belongs to, once it has started. */
const nextAttempt = async (attempt: Ledger.LedgerLine): Promise<Ledger.LedgerLine> => {
  const from = performance.now()
  while (true) {
    const next = Ledger.read(store.ledger).find(
      (line) =>
        line.k === "start" &&
        line.order === attempt.order &&
        line.step === attempt.step &&
        line.attempt > attempt.attempt
    )
    if (next !== undefined) return next
    if (performance.now() - from > STEP_TIMEOUT_MILLIS)
      return fail(`${attempt.order}'s ${attempt.step} did not run again after the SIGKILL`)
    await sleep(20)
  }
}

// --------------------------------------------------------------------------------------------------

say(
  `effect-cluster restaurant: ${TABLES} tables (shards), waiters (pods) coming and going, orders (workflows) all along`
)
say(`journal: ${describeStore(store.location)}; ledger of every step: ${store.ledger}`)
say(
  `leases of ${CLUSTER.leaseTtl}, an ownership round every ${CLUSTER.ownershipInterval}; an order is take-order ${STEP_MILLIS["take-order"]} ms → cook ${STEP_MILLIS.cook} ms → serve ${STEP_MILLIS.serve} ms`
)
say(
  "grid: T07 w2 e4 = table 7 is served by waiter-2 at epoch 4 (the epoch grows at every change of waiter; * = moved)"
)

const waiters = new Map<string, Waiter>()
const arrive = async (name: string, guests?: number) => {
  const from = performance.now()
  const waiter = startWaiter(name, guests)
  waiters.set(name, waiter)
  await readyOrFail(waiter)
  return { waiter, readyMs: performance.now() - from }
}
const movedTo = (before: Floor, after: Floor, to: string) =>
  after.shards.filter(
    (shard) => shard.owner === to && before.shards.find((b) => b.shard === shard.shard)?.owner !== to
  )

// 1. The first waiter opens the restaurant.
step(`1. waiter-1 opens the restaurant and seats guests (${GUESTS_PER_SECOND} orders a second)`)
const host = await arrive("waiter-1", GUESTS_PER_SECOND)
{
  const { ms, floor } = await until("waiter-1 serves every table", (f) => settled(f, ["waiter-1"]))
  say(
    `   waiter-1 is up in ${seconds(host.readyMs)} (a new Node process); ${seconds(ms)} later it serves all ${TABLES} tables`
  )
  await report(floor)
}

// 2 and 3. Two more waiters arrive; the tables are split a few at a time.
for (const [n, name, crew] of [
  [2, "waiter-2", ["waiter-1", "waiter-2"]],
  [3, "waiter-3", ["waiter-1", "waiter-2", "waiter-3"]]
] as const) {
  step(`${n}. ${name} arrives`)
  const before = await look()
  const { readyMs } = await arrive(name)
  const { ms, floor } = await until(`the tables are split between ${crew.join(", ")}`, (f) =>
    settled(f, crew)
  )
  const taken = movedTo(before, floor, name)
  say(
    `   ${name} is up in ${seconds(readyMs)}; ${seconds(ms)} later it serves ${taken.length} tables (${ranges(taken.map((s) => s.shard))}), handed over by their waiters a few per round`
  )
  await report(floor)
}

// 4. SIGKILL in the middle of a cook: the victim's tables move at once, and the order it was cooking
// is cooked again by its table's new waiter (attempt 2, a higher epoch).
step(`4. ${VICTIM} is killed with SIGKILL in the middle of cooking an order`)
{
  const cooking = await victimCooking()
  const before = await look()
  const lost = tablesByWaiter(before).get(VICTIM) ?? []
  const from = performance.now()
  const killedAt = Date.now()
  deaths.push({ waiter: VICTIM, at: killedAt })
  waiters.get(VICTIM)!.kill("SIGKILL")
  await waiters.get(VICTIM)!.exited
  say(
    cooking === undefined
      ? `   (${VICTIM} cooked nothing for 10 s: killed idle)`
      : `   killed while cooking ${cooking.order} (table ${tableName(cooking.table)}, epoch ${cooking.epoch}, attempt ${cooking.attempt})`
  )
  const { ms, floor } = await until(
    `${VICTIM}'s tables move to the others`,
    (f) => settled(f, ["waiter-1", "waiter-3"]),
    from
  )
  const where = ["waiter-1", "waiter-3"].map(
    (name) => `${name} ${ranges(movedTo(before, floor, name).map((s) => s.shard))}`
  )
  say(
    `   its ${lost.length} tables (${ranges(lost)}) moved ${seconds(ms)} after the SIGKILL: ${where.join(", ")}`
  )
  say(
    `   no wait for its lease (${CLUSTER.leaseTtl}) to run out: the store saw its process gone (${isPostgres(store.location) ? "its PostgreSQL session ended" : "the kernel released its lock file"})`
  )
  if (cooking !== undefined) {
    const again = await nextAttempt(cooking)
    say(
      `   ${cooking.order}'s cook started again ${seconds(again.t - killedAt)} after the SIGKILL: attempt ${again.attempt} by ${again.waiter} at epoch ${again.epoch}`
    )
  }
  await report(floor)
}

// 5. The victim comes back and gets its share again.
step(`5. ${VICTIM} comes back`)
{
  const before = await look()
  const { readyMs } = await arrive(VICTIM)
  const { ms, floor } = await until("the tables are split between three waiters again", (f) =>
    settled(f, ["waiter-1", "waiter-2", "waiter-3"])
  )
  const taken = movedTo(before, floor, VICTIM)
  const fromWhom = ["waiter-1", "waiter-3"].map(
    (name) =>
      `${taken.filter((s) => before.shards.find((b) => b.shard === s.shard)?.owner === name).length} from ${name}`
  )
  say(
    `   ${VICTIM} is up in ${seconds(readyMs)}; ${seconds(ms)} later it serves ${taken.length} tables again (${ranges(taken.map((s) => s.shard))}: ${fromWhom.join(", ")})`
  )
  await report(floor)
}

// 6. Closing time: no more guests, the last orders complete, everyone goes home (SIGTERM).
step("6. closing time: the door closes, the last orders complete, every waiter gets SIGTERM")
{
  const from = performance.now()
  host.waiter.child.stdin!.write("close-door\n")
  const placed = await host.waiter.closed
  let rows = await orders()
  while (rows.length < placed || rows.some((row) => row.status !== "succeeded")) {
    if (performance.now() - from > STEP_TIMEOUT_MILLIS) fail("the last orders did not complete")
    await sleep(100)
    rows = await orders()
  }
  say(
    `   the door closed after ${placed} orders; the last of them completed ${seconds(performance.now() - from)} later`
  )
  const describeWaits = (ms: ReadonlyArray<number>) => {
    const sorted = [...ms].sort((a, b) => a - b)
    return sorted.length === 0
      ? "none"
      : `${sorted.length}, p50 ${sorted[Math.floor(sorted.length / 2)]!.toFixed(0)} ms, slowest ${sorted[sorted.length - 1]!.toFixed(0)} ms`
  }
  const elsewhere = waited.filter((wait) => wait.by !== wait.host).map((wait) => wait.ms)
  const here = waited.filter((wait) => wait.by === wait.host).map((wait) => wait.ms)
  say(
    `   orders the host waited for, served by another waiter (start and result over the network): ${describeWaits(elsewhere)}; by the host itself: ${describeWaits(here)} (${STEP_MILLIS["take-order"] + STEP_MILLIS.cook + STEP_MILLIS.serve} ms of each is the kitchen)`
  )
  const leaving = ["waiter-3", "waiter-2"]
  const termFrom = performance.now()
  for (const name of leaving) waiters.get(name)!.kill("SIGTERM")
  const exits = await Promise.all(leaving.map((name) => waiters.get(name)!.exited))
  const handed = await until("waiter-1 serves every table", (f) => settled(f, ["waiter-1"]), termFrom)
  say(
    `   SIGTERM to waiter-3 and waiter-2: they exited (codes ${exits.map((e) => e.code).join(", ")}) and handed their tables to waiter-1 in ${seconds(handed.ms)}, without waiting for a lease`
  )
  indent(render(handed.floor, lastFloor))
  lastFloor = handed.floor
  waiters.get("waiter-1")!.kill("SIGTERM")
  const last = await waiters.get("waiter-1")!.exited
  const closedFloor = await look()
  say(
    `   SIGTERM to waiter-1: it exited (code ${last.code}); the tables are now ${closedFloor.shards.every((s) => s.owner === null) ? "all unowned" : "still owned"}, ${closedFloor.pods.length} waiter(s) registered`
  )

  // The checks.
  say("\n▶ the bill")
  const lines = Ledger.read(store.ledger)
  const audit = Ledger.audit(lines, deaths)
  const succeeded = rows.filter((row) => row.status === "succeeded")
  const plates = Pass.plates(store.pass)
  const plateOf = new Map(plates.map((plate) => [plate.order, plate]))
  const attempts = new Set(
    lines
      .filter((line) => line.k === "start")
      .map((line) => `${line.order}/${line.step}#${line.attempt} ${line.waiter} e${line.epoch}`)
  )
  // Each completed order has its plate on the pass, its journal names the attempt that carried it,
  // and the ledger shows that attempt running in that waiter at that epoch.
  const unaccounted = succeeded.filter((row) => {
    const plate = plateOf.get(row.executionId)
    return (
      plate === undefined ||
      !(row.result ?? "").includes(done("served", plate)) ||
      !attempts.has(`${plate.order}/serve#${plate.attempt} ${plate.waiter} e${plate.epoch}`)
    )
  })
  const carried = new Map<string, number>()
  for (const plate of plates) carried.set(plate.waiter, (carried.get(plate.waiter) ?? 0) + 1)
  const checks: Array<[boolean, string]> = [
    [
      rows.length === placed && succeeded.length === placed,
      `${placed} orders placed, ${rows.length} in the journal, ${succeeded.length} completed`
    ],
    [
      plates.length === succeeded.length && unaccounted.length === 0,
      `no order was served twice: ${plates.length} plates on the pass for ${succeeded.length} orders, each recorded in its order's journal and its waiter's ledger (${[
        ...carried
      ]
        .sort()
        .map(([waiter, n]) => `${waiter} ${n}`)
        .join(", ")})${
        unaccounted.length > 0
          ? `; not accounted for: ${unaccounted
              .slice(0, 5)
              .map((row) => row.executionId)
              .join(", ")}`
          : ""
      }`
    ],
    [
      audit.duplicates.length === 0,
      `no step attempt ran twice: ${audit.attempts.length} attempts of ${rows.length * 3} steps, each (order, step, attempt) started once${audit.duplicates.length > 0 ? `; twice: ${audit.duplicates.slice(0, 5).join(", ")}` : ""}`
    ],
    [
      audit.overlaps.length === 0,
      `no order was ever in two waiters' hands at once${audit.overlaps.length > 0 ? `; it happened to ${audit.overlaps.slice(0, 5).join(", ")}` : ""}`
    ],
    [
      exits.every((e) => e.code === 0) && last.code === 0,
      "every waiter that got SIGTERM stopped cleanly (exit code 0)"
    ]
  ]
  for (const [ok, text] of checks) say(`   ${ok ? "✔" : "✘"} ${text}`)
  const earlier = audit.reruns.flatMap((rerun) => rerun.attempts.slice(0, -1))
  const count = (how: Ledger.Attempt["how"]) => earlier.filter((attempt) => attempt.how === how).length
  say(
    `   ${audit.reruns.length} step(s) ran again with the next attempt number: ${count("cut")} cut short by the SIGKILL, ${count("stopped")} stopped while their table changed hands${count("ended") > 0 ? `, ${count("ended")} finished by a waiter that died before the journal recorded them (the pass kept any second plate off the table)` : ""}`
  )
  await reader.dispose()
  say(
    `\nThe journal is kept at ${describeStore(store.location)}, the ledger at ${store.ledger}, the plates in ${store.pass}`
  )
  process.exit(checks.every(([ok]) => ok) ? 0 : 1)
}
