/**
 * Failover (`npm run bench -- --only failover`): three pods as child processes on one store
 * (`test/cluster/pod.ts`: an `Order` workflow of two activities of `ACTIVITY_MILLIS` each), one of
 * them submitting `RATE` executions a second spread over every shard. Once the shards are evenly
 * spread, an execution is chosen among the next ones to be submitted whose shard another pod owns;
 * when its first activity has started, that owner is SIGKILLed (or SIGSTOPped). Measured from the
 * signal: when the manager assigned the victim's shards to the others (the shards' `updated_at`),
 * the first completion of an execution of one of those shards (its row's `updated_at`, written by
 * the pod that completed it), and the completion of the chosen execution. Every resumed execution
 * runs its interrupted activity again, and a new one runs both, so a completion comes at least
 * `ACTIVITY_MILLIS` after the shard was taken. A fresh store per run; `runs` runs per case, medians.
 *
 * A third case on PostgreSQL, `SIGSTOP in lock`: the victim is the shard manager, frozen exactly
 * while it holds the ownership lock (inside `acquireManager`, through `pod.ts`'s
 * `freezeInOwnershipLock` command), the chosen execution on one of its shards. On SQLite that
 * case is no failover (a frozen writer holds the file: README, "Several processes").
 *
 * `versions`: the pods of a run are started from each of these source trees in turn (this one, and
 * e.g. an export of an earlier commit, `--baseline label=DIR,...`), run by run, so that versions
 * are compared in one invocation on the same machine load.
 */
import { randomUUID } from "node:crypto"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { DatabaseSync } from "node:sqlite"
import { Context, Effect, Layer, Option } from "effect"
import { DurableExecutionJournal, ShardId, ShardStore, SqliteJournal } from "effect-cluster"
import { PostgresJournal } from "effect-cluster/postgres"
import * as ChildPod from "../test/support/ChildPod.ts"
import { client, dropDatabase, freshDatabase, serverUrl } from "./postgres.ts"
import { median } from "./workload.ts"

const TTL_MILLIS = 5_000
const ACTIVITY_MILLIS = 50
const RATE = 100

interface PodMessage {
  readonly ready?: string
  readonly submitted?: number
  readonly freezing?: string
}

/** How the victim is stopped. */
type Signal = "SIGKILL" | "SIGSTOP" | "SIGSTOP in lock"

/** The journal and shard store of `location` (a file or a URL), without being a pod. */
const readerOf = (location: string) =>
  Layer.build(
    location.startsWith("postgres")
      ? PostgresJournal.layer({ url: location, maxConnections: 2 })
      : SqliteJournal.layer({ filename: location })
  )

const sleep = (millis: number) => Effect.promise(() => new Promise((resolve) => setTimeout(resolve, millis)))

/** Polls `check` every `every` ms until it returns a value; fails after `timeoutMillis`. */
const until = <A>(
  what: string,
  check: Effect.Effect<A | undefined, unknown>,
  timeoutMillis: number,
  every = 20
) =>
  Effect.gen(function* () {
    const started = Date.now()
    while (true) {
      const value = yield* check
      if (value !== undefined) return value
      if (Date.now() - started > timeoutMillis)
        return yield* Effect.fail(new Error(`${what}: not after ${timeoutMillis} ms`))
      yield* sleep(every)
    }
  })

