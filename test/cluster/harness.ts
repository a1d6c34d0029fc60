/**
 * What the multi-process ownership tests share: a store (a fresh SQLite file or a fresh PostgreSQL
 * database), pods started as child processes on it (`pod.ts`), a reader of the store that is not a
 * pod itself, and the checks of the ledger every activity attempt writes to.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Layer, type ManagedRuntime, ManagedRuntime as Runtime } from "effect"
import { expect } from "vitest"
import {
  type DurableExecutionJournal,
  DurableExecutionJournal as Journal,
  ShardStore,
  SqliteJournal
} from "../../src/index.ts"
import { PostgresJournal } from "../../src/postgres.ts"
import * as ChildPod from "../support/ChildPod.ts"
import { freshDatabase } from "../support/freshDatabase.ts"
import * as TcpProxy from "../support/TcpProxy.ts"

/** Where the pods of one test keep their journal. */
export interface Store {
  readonly kind: "sqlite" | "pg"
  /** The SQLite file, or the PostgreSQL URL. */
  readonly location: string
  /** The ledger file every pod appends its activity attempts to. */
  readonly ledger: string
  readonly dir: string
}

/** A fresh store of `kind` and an empty ledger. */
export const freshStore = async (kind: "sqlite" | "pg", name: string): Promise<Store> => {
  const dir = mkdtempSync(join(tmpdir(), `cluster-${name}-`))
  const ledger = join(dir, "ledger.jsonl")
  writeFileSync(ledger, "")
  const location = kind === "sqlite" ? join(dir, "journal.db") : await freshDatabase(name)
  return { kind, location, ledger, dir }
}

export const removeStore = (store: Store) => rmSync(store.dir, { recursive: true, force: true })

/**
 * A TCP proxy in front of the PostgreSQL server of `store`, and the store's URL through it (pass it
 * as a pod's `via`). Close the proxy when the test ends.
 */
export const viaProxy = async (store: Store) => {
  const url = new URL(store.location)
  const proxy = await TcpProxy.start({ targetHost: url.hostname, targetPort: Number(url.port) })
  url.host = `127.0.0.1:${proxy.port}`
  return { proxy, via: url.toString() }
}

/** Options of one pod (see `pod.ts`). */
export interface PodOptions {
  readonly podId?: string
  readonly leaseTtlMillis?: number
  readonly shardCount?: number
  readonly activityMillis?: number
  /** Every n-th execution's activities take `slowMillis`. */
  readonly slowEvery?: number
  readonly slowMillis?: number
  readonly submit?: {
    readonly prefix: string
    readonly from?: number
    readonly count: number
    readonly perSecond: number
  }
  /** Connect through this URL instead of the store's (a proxy in front of PostgreSQL). */
  readonly via?: string
  /** The pod's clock is this many ms ahead of the host's (behind when negative). */
  readonly clockOffsetMillis?: number
}

/** A message a pod prints: its lifecycle, or one of its logs. */
export interface PodMessage {
  readonly ready?: string
  readonly submitted?: number
  /** The pod's submissions ended (all sent, or `{"stopSubmitting": true}`); `submitted` is how many. */
  readonly submitDone?: boolean
  readonly stopped?: string
  /** The pod stops itself inside an ownership transaction of this operation (`freezeInOwnershipLock`). */
  readonly freezing?: string
  /** With `freezing: "attempt"`: the attempt it stops in (`execution/activity#attempt`, `freezeInAttempt`). */
  readonly attempt?: string
  /** Every send of a burst (`{"burst": ...}` on stdin) returned. */
  readonly burstDone?: number
  /** The pod's lease renewals hang from now on (`{"stopRenewing": true}` on stdin). */
  readonly renewalsStopped?: string
  readonly level?: string
  readonly message?: ReadonlyArray<unknown>
}

/**
 * Ends `pod`'s submissions now (the test saw what it needed under load; the rest would only make
 * it wait) and returns how many executions it sent.
 */
export const finishSubmitting = async (pod: ChildPod.ChildPod<PodMessage>): Promise<number> => {
  pod.send({ stopSubmitting: true })
  const done = await pod.waitFor((m) => m.submitDone === true, 30_000)
  return done.submitted ?? 0
}

