/**
 * The verification runner's nemesis: injects one fault of the schedule (`schedule.ts`) into the
 * cluster (`cluster.ts`) and heals it after its duration. Faults of a schedule overlap in time
 * (the runner starts each at its moment without waiting for the others), never two on one pod.
 */
import { Effect, ManagedRuntime } from "effect"
import { SqlClient } from "effect/sql/SqlClient"
import { PostgresJournal } from "effect-cluster/postgres"
import type { PostgresServer } from "../test/support/PostgresServer.ts"
import type * as SmallDisk from "../test/support/SmallDisk.ts"
import type { Cluster } from "./cluster.ts"
import { aftermath, attack, describeReport, type HostileTarget } from "./hostile.ts"
import type { Fault } from "./schedule.ts"

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** What the nemesis acts on. */
export interface Target {
  readonly cluster: Cluster
  /** The PostgreSQL server (none on SQLite). */
  readonly server: PostgresServer | undefined
  /** The small disk holding the SQLite store (none on PostgreSQL). */
  readonly disk: SmallDisk.SmallDisk | undefined
  /** The store the pods share (a SQLite file, or the server's URL, not a pod's path to it). */
  readonly store: string
  /** The run's seed: each hostile attack draws from it and the fault's moment. */
  readonly seed: number
  /** What the hostile sender found wrong (one line each): anomalies of the run. */
  readonly findings: Array<string>
}

/** Injects `fault`, waits its duration, heals it; resolves once the cluster has it no more. */
export const inject = async (target: Target, fault: Fault): Promise<void> => {
  const pod = target.cluster.pods[fault.pod]!
  switch (fault.kind) {
    case "terminate":
      return terminateSessions(target.server!.url)
    case "db-restart":
      await target.server!.stop()
      await sleep(fault.millis)
      return target.server!.start()
    case "pause":
      pod.child!.kill("SIGSTOP")
      await sleep(fault.millis)
      pod.child!.kill("SIGCONT")
      return
    case "net-hang":
      pod.inbound.pause()
      await sleep(fault.millis)
      return pod.inbound.resume()
    case "store-hang":
      pod.toStore!.pause()
      await sleep(fault.millis)
      return pod.toStore!.resume()
    case "store-cut":
      pod.toStore!.pause()
      await terminateSessions(target.server!.url, `pod-${fault.pod}`)
      await sleep(fault.millis)
      return pod.toStore!.resume()
    case "net-reset":
      return pod.inbound.reset()
    case "store-reset":
      return pod.toStore!.reset()
    case "net-slow":
    case "store-slow": {
      const path = fault.kind === "net-slow" ? pod.inbound : pod.toStore!
      path.delay(fault.delayMillis!)
      await sleep(fault.millis)
      return path.delay(0)
    }
    case "disk-full":
      target.disk!.fill()
      await sleep(fault.millis)
      return target.disk!.free()
    case "hostile":
      return hostile(target, fault.at)
    case "kill":
    case "restart":
    case "skew":
      await target.cluster.stop(fault.pod, fault.kind === "kill" ? "SIGKILL" : "SIGTERM")
      await sleep(fault.kind === "skew" ? 0 : fault.millis)
      // A skewed clock lasts as long as the process: until the pod's next restart.
      return target.cluster.spawn(fault.pod, fault.kind === "skew" ? fault.offsetMillis : undefined)
  }
}

/**
 * The hostile sender against the verify pods (`pod.ts`): their entity and workflow, well-formed
 * messages and requests of them to disguise the bad ones. The misuse of the public API from a pod
 * of the cluster is left to `test/verify/Hostile.test.ts`: that pod would host types of its own
 * and take shards of the run. Its honest traffic is checked by the run's checkers.
 */
const hostile = async (target: Target, at: number) => {
  const options: HostileTarget = {
    store: target.store,
    seed: target.seed * 1_000 + Math.floor(at / 1_000),
    entityType: "VerifyCounter",
    message: (messageId) => JSON.stringify({ _tag: "Add", messageId }),
    workflow: "Order",
    request: (id) => JSON.stringify({ _tag: "Order", id, sleepMillis: 0, signal: false, child: false }),
    floodConnections: 600
  }
  const report = await attack(options)
  const problems = await aftermath(options, report)
  console.log(
    `    hostile: ${report.actions.length} actions, ${report.planted.length} rows planted, ${problems.length} problems`
  )
  if (problems.length > 0) {
    for (const line of describeReport(report)) console.log(`      ${line}`)
    target.findings.push(...problems)
  }
}

/**
 * Ends every other session of the run's database (the pods'), or only the liveness session of `podId`
 * (its backend pid is the first part of its `session` marker): `pg_terminate_backend`.
 */
const terminateSessions = async (url: string, podId?: string) => {
  const runtime = ManagedRuntime.make(PostgresJournal.clientLayer({ url, maxConnections: 1 }))
  try {
    await runtime.runPromise(
      Effect.flatMap(SqlClient, (sql) =>
        podId === undefined
          ? sql`SELECT pg_terminate_backend(pid) FROM pg_stat_activity
              WHERE pid <> pg_backend_pid() AND backend_type = 'client backend' AND datname = current_database()`
          : sql`SELECT pg_terminate_backend(split_part(session, ':', 1)::int)
              FROM effect_cluster_pods WHERE pod_id = ${podId}`
      )
    )
  } finally {
    await runtime.dispose()
  }
}
