/**
 * The compile cache of the tests' child processes (`NODE_COMPILE_CACHE`, set for them in
 * `vitest.config.ts`): a child starts ~0.2 s sooner when the compiled code of its modules is there.
 * `warm` fills it before the tests start (`warmCompileCache.ts`).
 */
import { spawnSync } from "node:child_process"
import { join } from "node:path"
import { nodeBinary, repoRoot } from "./repo.ts"

/** The cache's folder. */
export const COMPILE_CACHE = join(repoRoot, "node_modules", ".cache", "node-compile")

/**
 * Loads what the children load, in a process that exits normally and so writes the cache. A cache
 * that could not be filled only makes the children start slower: the outcome is ignored.
 */
export const warm = (): void => {
  spawnSync(
    nodeBinary,
    [
      "--no-warnings",
      "--conditions=@effect-cluster/source",
      join(repoRoot, "test", "support", "warmCompileCache.ts")
    ],
    {
      cwd: repoRoot,
      env: { ...process.env, NODE_COMPILE_CACHE: COMPILE_CACHE },
      stdio: "ignore",
      timeout: 60_000
    }
  )
}
