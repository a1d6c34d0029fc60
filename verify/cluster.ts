/**
 * The verification runner's cluster under test: `pods` processes of `pod.ts` on one store, each
 * reachable by its peers only through a TCP proxy of its own (it advertises the proxy's address),
 * and, on PostgreSQL, reaching the server only through another (its store URL names the proxy), so
 * that the nemesis can hang, slow down or reset the path to one pod or from one pod to the store.
 */
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import * as ChildPod from "../test/support/ChildPod.ts"
import { freePort } from "../test/support/freePort.ts"
import * as TcpProxy from "../test/support/TcpProxy.ts"
import { type Anomaly, recoveries } from "./checkers.ts"

/** How long a stopped process may take to exit (a graceful stop hands its shards back first). */
const STOP_MILLIS = 30_000

/** A pod whose processes exit before they are ready this many times in a row is not started again. */
const MAX_FAILED_STARTS = 5

/** What a pod prints (see `pod.ts`). */
export interface PodMessage {
  readonly ready?: string
  readonly ops?: number
  readonly done?: boolean
  readonly dump?: Record<string, ReadonlyArray<string>>
  readonly dumpError?: string
}

/** The workload's settings, the same for every pod. */
export interface Workload {
  readonly seed: number
  readonly perSecond: number
  readonly counters: number
  readonly leaseMillis: number
  /** When the pods stop submitting (epoch ms). */
  readonly until: number
}

/** One pod: its process now, its proxies, how many processes it had. */
export interface Pod {
  child: ChildPod.ChildPod<PodMessage> | undefined
  incarnations: number
  /** The path its peers take to it. */
  readonly inbound: TcpProxy.TcpProxy
  /** Its path to the PostgreSQL server (none on SQLite). */
  readonly toStore: TcpProxy.TcpProxy | undefined
}

export interface Cluster {
  readonly pods: ReadonlyArray<Pod>
  /** Stops pod `index`'s process with `signal` (an exit the runner expects). */
  readonly stop: (index: number, signal: "SIGKILL" | "SIGTERM") => Promise<void>
  /** The processes that exited without the runner asking (each a finding), restarted since. */
  readonly unexpectedExits: () => ReadonlyArray<string>
  /**
   * The pods' recovery warnings (an execution found `running` with no run in its owner, and
   * started: see the engine's `recoveryInterval`), each with its process: every one is a finding.
   */
  readonly recoveries: () => ReadonlyArray<Anomaly>
  /** Writes every process's output to `dir` (`pod-N-K.log`: pod N's K-th process). */
  readonly saveLogs: (dir: string) => void
  /** Starts a new process of pod `index` (the last one ended), with its clock offset if given. */
  readonly spawn: (index: number, clockOffsetMillis?: number) => Promise<void>
  /** Ends every process and closes the proxies. */
  readonly dispose: () => Promise<void>
}

/**
 * Starts the pods on `store` (a SQLite file or a postgres:// URL), every one ready.
 */
export const start = async (options: {
  readonly pods: number
  readonly store: string
  readonly ledger: string
  readonly workload: Workload
}): Promise<Cluster> => {
  const postgres = options.store.startsWith("postgres") ? new URL(options.store) : undefined
  const pods: Array<Pod> = []
  const ports: Array<number> = []
  for (let index = 0; index < options.pods; index++) {
    const port = await freePort()
    ports.push(port)
    pods.push({
      child: undefined,
      incarnations: 0,
      inbound: await TcpProxy.start({ targetHost: "127.0.0.1", targetPort: port }),
      toStore:
        postgres === undefined
          ? undefined
          : await TcpProxy.start({ targetHost: postgres.hostname, targetPort: Number(postgres.port) })
    })
  }
  const storeOf = (pod: Pod) => {
    if (postgres === undefined || pod.toStore === undefined) return options.store
    const url = new URL(options.store)
    url.port = String(pod.toStore.port)
    return url.toString()
  }
  const processes: Array<{ readonly name: string; readonly child: ChildPod.ChildPod<PodMessage> }> = []
  const stopping = new Set<ChildPod.ChildPod<PodMessage>>()
  const unexpected: Array<string> = []
  /** Per pod, the processes in a row that exited before they were ready. */
  const failedStarts = pods.map(() => 0)
  let disposing = false
  const spawn = async (index: number, clockOffsetMillis?: number) => {
    const pod = pods[index]!
    const name = `pod-${index}-${pod.incarnations}`
    const child = ChildPod.spawn<PodMessage>("verify/pod.ts", {
      args: [
        JSON.stringify({
          store: storeOf(pod),
          ledger: options.ledger,
          pod: index,
          incarnation: pod.incarnations++,
          leaseTtlMillis: options.workload.leaseMillis,
          seed: options.workload.seed,
          perSecond: options.workload.perSecond,
          counters: options.workload.counters,
          until: options.workload.until,
          network: { port: ports[index]!, advertise: `127.0.0.1:${pod.inbound.port}` },
          clockOffsetMillis
        })
      ]
    })
    pod.child = child
    processes.push({ name, child })
    // A process that exits unasked is a finding; the pod gets a new one, so the run goes on.
    let replacement: Promise<void> | undefined
    let hasExited = false
    const exited = child.exited.then((exit) => {
      hasExited = true
      if (disposing || stopping.has(child)) return
      unexpected.push(`${name} exited on its own (code ${exit.code}, signal ${exit.signal})`)
      if (pod.child !== child) return
      if (++failedStarts[index]! > MAX_FAILED_STARTS) {
        unexpected.push(`pod ${index} failed to start ${MAX_FAILED_STARTS} times in a row; not started again`)
        return
      }
      replacement = spawn(index, clockOffsetMillis)
      replacement.catch(() => {})
    })
    try {
      await child.waitFor((message) => message.ready !== undefined, 60_000)
      failedStarts[index] = 0
    } catch (error) {
      // It exited before it was ready (counted above): the pod is ready once its replacement is.
      // Not ready in time but still running: the caller's failure.
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 1_000))])
      if (!hasExited) throw error
      if (replacement === undefined) throw error
      return replacement
    }
  }
  const cluster: Cluster = {
    pods,
    spawn,
    stop: async (index, signal) => {
      const child = pods[index]!.child!
      stopping.add(child)
      child.kill(signal)
      // A graceful stop that does not end is a finding; the process is then killed, so the run
      // goes on.
      const stopped = await Promise.race([
        child.exited.then(() => true),
        new Promise<false>((resolve) => setTimeout(() => resolve(false), STOP_MILLIS))
      ])
      if (!stopped) {
        const name = processes.find((entry) => entry.child === child)?.name ?? `pod ${index}`
        unexpected.push(`${name} did not exit within ${STOP_MILLIS} ms of ${signal}; killed`)
        child.kill("SIGKILL")
        await child.exited
      }
    },
    unexpectedExits: () => unexpected,
    recoveries: () => processes.flatMap(({ name, child }) => recoveries(name, child.stdout())),
    saveLogs: (dir) => {
      for (const { name, child } of processes) {
        writeFileSync(join(dir, `${name}.log`), `${child.stdout()}\n--- stderr\n${child.stderr()}`)
      }
    },
    dispose: async () => {
      disposing = true
      for (const pod of pods) await pod.child?.dispose()
      for (const pod of pods) {
        await pod.inbound.close()
        await pod.toStore?.close()
      }
    }
  }
  try {
    await Promise.all(pods.map((_, index) => spawn(index)))
  } catch (error) {
    await cluster.dispose()
    throw error
  }
  return cluster
}
