/** Vitest global setup: one PostgreSQL server for the whole run, its URL provided to the tests. */
import type { TestProject } from "vitest/node"
import { startPostgres } from "./PostgresServer.ts"

declare module "vitest" {
  export interface ProvidedContext {
    postgresUrl: string
  }
}

export default async function setup(project: TestProject) {
  const server = await startPostgres()
  console.log(`PostgreSQL for the tests: ${server.description}`)
  project.provide("postgresUrl", server.url)
  return () => server.dispose()
}
