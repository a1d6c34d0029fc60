/**
 * Temporary folders of tests, removed when they are no longer needed, so test runs leave nothing
 * in the OS temp folder.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { onTestFinished } from "vitest"

const remove = (dir: string) => rmSync(dir, { recursive: true, force: true })

/** A new folder `<tmp>/<prefix>XXXXXX`, removed when the current test finishes (passed or not). */
export const testTempDir = (prefix: string): string => {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  onTestFinished(() => remove(dir))
  return dir
}

/** A new folder `<tmp>/<prefix>XXXXXX`, removed when the scope closes. */
export const scopedTempDir = (prefix: string) =>
  Effect.acquireRelease(
    Effect.sync(() => mkdtempSync(join(tmpdir(), prefix))),
    (dir) => Effect.sync(() => remove(dir))
  )
