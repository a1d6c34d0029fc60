/** The `effect-cluster` command on a PostgreSQL database (the cases are in `suite.ts`). */
import { freshDatabase } from "../support/freshDatabase.ts"
import { cliSuite } from "./suite.ts"

cliSuite({
  name: "PostgreSQL database",
  make: async () => {
    const url = await freshDatabase("cli")
    return { store: url, flags: ["--postgres", url] }
  }
})
