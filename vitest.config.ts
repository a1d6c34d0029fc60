import { defaultServerConditions } from "vite"
import { defineConfig } from "vitest/config"
import { COMPILE_CACHE } from "./test/support/compileCache.ts"
import { ProcessesFirst } from "./test/support/Sequencer.ts"

export default defineConfig({
  // `import "effect-cluster"` resolves to the sources in this repository (package.json `exports`).
  ssr: { resolve: { conditions: ["@effect-cluster/source", ...defaultServerConditions] } },
  test: {
    include: ["test/**/*.test.ts", "examples/**/*.test.ts"],
    // A real PostgreSQL server for the run (test/support/PostgresServer.ts); never skipped.
    globalSetup: ["test/support/postgresSetup.ts"],
    // The default output, then the ten slowest files with their times (growth stays visible).
    reporters: ["default", "./test/support/SlowestFiles.ts"],
    // Four files at a time on this 2-core machine (vitest's default leaves a core free: one at a
    // time). The multi-process tests spend most of their time waiting for events (a lease to end,
    // a child to start): with two files at a time the suite used 1.1 cores of 2, with four 1.6.
    // They wait for the events they need, so they hold under the contention (and beside a CPU hog).
    maxWorkers: 4,
    // Without a previous run's times (a fresh clone), the files that start processes go first.
    sequence: { sequencer: ProcessesFirst },
    // The child processes the tests start (pods, CLIs, crash fixtures: hundreds per run) keep the
    // compiled code of their modules there: each starts ~0.2 s sooner than with a cold compile.
    env: { NODE_COMPILE_CACHE: COMPILE_CACHE },
    testTimeout: 60_000,
    hookTimeout: 120_000
  }
})
