import { defaultServerConditions } from "vite"
import { defineConfig } from "vitest/config"

export default defineConfig({
  // `import "effect-cluster"` resolves to the sources in this repository (package.json `exports`).
  ssr: { resolve: { conditions: ["@effect-cluster/source", ...defaultServerConditions] } },
  test: {
    include: ["test/**/*.test.ts", "examples/**/*.test.ts"],
    // A real PostgreSQL server for the run (test/support/PostgresServer.ts); never skipped.
    globalSetup: ["test/support/postgresSetup.ts"],
    // The default output, then the ten slowest files with their times (growth stays visible).
    reporters: ["default", "./test/support/SlowestFiles.ts"],
    // Two files at a time on this 2-core machine (vitest's default leaves a core free: one at a
    // time). The cluster tests wait for the events they need, so they hold under the contention.
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 120_000
  }
})
