/**
 * Throughput of 1, 2 and 3 pods on one PostgreSQL database (`npm run bench -- --only pods`): each pod
 * is a child process (`bench/pods/pod.ts`) running the 3-activity workflow (`bench/workload.ts`) and
 * submits its share of the executions, whose ids spread over every shard, so with n pods (n-1)/n of
 * each pod's executions run in another pod (the start leaves an entry in the owner's inbox, pushed
 * with `LISTEN/NOTIFY`).
 *
 * Two ways to load the cluster, one after the other on the same pods:
 * - `sendDiscard` (open loop): every pod stores its share as fast as it can (256 at a time); the
 *   figure is all executions over the time until the last one is `succeeded` (polled every 50 ms);
 * - `send` (closed loop, 256 per pod): every pod waits for each result, which for an execution that
 *   runs elsewhere is read from the store (batched, every 100 ms: `deliveryPollInterval`).
 * Beside each figure, what could bound it: the CPU of the pods, of the PostgreSQL server (its
 * postmaster's processes) and of the whole machine (`/proc`), in cores, and the commits the server
 * counted per execution (`pg_stat_database`, a fresh database per measurement).
 */
import { readdirSync, readFileSync } from "node:fs"
import { Effect } from "effect"
import type { SqlClient } from "effect/sql/SqlClient"
import * as ChildPod from "../test/support/ChildPod.ts"
import { client, committed, dropDatabase, freshDatabase, serverUrl } from "./postgres.ts"
import { median } from "./workload.ts"

interface PodMessage {
  readonly ready?: string
  readonly done?: number
  readonly cpu?: number
}

/** Clock ticks per second of `/proc` times (USER_HZ; 100 on Linux). */
const HZ = 100

/** Parsed `/proc/<pid>/stat`: parent pid and CPU time in seconds (user + system), if it still runs. */
const processStat = (pid: number) => {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8")
    // The command name is in parentheses and may contain spaces: fields start after the last ")".
    const fields = text.slice(text.lastIndexOf(")") + 2).split(" ")
    return { ppid: Number(fields[1]), seconds: (Number(fields[11]) + Number(fields[12])) / HZ }
  } catch {
    return undefined
  }
}

/** CPU seconds of the PostgreSQL server whose postmaster is `postmaster`: itself and its children. */
const serverCpu = (postmaster: number) => {
  let seconds = processStat(postmaster)?.seconds ?? 0
  for (const entry of readdirSync("/proc")) {
    const pid = Number(entry)
    if (!Number.isInteger(pid)) continue
    const stat = processStat(pid)
    if (stat?.ppid === postmaster) seconds += stat.seconds
  }
  return seconds
}

/** Busy and total CPU seconds of the machine (all cores) from `/proc/stat`. */
const machineCpu = () => {
  const [, ...values] = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/)
  const ticks = values.map(Number)
  const idle = (ticks[3] ?? 0) + (ticks[4] ?? 0)
  const total = ticks.reduce((sum, value) => sum + value, 0)
  return { busy: (total - idle) / HZ, total: total / HZ }
}

interface Measured {
  readonly pods: number
  readonly mode: "sendDiscard" | "send"
  readonly executions: number
  readonly seconds: number
  /** Cores used during the measurement. */
  readonly podCores: number
  readonly serverCores: number
  readonly machineCores: number
  readonly commitsPerExecution: number
  readonly walFlushesPerExecution: number
}

/** WAL flushes of the whole server so far (nothing else uses the throwaway server meanwhile). */
const walFlushes = (sql: SqlClient) =>
  Effect.map(sql<{ readonly wal_sync: unknown }>`SELECT wal_sync FROM pg_stat_wal`, (rows) =>
    Number(rows[0]?.wal_sync)
  )

