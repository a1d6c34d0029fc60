/**
 * Where the repository is and which Node its child processes run on. No vitest import: the global
 * setup (`postgresSetup.ts`, `compileCache.ts`) uses it too, outside any test.
 */
import { existsSync } from "node:fs"
import { join, resolve } from "node:path"

/** The repository's root: entries are resolved from it. */
export const repoRoot = resolve(import.meta.dirname, "..", "..")

/** The Node 22 binary children run on: the repository's, else the one running the tests. */
export const nodeBinary = ((): string => {
  const own = join(repoRoot, "node_modules", ".bin", "node")
  return existsSync(own) ? own : process.execPath
})()