/** Starts a pod on `store`; the test's cleanup SIGKILLs it if it is still running. */
export const startPod = (store: Store, options: PodOptions = {}): ChildPod.ChildPod<PodMessage> =>
  ChildPod.spawn<PodMessage>("test/cluster/pod.ts", {
    args: [
      JSON.stringify({
        store: options.via ?? store.location,
        ledger: store.ledger,
        podId: options.podId,
        leaseTtlMillis: options.leaseTtlMillis,
        shardCount: options.shardCount,
        clockOffsetMillis: options.clockOffsetMillis,
        activityMillis: options.activityMillis ?? 20,
        slowEvery: options.slowEvery,
        slowMillis: options.slowMillis,
        submit: options.submit === undefined ? undefined : { from: 0, ...options.submit }
      })
    ]
  })

/** Starts a pod and waits until its engine runs. */
export const readyPod = async (store: Store, options: PodOptions = {}) => {
  const pod = startPod(store, options)
  const ready = await pod.waitFor((message) => message.ready !== undefined, 30_000)
  return { pod, podId: ready.ready! }
}

/** The store as the test sees it: the journal and the ownership tables, without being a pod. */
export type Reader = ManagedRuntime.ManagedRuntime<
  Journal.DurableExecutionJournal | ShardStore.ShardStore,
  unknown
>

export const reader = (store: Store): Reader =>
  Runtime.make(
    Layer.fresh(
      store.kind === "sqlite"
        ? SqliteJournal.layer({ filename: store.location })
        : PostgresJournal.layer({ url: store.location })
    ) as Layer.Layer<Journal.DurableExecutionJournal | ShardStore.ShardStore, unknown>
  )

/** Runs `effect` with the reader's services. */
export const read = <A, E>(
  runtime: Reader,
  effect: Effect.Effect<A, E, Journal.DurableExecutionJournal | ShardStore.ShardStore>
): Promise<A> => runtime.runPromise(effect)

/** Every stored execution of the `Order` workflow, by id (all pages). */
export const executions = (runtime: Reader) =>
  read(
    runtime,
    Effect.gen(function* () {
      const journal = yield* Journal.DurableExecutionJournal
      const rows: Array<DurableExecutionJournal.ExecutionRecord> = []
      let after: string | undefined
      while (true) {
        const page = yield* journal.list({ after, limit: 1000 })
        rows.push(...page)
        if (page.length < 1000) return rows
        after = page[page.length - 1]!.executionId
      }
    })
  )

/** The owner of every shard. */
export const shards = (runtime: Reader) =>
  read(
    runtime,
    Effect.flatMap(ShardStore.ShardStore, (store) => store.shards)
  )

