/**
 * A full disk under the embedded store. SQLite refuses a write it has no room for with
 * `SQLITE_FULL` and rolls its transaction back whole: the stores report it as a transient
 * `JournalError` / `ShardStoreError` that says the disk is full, and the engine retries it.
 *
 * The scenario (`diskFull/scenario.ts`) runs pods as child processes on a SQLite file on a small
 * `tmpfs`, in a mount namespace of its own (`SmallDisk`; it needs root or user namespaces and fails
 * loudly without them), fills the disk while executions run, and frees it a few seconds after the
 * first write failed. Nothing acknowledged is lost, no attempt runs twice, the file stays sound,
 * the pods ride it out without crashing, and every execution completes. A pod started while the
 * disk is full waits for room (it cannot take its lock file nor register), then joins.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { SqlError, UnknownError } from "effect/sql/SqlError"
import { journalError, shardStoreError } from "../../../src/storage/sql/internal/errors.ts"
import * as SqliteClient from "../../../src/storage/sqlite/SqliteClient.ts"
import { checkLedger, type PodMessage, type Store } from "../../cluster/harness.ts"
import * as ChildPod from "../../support/ChildPod.ts"
import * as SmallDisk from "../../support/SmallDisk.ts"

const PODS = 2
const PER_POD = 150

/** What the scenario prints at the end. */
interface Report {
  readonly executions: ReadonlyArray<{ executionId: string; status: string; result: string | null }>
  readonly integrity: ReadonlyArray<{ integrity_check: string }>
  readonly pods: ReadonlyArray<{
    podId: string
    exit: ChildPod.Exit
    stopped: boolean
    warnings: ReadonlyArray<PodMessage>
    stderr: string
  }>
}

describe("a full disk under the embedded store", () => {
  it.effect("a write refused for lack of space is a transient error that says the disk is full", () =>
    Effect.gen(function* () {
      const dir = yield* Effect.acquireRelease(
        Effect.sync(() => mkdtempSync(join(tmpdir(), "disk-full-"))),
        (path) => Effect.sync(() => rmSync(path, { recursive: true, force: true }))
      )
      const sql = yield* SqliteClient.make({ filename: join(dir, "full.db") })
      yield* sql`CREATE TABLE t (v TEXT NOT NULL)`
      // A database that may not grow: SQLite answers SQLITE_FULL, as on a full disk.
      yield* sql.unsafe("PRAGMA max_page_count = 3")
      const error = yield* Effect.flip(
        sql.withTransaction(
          Effect.forEach(
            Array.from({ length: 50 }, (_, i) => i),
            () => sql`INSERT INTO t (v) VALUES (${"x".repeat(1000)})`
          )
        )
      )
      const journal = journalError("write")(error)
      expect(journal.transient).toBe(true)
      expect(journal.message).toContain("the disk holding the database is full")
      const ownership = shardStoreError("renew")(error)
      expect(ownership.transient).toBe(true)
      expect(ownership.message).toContain("the disk holding the database is full")
      // The transaction was rolled back whole; the client is usable again.
      expect(yield* sql<{ n: number }>`SELECT count(*) AS n FROM t`).toEqual([{ n: 0 }])
      yield* sql.unsafe("PRAGMA max_page_count = 1000")
      yield* sql`INSERT INTO t (v) VALUES ('after')`
      expect(yield* sql<{ n: number }>`SELECT count(*) AS n FROM t`).toEqual([{ n: 1 }])
    })
  )

  it("a connection that cannot size its shared-memory file (no space for it) counts as a full disk too", () => {
    // What node:sqlite throws when the -shm file cannot be enlarged: SQLITE_IOERR_SHMSIZE.
    const cause = Object.assign(new Error("disk I/O error"), { errcode: 4874, errstr: "disk I/O error" })
    const error = new SqlError({
      reason: new UnknownError({ cause, message: "disk I/O error", operation: "execute" })
    })
    const journal = journalError("write")(error)
    expect(journal.transient).toBe(true)
    expect(journal.message).toContain("the disk holding the database is full")
    // Another I/O error is not a full disk, and not retried.
    const other = new SqlError({
      reason: new UnknownError({
        cause: Object.assign(new Error("disk I/O error"), { errcode: 778 }),
        message: "disk I/O error",
        operation: "execute"
      })
    })
    expect(journalError("write")(other).transient).toBe(false)
  })

  it("pods on a disk that fills up ride it out: nothing lost, no attempt twice, the file sound, every execution done", async () => {
    const dir = mkdtempSync(join(tmpdir(), "disk-full-"))
    const ledger = join(dir, "ledger.jsonl")
    writeFileSync(ledger, "")
    let scenario: ChildPod.ChildPod<{ step?: string; path?: string; report?: Report }> | undefined
    try {
      const { command, env } = SmallDisk.unshare()
      scenario = ChildPod.spawn<{ step?: string; path?: string; report?: Report }>(
        "test/storage/sqlite/diskFull/scenario.ts",
        {
          command,
          env,
          args: [
            JSON.stringify({
              ledger,
              sizeBytes: 8 * 1024 * 1024,
              pods: PODS,
              perPod: PER_POD,
              leaseTtlMillis: 3_000,
              fullMillis: 4_000
            })
          ]
        }
      )
      const { report } = await scenario.waitFor((m) => m.report !== undefined, 240_000)
      expect((await scenario.exited).code).toBe(0)
      const steps = scenario.messages.flatMap((m) => (m.step === undefined ? [] : [m.step]))
      expect(steps).toEqual([
        "mounted",
        "ready",
        "filled",
        "a write failed",
        "a pod started on the full disk waits",
        "freed",
        "the late pod joined",
        "every start acknowledged"
      ])

      // Every acknowledged start completed, with its result.
      expect(report!.executions.length).toBe(PODS * PER_POD)
      for (const row of report!.executions) {
        expect(row.status).toBe("succeeded")
        expect(row.result).toBe(
          JSON.stringify({ _tag: "Success", value: `${row.executionId}:reserve+charge` })
        )
      }
      expect(report!.integrity).toEqual([{ integrity_check: "ok" }])
      const store: Store = { kind: "sqlite", location: "", ledger, dir }
      checkLedger(store)
      const warnings = report!.pods.flatMap((pod) => pod.warnings.map((m) => JSON.stringify(m.message)))
      // The pods were told, with a transient error that says the disk is full.
      expect(
        warnings.some((w) => w.includes("the disk holding the database is full") && w.includes("transient"))
      ).toBe(true)
      // They rode it out: running until the end, then stopped gracefully (SIGTERM).
      for (const pod of report!.pods) {
        expect(pod.exit, `${pod.podId} stderr: ${pod.stderr}`).toEqual({ code: 0, signal: null })
        expect(pod.stopped).toBe(true)
      }
    } finally {
      rmSync(dir, { recursive: true, force: true })
      // The scenario unmounts and removes its mount point; if it failed first, the empty mount
      // point is left on the real disk (the tmpfs itself went with the namespace).
      const mounted = scenario?.messages.find((m) => m.path !== undefined)?.path
      if (mounted !== undefined) rmSync(mounted, { recursive: true, force: true, maxRetries: 3 })
    }
  }, 300_000)
})
