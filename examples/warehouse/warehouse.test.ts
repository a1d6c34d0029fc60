/**
 * The warehouse demo: workflows message entities (reserve, release) and an entity starts a
 * workflow (replenish), on a real SQLite file.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { expect, it } from "vitest"
import { runScenario } from "./scenario.ts"

it("orders reserve stock from warehouses, one compensates, and a low warehouse restocks through a workflow", async () => {
  const dir = mkdtempSync(join(tmpdir(), "warehouse-"))
  try {
    const report = await Effect.runPromise(runScenario(join(dir, "warehouse.db")))
    expect(report.orders[0]!.outcome).toBe("order-1: reserved 4 × apples, 2 × pears")
    expect(report.orders[1]!.outcome).toContain("OutOfStock")
    expect(report.orders[2]!.outcome).toBe("order-3: reserved 5 × apples")
    // apples: 10 - 4 - 5 + 10 restocked; pears: 10 - 2 (order-2's pear was released).
    expect(report.stock).toEqual({ apples: 11, pears: 8 })
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