/** Polls `check` every 100 ms until it holds, for at most `timeoutMs`; returns the time it took. */
export const eventually = async (what: string, check: () => Promise<boolean>, timeoutMs = 30_000) => {
  const started = Date.now()
  while (!(await check())) {
    if (Date.now() - started > timeoutMs) throw new Error(`${what}: not true after ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return Date.now() - started
}

/** Waits until every stored execution is final, and returns them. */
export const allFinal = async (runtime: Reader, expected: number, timeoutMs = 60_000) => {
  let rows: ReadonlyArray<DurableExecutionJournal.ExecutionRecord> = []
  await eventually(
    `all ${expected} executions final`,
    async () => {
      rows = await executions(runtime)
      return rows.length >= expected && rows.every((row) => row.status === "succeeded")
    },
    timeoutMs
  )
  return rows
}

/** One line of the ledger. */
export interface LedgerLine {
  readonly k: "start" | "end" | "stop"
  readonly e: string
  readonly s: string
  readonly a: number
  readonly p: string
  readonly sh: number | null
  readonly ep: number | null
  readonly t: number
}

export const ledger = (store: Store): ReadonlyArray<LedgerLine> =>
  readFileSync(store.ledger, "utf8")
    .split("\n")
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as LedgerLine)

/**
 * The checks every scenario makes on the ledger:
 * - no activity attempt (execution, activity, attempt number) started twice;
 * - no execution ran in two pods at once: each attempt spans from its start to its end (or its
 *   stop), or to `deaths[pod]` when its pod was SIGKILLed before it ended; attempts of one
 *   execution in different pods never overlap.
 * Returns the attempts, for scenario-specific checks.
 */
export const checkLedger = (
  store: Store,
  deaths: Readonly<Record<string, number>> = {},
  options: { readonly allowOverlapOf?: ReadonlySet<string> } = {}
) => {
  const lines = ledger(store)
  const starts = lines.filter((line) => line.k === "start")
  const key = (line: LedgerLine) => `${line.e}/${line.s}#${line.a}`
  const seen = new Map<string, LedgerLine>()
  for (const start of starts) {
    const earlier = seen.get(key(start))
    expect(earlier, `attempt ${key(start)} started twice (pods ${earlier?.p} and ${start.p})`).toBeUndefined()
    seen.set(key(start), start)
  }
  const ends = new Map(lines.filter((line) => line.k !== "start").map((line) => [key(line), line.t]))
  const spans = starts.map((start) => ({
    start,
    from: start.t,
    to: ends.get(key(start)) ?? deaths[start.p] ?? Number.POSITIVE_INFINITY
  }))
  const byExecution = new Map<string, Array<(typeof spans)[number]>>()
  for (const span of spans) byExecution.set(span.start.e, [...(byExecution.get(span.start.e) ?? []), span])
  for (const [execution, list] of byExecution) {
    if (options.allowOverlapOf?.has(execution)) continue
    for (const a of list) {
      for (const b of list) {
        if (a.start.p === b.start.p || a === b) continue
        const overlap = a.from < b.to && b.from < a.to
        expect(
          overlap,
          `execution ${execution} ran in ${a.start.p} (${a.start.s}#${a.start.a}, epoch ${a.start.ep}) and ${b.start.p} (${b.start.s}#${b.start.a}, epoch ${b.start.ep}) at once`
        ).toBe(false)
      }
    }
  }
  return starts
}

/**
 * Whether a pod's log shows a write of its refused for a stale epoch: by the store, in the write's
 * transaction ("the store refused a write"), or by the pod itself before sending it, its lease
 * having run out by its own clock ("refused before it was sent").
 */
export const refusedWrite = (message: PodMessage) =>
  message.level === "WARN" &&
  /refused a write|refused before it was sent/.test(JSON.stringify(message.message ?? ""))

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Whether nobody holds the SQLite file's write lock now (a busy lock fails at once). */
export const writeLockFree = async (file: string): Promise<boolean> => {
  const { DatabaseSync } = await import("node:sqlite")
  const db = new DatabaseSync(file)
  try {
    db.exec("PRAGMA busy_timeout = 0")
    db.exec("BEGIN IMMEDIATE")
    db.exec("ROLLBACK")
    return true
  } catch {
    return false
  } finally {
    db.close()
  }
}

/**
 * SIGSTOPs `pod` at a moment it holds no write transaction. SQLite has one writer per file: a pod
 * frozen inside a write transaction holds the file's write lock, and every other pod waits for it
 * (their writes retry as transient faults) until it is resumed; that case is not what the test is
 * about. On PostgreSQL a frozen pod's open transaction only holds its own rows: stop it anywhere.
 */
export const freeze = async (store: Store, pod: ChildPod.ChildPod<unknown>) => {
  for (let attempt = 0; attempt < 100; attempt++) {
    pod.kill("SIGSTOP")
    await sleep(30)
    if (store.kind === "pg" || (await writeLockFree(store.location))) return
    pod.kill("SIGCONT")
    await sleep(10 + attempt * 3)
  }
  throw new Error("the pod held the SQLite write lock every time it was frozen")
}

/** Whether the process `pid` is stopped (state `T` in `/proc/<pid>/stat`). */
export const isStopped = (pid: number) => {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
  return stat.slice(stat.lastIndexOf(")") + 2).startsWith("T")
}

/** Whether a pod's log shows it stopping the runs of shards it lost (lease ran out, or removed). */
export const lostShards = (message: PodMessage) =>
  message.level === "WARN" && /stopping the runs of its/.test(JSON.stringify(message.message ?? ""))
