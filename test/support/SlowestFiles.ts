/**
 * A vitest reporter that prints the slowest test files at the end of a run, with their times, so
 * that the suite's growth is visible in every run (`npm test`, and so CI's `.ci/run`).
 */
import { relative } from "node:path"
import type { Reporter, TestModule } from "vitest/node"

/** How many files the list shows. */
const SHOWN = 10

/** A file's own time: importing it, its setup, and its tests and hooks. */
const timeOf = (module: TestModule): number => {
  const diagnostic = module.diagnostic()
  return (
    diagnostic.prepareDuration + diagnostic.collectDuration + diagnostic.setupDuration + diagnostic.duration
  )
}

export default class SlowestFiles implements Reporter {
  onTestRunEnd(modules: ReadonlyArray<TestModule>): void {
    const timed = modules
      .map((module) => ({ file: relative(process.cwd(), module.moduleId), millis: timeOf(module) }))
      .sort((a, b) => b.millis - a.millis)
    if (timed.length === 0) return
    const total = timed.reduce((sum, { millis }) => sum + millis, 0)
    const lines = timed
      .slice(0, SHOWN)
      .map(({ file, millis }) => `  ${(millis / 1000).toFixed(1).padStart(7)} s  ${file}`)
    console.log(
      `\nThe ${Math.min(SHOWN, timed.length)} slowest of ${timed.length} test files (${(total / 1000).toFixed(0)} s of files in all):\n${lines.join("\n")}`
    )
  }
}