/** Whether nobody holds the SQLite file's write lock now (a busy lock fails at once). */
const writeLockFree = (file: string): boolean => {
  const db = new DatabaseSync(file, { timeout: 0 })
  try {
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
 * SIGSTOPs `pod`, at a moment it holds no write transaction on SQLite: there a pod frozen inside
 * one holds the file's write lock and every other pod waits until it resumes (README: "Several
 * processes"), which is not failover. Returns when the (last) signal was sent.
 */
const freeze = (pod: ChildPod.ChildPod<PodMessage>, sqliteFile: string | undefined) =>
  Effect.gen(function* () {
    for (let attempt = 0; attempt < 100; attempt++) {
      const at = Date.now()
      pod.kill("SIGSTOP")
      if (sqliteFile === undefined) return at
      yield* sleep(30)
      if (writeLockFree(sqliteFile)) return at
      pod.kill("SIGCONT")
      yield* sleep(10 + attempt * 3)
    }
    return yield* Effect.fail(new Error("the pod held the SQLite write lock every time it was frozen"))
  })

/** Freezes `pod` inside its next `acquireManager` transaction; returns when it said so. */
const freezeInLock = (pod: ChildPod.ChildPod<PodMessage>) =>
  Effect.promise(async () => {
    pod.send({ freezeInOwnershipLock: "acquireManager" })
    await pod.waitFor((message) => message.freezing !== undefined, 10_000)
    return Date.now()
  })

/** A run in which nothing moved in time (or that could not be made). */
interface Stalled {
  readonly stalled: string
}

interface Run {
  readonly stalled?: undefined
  readonly victimWasManager: boolean
  /** From the signal, ms. */
  readonly reassigned: number
  readonly firstCompletion: number
  readonly chosenCompletion: number
}

/** A source tree the pods are started from: `test/cluster/pod.ts` under `dir`. */
export interface Version {
  readonly label: string
  readonly dir: string
}

/** One run on a fresh store at `location`; the pods are killed at the end. */
const failoverRun = (location: string, dir: string, signal: Signal, version: Version) =>
  Effect.gen(function* () {
    const ledger = join(dir, `ledger-${randomUUID()}.jsonl`)
    writeFileSync(ledger, "")
    const prefix = `fo${randomUUID().slice(0, 6)}`
    const spawn = (podId: string, submit: boolean) =>
      ChildPod.scoped<PodMessage>(join(version.dir, "test/cluster/pod.ts"), {
        args: [
          JSON.stringify({
            store: location,
            ledger,
            podId,
            leaseTtlMillis: TTL_MILLIS,
            activityMillis: ACTIVITY_MILLIS,
            ...(submit ? { submit: { prefix, from: 0, count: 1_000_000, perSecond: RATE } } : {})
          })
        ]
      })
    const pods = { b: yield* spawn("b", false), c: yield* spawn("c", false) }
    for (const pod of Object.values(pods))
      yield* Effect.promise(() => pod.waitFor((m) => m.ready !== undefined, 30_000))
    const submitter = yield* spawn("a", true)
    yield* Effect.promise(() => submitter.waitFor((m) => m.ready !== undefined, 30_000))
    const context = yield* readerOf(location)
    const journal = Context.get(context, DurableExecutionJournal.DurableExecutionJournal)
    const store = Context.get(context, ShardStore.ShardStore)
    // Evenly spread, no handover pending.
    const owners = yield* until(
      "shards spread over the three pods",
      Effect.map(store.shards, (shards) => {
        const count = (pod: string) => shards.filter((shard) => shard.owner === pod).length
        return shards.every((shard) => shard.nextOwner === null) &&
          ["a", "b", "c"].every((pod) => count(pod) >= 95)
          ? new Map(shards.map((shard) => [shard.shard, shard.owner]))
          : undefined
      }),
      60_000,
      200
    )
    // The chosen execution: about a second ahead of the submitter, on a shard of b or c (of the
    // manager, b or c, when it is to be frozen holding the ownership lock).
    const manager = yield* store.manager
    const wanted = signal === "SIGSTOP in lock" ? manager?.podId : undefined
    if (signal === "SIGSTOP in lock" && wanted !== "b" && wanted !== "c") {
      return { stalled: `the manager is ${wanted ?? "nobody"}, not b or c: no run` } satisfies Stalled
    }
    const latest = submitter.messages.findLast((message) => message.submitted !== undefined)
    let index = (latest?.submitted ?? 0) + RATE
    const ownerOf = (i: number) => owners.get(ShardId.shardOf(`${prefix}-${i}`, ShardId.DEFAULT_SHARD_COUNT))
    while (wanted === undefined ? ownerOf(index) === "a" : ownerOf(index) !== wanted) index++
    const chosen = `${prefix}-${index}`
    const victimId = owners.get(ShardId.shardOf(chosen, ShardId.DEFAULT_SHARD_COUNT)) as "b" | "c"
    const victimShards = new Set([...owners].flatMap(([shard, owner]) => (owner === victimId ? [shard] : [])))
    yield* until(
      `the first activity of ${chosen} started`,
      Effect.sync(() =>
        readFileSync(ledger, "utf8").includes(`"k":"start","e":"${chosen}"`) ? true : undefined
      ),
      30_000,
      5
    )
    const victim = pods[victimId]
    const signalledAt =
      signal === "SIGKILL"
        ? Date.now()
        : signal === "SIGSTOP in lock"
          ? yield* freezeInLock(victim)
          : yield* freeze(victim, location.startsWith("postgres") ? undefined : location)
    if (signal === "SIGKILL") victim.kill("SIGKILL")
    const completed = Effect.map(journal.get(chosen), (row) =>
      Option.isSome(row) && row.value.status === "succeeded" ? row.value : undefined
    )
    /** When the first of the victim's shards went to another pod, once one has. */
    const reassignedAt = Effect.map(store.shards, (shards) => {
      const moved = shards.filter(
        (shard) => victimShards.has(shard.shard) && shard.owner !== null && shard.owner !== victimId
      )
      return moved.length === 0 ? undefined : Math.min(...moved.map((shard) => shard.updatedAt))
    })
    const inTime = yield* Effect.option(
      until(`${victimId}'s shards moved after the ${signal}`, reassignedAt, TTL_MILLIS * 6, 10)
    )
    if (Option.isNone(inTime)) {
      // Stalled: say what the database is waiting for, then let the frozen pod go on.
      const stall = location.startsWith("postgres") ? yield* waits(location) : "(SQLite)"
      victim.kill("SIGCONT")
      const resumedAt = Date.now()
      const row = yield* until(`${chosen} completed after SIGCONT`, completed, 60_000, 10)
      return {
        stalled: `nothing moved in ${TTL_MILLIS * 6} ms; ${row.executionId} completed ${row.updatedAt - resumedAt} ms after SIGCONT; ${stall}`
      }
    }
    const reassigned = inTime.value
    // The chosen execution may have completed before a frozen pod was caught outside a write.
    const chosenRow = yield* until(`${chosen} completed`, completed, 30_000, 10)
    yield* sleep(1_000)
    const completions: Array<number> = []
    let after: string | undefined
    while (true) {
      const page = yield* journal.list({ after, limit: 1_000 })
      for (const row of page) {
        if (
          row.status === "succeeded" &&
          row.updatedAt > signalledAt &&
          victimShards.has(ShardId.shardOf(row.executionId, ShardId.DEFAULT_SHARD_COUNT))
        ) {
          completions.push(row.updatedAt)
        }
      }
      if (page.length < 1_000) break
      after = page[page.length - 1]!.executionId
    }
    return {
      victimWasManager: manager?.podId === victimId,
      reassigned: reassigned - signalledAt,
      firstCompletion: Math.min(...completions) - signalledAt,
      // Frozen in lock, the pod stops at its next manager round (≤ 500 ms): the chosen execution
      // (100 ms of activities) has usually completed by then, and is not counted.
      chosenCompletion: chosenRow.updatedAt > signalledAt ? chosenRow.updatedAt - signalledAt : Number.NaN
    } satisfies Run
  }).pipe(Effect.scoped)

/** What the sessions of the database at `url` wait for and hold (`pg_stat_activity`). */
const waits = (url: string) =>
  Effect.gen(function* () {
    const sql = yield* client(url, 1)
    const rows = yield* sql<Record<string, unknown>>`SELECT pid, state, wait_event_type AS wait_type,
      wait_event AS wait, (now() - xact_start)::text AS in_transaction, left(query, 160) AS query
      FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()
      AND (state <> 'idle' OR wait_event_type = 'Lock')`
    return JSON.stringify(rows)
  }).pipe(
    Effect.scoped,
    Effect.orElseSucceed(() => "(pg_stat_activity not read)")
  )

/** `runs` runs of each case (SQLite and PostgreSQL, SIGKILL and SIGSTOP); prints the table. */
export const failoverBench = (
  runs: number,
  givenUrl: string | undefined,
  backends: ReadonlyArray<"sqlite" | "postgres"> = ["sqlite", "postgres"],
  signals: ReadonlyArray<Signal> = ["SIGKILL", "SIGSTOP", "SIGSTOP in lock"],
  versions: ReadonlyArray<Version> = [{ label: "this", dir: ChildPod.repoRoot }]
) =>
  Effect.gen(function* () {
    const dir = mkdtempSync(join(tmpdir(), "effect-cluster-failover-"))
    yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
    const url = yield* serverUrl(givenUrl)
    const rows: Array<{
      backend: string
      signal: string
      version: string
      runs: Array<Run>
      stalls: Array<string>
    }> = []
    for (const backend of backends) {
      for (const signal of signals) {
        if (backend === "sqlite" && signal === "SIGSTOP in lock") continue
        const cases = versions.map((version) => {
          const row = {
            backend,
            signal,
            version: version.label,
            runs: [] as Array<Run>,
            stalls: [] as Array<string>
          }
          rows.push(row)
          return { version, row }
        })
        for (let i = 0; i < runs; i++) {
          // Versions alternate run by run (ABAB…), so that a change of the machine's load shows in each.
          for (const { version, row } of cases) {
            const location =
              backend === "sqlite" ? join(dir, `${randomUUID()}.db`) : yield* freshDatabase(url, "failover")
            const run = yield* failoverRun(location, dir, signal, version)
            if (backend === "postgres") yield* dropDatabase(url, location)
            console.log(`${backend} ${signal} ${version.label} run ${i + 1}: ${JSON.stringify(run)}`)
            if (run.stalled === undefined) row.runs.push(run)
            else row.stalls.push(run.stalled)
          }
        }
      }
    }
    console.log(
      `\nLease TTL ${TTL_MILLIS} ms (renewed every ${Math.min(1_000, TTL_MILLIS / 10)} ms), activities of ${ACTIVITY_MILLIS} ms, ${RATE} executions/s submitted by a third pod; ms from the signal, median of ${runs} (range)\n`
    )
    console.log(
      "| backend | signal | version | shards reassigned | first completion of a moved shard | the chosen execution completed | victim was the manager | stalled runs |"
    )
    console.log("|---|---|---|---|---|---|---|---|")
    const cell = (all: ReadonlyArray<number>) => {
      const values = all.filter(Number.isFinite)
      return values.length === 0
        ? "–"
        : `${median(values).toFixed(0)} (${Math.min(...values).toFixed(0)}–${Math.max(...values).toFixed(0)})${values.length < all.length ? ` (${values.length} of ${all.length})` : ""}`
    }
    for (const row of rows) {
      console.log(
        `| ${row.backend} | ${row.signal} | ${row.version} | ${cell(row.runs.map((run) => run.reassigned))} | ${cell(row.runs.map((run) => run.firstCompletion))} | ${cell(row.runs.map((run) => run.chosenCompletion))} | ${row.runs.filter((run) => run.victimWasManager).length} of ${row.runs.length} | ${row.stalls.length} |`
      )
    }
  }).pipe(Effect.scoped)
