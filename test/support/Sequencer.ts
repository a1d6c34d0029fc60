/**
 * The order the test files start in. Vitest starts the files that took longest in the previous run
 * first (its cache, under `node_modules/.vite`), so that four at a time keep busy to the end. A
 * fresh clone has no such cache, and vitest falls back to the largest files first: the tests that
 * start processes (pods, CLIs, the verification runner), the longest by far, are often small files
 * and started last, and the run waited a minute or more at its end for one of them
 * (`test/verify/Verify.test.ts`: 60 lines, 60–120 s). Without a previous run's times, those files
 * start first (the largest of them first), then the others as vitest would order them.
 */
import { readFileSync } from "node:fs"
import { BaseSequencer, type TestSpecification } from "vitest/node"

/** Whether a test file starts child processes (the long multi-process tests). */
const startsProcesses = (file: string): boolean => {
  try {
    return /ChildPod|child_process|harness\.ts|spawnSync/.test(readFileSync(file, "utf8"))
  } catch {
    return false
  }
}

export class ProcessesFirst extends BaseSequencer {
  override async sort(files: Array<TestSpecification>): Promise<Array<TestSpecification>> {
    const sorted = await super.sort(files)
    // With every file's time from a previous run, vitest's own order (longest first) is better.
    if (files.every((spec) => this.ctx.cache.getTestSpecificationResult(spec) !== undefined)) return sorted
    const first = new Set(sorted.filter((spec) => startsProcesses(spec.moduleId)))
    return [...sorted.filter((spec) => first.has(spec)), ...sorted.filter((spec) => !first.has(spec))]
  }
}
