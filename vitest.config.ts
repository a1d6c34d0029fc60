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
    testTimeout: 60_000,
    hookTimeout: 120_000
  }
})
