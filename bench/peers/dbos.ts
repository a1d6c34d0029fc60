/**
 * The peer baseline's second peer: DBOS Transact (`@dbos-inc/dbos-sdk`), whose workflows and steps
 * are checkpointed in a PostgreSQL system database. The workload is `bench/workload.ts`'s: a
 * workflow of three steps that each return a number at once, started and awaited in the process
 * (`DBOS.withNextWorkflowID(id, () => workflow(id))`), `concurrency` at a time.
 *
 * It imports `@dbos-inc/dbos-sdk` from `bench/peers/node_modules` (installed on demand by the
 * bench), so the repository's `tsconfig.json` leaves it out; `bench/peers/tsconfig.json` checks it.
 * DBOS is a process-wide singleton: one launch at a time, configured before each.
 */
import { DBOS } from "@dbos-inc/dbos-sdk"

const workflow = DBOS.registerWorkflow(
  async (id: number) => {
    const a = await DBOS.runStep(async () => id, { name: "a" })
    const b = await DBOS.runStep(async () => a + 1, { name: "b" })
    return await DBOS.runStep(async () => b + 1, { name: "c" })
  },
  { name: "Bench" }
)

/**
 * Launches DBOS with its system database at `url` (created and migrated by DBOS if missing; the
 * same pool size as our engine's, 10), runs `executions` executions `concurrency` at a time, and
 * shuts DBOS down. Resolves with the wall time of the executions alone, in seconds.
 */
export const runWorkload = async (url: string, executions: number, concurrency: number): Promise<number> => {
  DBOS.setConfig({
    name: "effect-cluster-bench",
    systemDatabaseUrl: url,
    systemDatabasePoolSize: 10,
    logLevel: "warn"
  })
  await DBOS.launch()
  try {
    let next = 0
    const started = performance.now()
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < executions) {
          const id = next++
          await DBOS.withNextWorkflowID(`bench-${id}`, () => workflow(id))
        }
      })
    )
    return (performance.now() - started) / 1000
  } finally {
    await DBOS.shutdown()
  }
}
