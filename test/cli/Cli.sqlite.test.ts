/** The `effect-cluster` command on an embedded SQLite store (the cases are in `suite.ts`). */
import { join } from "node:path"
import { cliSuite } from "./suite.ts"

cliSuite({
  name: "SQLite file",
  make: async (dir) => {
    const file = join(dir, "store.db")
    return { store: file, flags: ["--file", file] }
  }
})
