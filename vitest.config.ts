import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts", "examples/**/*.test.ts"],
    // A real PostgreSQL server for the run (test/support/PostgresServer.ts); never skipped.
    globalSetup: ["test/support/postgresSetup.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000
  }
})
