/**
 * The compile cache of the tests' child processes (`NODE_COMPILE_CACHE`, set for them in
 * `vitest.config.ts`): a child starts ~0.2 s sooner when the compiled code of its modules is there.
 * `warm` fills it before the tests start (`warmCompileCache.ts`).
 */
import { spawnSync } from "node:child_process"
import { existsSync } from "node:fs"
import { join, resolve } from "node:path"

const root = resolve(import.meta.dirname, "..", "..")

/** The cache's folder. */
export const COMPILE_CACHE = join(root, "node_modules", ".cache", "node-compile")

/**
 * Loads what the children load, in a process that exits normally and so writes the cache. A cache
 * that could not be filled only makes the children start slower: the outcome is ignored.
 */
export const warm = (): void => {
  const own = join(root, "node_modules", ".bin", "node")
  spawnSync(
    existsSync(own) ? own : process.execPath,
    [
      "--no-warnings",
      "--conditions=@effect-cluster/source",
      join(root, "test", "support", "warmCompileCache.ts")
    ],
    {
      cwd: root,
      env: { ...process.env, NODE_COMPILE_CACHE: COMPILE_CACHE },
      stdio: "ignore",
      timeout: 60_000
    }
  )
}
