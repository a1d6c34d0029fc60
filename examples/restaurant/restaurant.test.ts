/**
 * The restaurant demo (`npm run restaurant`, and `-- --postgres URL`) as a newcomer runs it: every
 * step is printed, the killed waiter's tables go to the others and come back with it, and every
 * order completes, none twice. Besides what the demo says about itself, the test reads the
 * journal and the ledger it left behind.
 */
import { join } from "node:path"
import { Effect } from "effect"
import { DurableExecutionJournal } from "effect-cluster"
import { describe, expect, it } from "vitest"
import { freshDatabase } from "../../test/support/freshDatabase.ts"
import { testTempDir } from "../../test/support/tempDir.ts"
import { runDemo as run } from "../shared/runDemo.ts"
import * as Ledger from "./ledger.ts"
import * as Pass from "./pass.ts"
import { journalLayer } from "./store.ts"

const main = join(import.meta.dirname, "main.ts")

const runDemo = (cwd: string, args: ReadonlyArray<string>) => run(main, cwd, args)

/** The lines of the demo's output from the step starting with `from` up to the next step. */
const section = (output: string, from: string): string => {
  const start = output.indexOf(from)
  expect(start, `step "${from}" printed`).toBeGreaterThanOrEqual(0)
  const end = output.indexOf("\n▶", start + from.length)
  return output.slice(start, end === -1 ? undefined : end)
}

/** Every order in the journal at `location`. */
const ordersIn = (location: string) =>
  Effect.runPromise(
    Effect.gen(function* () {
      const journal = yield* DurableExecutionJournal.DurableExecutionJournal
      return yield* journal.list({ limit: 100_000 })
    }).pipe(Effect.provide(journalLayer(location)))
  )

const checkRun = async (code: number | null, output: string, location: string, data: string) => {
  for (const title of [
    "▶ 1. waiter-1 opens the restaurant",
    "▶ 2. waiter-2 arrives",
    "▶ 3. waiter-3 arrives",
    "▶ 4. waiter-2 is killed with SIGKILL",
    "▶ 5. waiter-2 comes back",
    "▶ 6. closing time",
    "▶ the bill"
  ])
    expect(output).toContain(title)
  // The assignment table after each step: the summary line of every waiter serving tables.
  expect(section(output, "▶ 1.")).toMatch(/waiter-1\s+30 tables {2}T01-T30 {2}epoch 1/)
  expect(section(output, "▶ 2.")).toMatch(/waiter-2\s+15 tables/)
  const three = section(output, "▶ 3.")
  for (const waiter of ["waiter-1", "waiter-2", "waiter-3"])
    expect(three).toMatch(new RegExp(`${waiter}\\s+10 tables`))
  // The killed waiter's tables went to the other two; it serves none until it comes back.
  const killed = section(output, "▶ 4.")
  expect(killed).toMatch(/killed while cooking order-\d+/)
  expect(killed).toMatch(/its 10 tables \(.+\) moved [\d.]+ s after the SIGKILL: waiter-1 T.+, waiter-3 T/)
  expect(killed).toMatch(/waiter-1\s+15 tables/)
  expect(killed).toMatch(/waiter-3\s+15 tables/)
  // Its row may still be listed, as gone, until the manager removes it (the same round, a bit later).
  expect(killed).not.toMatch(/waiter-2\s+[1-9]\d* tables/)
  expect(killed).toMatch(/cook started again [\d.]+ s after the SIGKILL: attempt 2 by waiter-[13]/)
  const back = section(output, "▶ 5.")
  expect(back).toMatch(/waiter-2 is up in [\d.]+ s; [\d.]+ s later it serves 10 tables again/)
  for (const waiter of ["waiter-1", "waiter-2", "waiter-3"])
    expect(back).toMatch(new RegExp(`${waiter}\\s+10 tables`))
  // The host waited for some orders served by other waiters (over the network), and says how long.
  expect(section(output, "▶ 6.")).toMatch(
    /orders the host waited for, served by another waiter \(start and result over the network\): [1-9]\d*, p50 \d+ ms, slowest \d+ ms/
  )
  // The bill.
  const placed = Number(/✔ (\d+) orders placed, \1 in the journal, \1 completed/.exec(output)?.[1])
  expect(placed).toBeGreaterThan(100)
  expect(output).toContain("✔ no step attempt ran twice")
  expect(output).toContain("✔ no order was ever in two waiters' hands at once")
  expect(output).toMatch(/✔ no order was served twice: (\d+) plates on the pass for \1 orders/)
  expect(output).toContain("✔ every waiter that got SIGTERM stopped cleanly")
  expect(output).not.toContain("✘")
  expect(code).toBe(0)

  // What the run left behind, read independently of the demo's own checks.
  const orders = await ordersIn(location)
  expect(orders).toHaveLength(placed)
  expect(orders.filter((order) => order.status !== "succeeded")).toEqual([])
  const lines = Ledger.read(join(data, "restaurant-ledger.jsonl"))
  const starts = lines
    .filter((line) => line.k === "start")
    .map((line) => `${line.order}/${line.step}#${line.attempt}`)
  expect(new Set(starts).size).toBe(starts.length)
  const plates = Pass.plates(join(data, "restaurant-pass"))
  expect(plates.map((plate) => plate.order).sort()).toEqual(orders.map((order) => order.executionId).sort())
}

describe("the restaurant demo", () => {
  it("on the embedded store: waiters join, one is killed and comes back, every order completes once", async () => {
    // From a fresh directory, as a newcomer: the journal and the ledger go to its .data folder.
    const cwd = testTempDir("restaurant-")
    const { code, output } = await runDemo(cwd, [])
    expect(output).toContain(`journal: ${join(cwd, ".data", "restaurant.db")}`)
    await checkRun(code, output, join(cwd, ".data", "restaurant.db"), join(cwd, ".data"))
  }, 120_000)

  it("on PostgreSQL with --postgres URL", async () => {
    const url = await freshDatabase("restaurant")
    const data = testTempDir("restaurant-pg-")
    const { code, output } = await runDemo(data, ["--postgres", url, "--data", data])
    expect(output).toContain("journal: postgres://")
    expect(output).toContain("its PostgreSQL session ended")
    await checkRun(code, output, url, data)
  }, 120_000)

  it("a malformed --postgres value is refused with a usage line", async () => {
    const { code, output } = await runDemo(testTempDir("restaurant-"), ["--postgres", "localhost:5432"])
    expect(code).toBe(2)
    expect(output).toContain("expected a PostgreSQL URL")
    expect(output).toContain("usage: npm run restaurant")
  })
})