/** One measurement of each mode on `pods` fresh pods and a fresh database. */
const measure = (server: string, pods: number, executions: number) =>
  Effect.gen(function* () {
    const url = yield* freshDatabase(server, `pods${pods}`)
    yield* Effect.addFinalizer(() => Effect.ignore(dropDatabase(server, url)))
    const stats = yield* client(server, 1)
    const sql = yield* client(url, 1)
    const [backend] = yield* sql<{ readonly pid: number }>`SELECT pg_backend_pid() AS pid`
    const postmaster = processStat(backend!.pid)!.ppid
    const children: Array<ChildPod.ChildPod<PodMessage>> = []
    for (let i = 0; i < pods; i++) {
      const pod = yield* ChildPod.scoped<PodMessage>("bench/pods/pod.ts", {
        args: [JSON.stringify({ url, podId: `pod-${i + 1}` })]
      })
      yield* Effect.promise(() => pod.waitFor((m) => m.ready !== undefined, 30_000))
      children.push(pod)
    }
    // Evenly spread, no handover pending.
    const database = new URL(url).pathname.slice(1)
    while (true) {
      const rows = yield* sql<{
        readonly owner: string | null
        readonly n: unknown
        readonly pending: unknown
      }>`
        SELECT owner, count(*) AS n, count(next_owner) AS pending FROM effect_cluster_shards GROUP BY owner`
      const even = rows.every((row) => row.owner !== null && Number(row.n) >= Math.floor(300 / pods) - 5)
      if (rows.length === pods && even && rows.every((row) => Number(row.pending) === 0)) break
      yield* Effect.sleep("200 millis")
    }
    const cpuOfPods = Effect.promise(async () => {
      let micros = 0
      for (const pod of children) {
        pod.skipReceived()
        pod.send({ cpu: true })
        micros += (await pod.waitFor((m) => m.cpu !== undefined)).cpu!
      }
      return micros / 1e6
    })
    const results: Array<Measured> = []
    let next = 0
    for (const mode of ["sendDiscard", "send"] as const) {
      const share = Math.ceil(executions / pods)
      const first = next
      next += share * pods
      const before = {
        pods: yield* cpuOfPods,
        server: serverCpu(postmaster),
        machine: machineCpu(),
        commits: yield* committed(stats, database),
        wal: yield* walFlushes(stats)
      }
      const started = performance.now()
      for (const [i, pod] of children.entries()) {
        pod.skipReceived()
        pod.send({ run: { mode, from: first + i * share, count: share, concurrency: 256 } })
      }
      yield* Effect.promise(() =>
        Promise.all(children.map((pod) => pod.waitFor((m) => m.done !== undefined, 600_000)))
      )
      while (true) {
        const [row] = yield* sql<{ readonly n: unknown }>`SELECT count(*) AS n FROM effect_cluster_executions
          WHERE status = 'succeeded'`
        if (Number(row?.n) >= next) break
        yield* Effect.sleep("50 millis")
      }
      const seconds = (performance.now() - started) / 1000
      const machine = machineCpu()
      const podSeconds = (yield* cpuOfPods) - before.pods
      const serverSeconds = serverCpu(postmaster) - before.server
      // Backends report their commit counters when idle, at most once a second.
      yield* Effect.sleep("1200 millis")
      results.push({
        pods,
        mode,
        executions: share * pods,
        seconds,
        podCores: podSeconds / seconds,
        serverCores: serverSeconds / seconds,
        machineCores: (machine.busy - before.machine.busy) / seconds,
        commitsPerExecution: ((yield* committed(stats, database)) - before.commits) / (share * pods),
        walFlushesPerExecution: ((yield* walFlushes(stats)) - before.wal) / (share * pods)
      })
    }
    return results
  }).pipe(Effect.scoped)

/** `rounds` rounds of 1, 2 and 3 pods, `executions` per measurement; prints the medians. */
export const podsBench = (rounds: number, executions: number, givenUrl: string | undefined) =>
  Effect.gen(function* () {
    const server = yield* serverUrl(givenUrl)
    const all: Array<Measured> = []
    for (let round = 0; round < rounds; round++) {
      for (const pods of [1, 2, 3]) {
        const rows = yield* measure(server, pods, executions)
        for (const row of rows) console.log(JSON.stringify(row))
        all.push(...rows)
      }
    }
    console.log(
      `\nPostgreSQL, ${executions} executions per measurement, median of ${rounds} rounds (range); cores used during the measurement (2 on this machine)\n`
    )
    console.log(
      "| pods | load | executions/s | ÷ 1 pod | CPU µs per execution: pods | server | machine's CPU (cores busy of 2) | server transactions / execution | WAL flushes / execution |"
    )
    console.log("|---|---|---|---|---|---|---|---|---|")
    for (const mode of ["sendDiscard", "send"] as const) {
      const rowsOf = (pods: number) => all.filter((row) => row.pods === pods && row.mode === mode)
      const rate = (row: Measured) => row.executions / row.seconds
      const single = median(rowsOf(1).map(rate))
      for (const pods of [1, 2, 3]) {
        const rows = rowsOf(pods)
        const rates = rows.map(rate)
        const med = (f: (row: Measured) => number, digits = 2) => median(rows.map(f)).toFixed(digits)
        console.log(
          `| ${pods} | ${mode} | ${median(rates).toFixed(0)} (${Math.min(...rates).toFixed(0)}–${Math.max(...rates).toFixed(0)}) | ${(median(rates) / single).toFixed(2)} | ${med((row) => (row.podCores / rate(row)) * 1e6, 0)} | ${med((row) => (row.serverCores / rate(row)) * 1e6, 0)} | ${med((row) => row.machineCores)} | ${med((row) => row.commitsPerExecution)} | ${med((row) => row.walFlushesPerExecution)} |`
        )
      }
    }
  }).pipe(Effect.scoped)
