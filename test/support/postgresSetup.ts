/**
 * Vitest global setup: one PostgreSQL server for the whole run, its URL provided to the tests; and
 * the children's compile cache filled first (`warmCompileCache.ts`).
 */
import type { TestProject } from "vitest/node"
import * as CompileCache from "./compileCache.ts"
import { startPostgres } from "./PostgresServer.ts"

declare module "vitest" {
  export interface ProvidedContext {
    postgresUrl: string
  }
}

export default async function setup(project: TestProject) {
  CompileCache.warm()
  const server = await startPostgres()
  console.log(`PostgreSQL for the tests: ${server.description}`)
  project.provide("postgresUrl", server.url)
  return () => server.dispose()
}
