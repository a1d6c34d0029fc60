/**
 * `npm run warehouse`: an order workflow reserves stock from a `Warehouse` entity per product (from
 * its activities), compensates when a product is out of stock, and a warehouse that runs low starts
 * a `Replenish` workflow (from its behaviour). One process on `.data/warehouse.db`.
 */
import { mkdirSync } from "node:fs"
import { join, resolve } from "node:path"
import { Effect } from "effect"
import { resetSqlite } from "../shared/reset.ts"
import { runScenario } from "./scenario.ts"

const data = resolve(".data")
mkdirSync(data, { recursive: true })
const filename = join(data, "warehouse.db")
resetSqlite(filename)
await Effect.runPromise(runScenario(filename, (line) => console.log(line)))
