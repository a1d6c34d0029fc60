/**
 * The cases of the `effect-cluster` command on one store (run by `Cli.sqlite.test.ts` and
 * `Cli.postgres.test.ts`, in parallel): the command, run as a child process against real stores — a SQLite file and a
 * PostgreSQL database — that a real engine filled with executions in every state (see
 * `fixture/pod.ts`), then crashed (SIGKILL) in the middle of an activity. The tests read them
 * (tables and `--json`), steer them without an engine and with an engine running in another
 * process, export a journal and replay it, look at pods, shards, entities and dead letters.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { JournalExport, WorkflowTest } from "../../src/index.ts"
import * as ChildPod from "../support/ChildPod.ts"
import { workflows } from "./fixture/workflows.ts"
import { cli, eventually, ok, okJson } from "./support.ts"

const POD = "test/cli/fixture/pod.ts"

/** Where each execution is once the populating pod has crashed. */
const populated = {
  "job-ok": "succeeded",
  "job-fail": "failed",
  "job-suspend-1": "suspended",
  "job-suspend-2": "suspended",
  "job-sleep-1": "sleeping",
  "job-sleep-2": "interrupted",
  "job-wait": "sleeping",
  "job-block": "running"
}

interface Execution {
  readonly executionId: string
  readonly status: string
  readonly createdAt: number
}

/** A store of one backend: where it is, and the flags that name it. */
export interface Backend {
  readonly name: string
  readonly make: (dir: string) => Promise<{ readonly store: string; readonly flags: Array<string> }>
}

/** Declares the CLI cases on `backend`. */
export const cliSuite = (backend: Backend) =>
  describe(`effect-cluster on a ${backend.name}`, () => {
    let dir: string
    let flags: Array<string>
    let store: string

    const statuses = async () => {
      const page = await okJson(["executions", "list", ...flags])
      return Object.fromEntries(page.executions.map((e: Execution) => [e.executionId, e.status]))
    }
    const statusOf = async (id: string) =>
      (await okJson(["executions", "show", id, ...flags])).execution.status

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), "effect-cluster-cli-"))
      ;({ store, flags } = await backend.make(dir))
      const pod = ChildPod.spawn<{ type: string }>(POD, {
        args: [JSON.stringify({ store, podId: "populate", mode: "populate" })]
      })
      try {
        await pod.waitFor((m) => m.type === "populated", 60_000)
      } finally {
        // A crash in the middle of job-block's attempt.
        pod.kill("SIGKILL")
        await pod.exited
      }
    }, 90_000)

    afterAll(async () => {
      rmSync(dir, { recursive: true, force: true })
    })

    it("lists executions in every state: a table, --json, filters, newest first, pages by cursor", async () => {
      const list = (...args: Array<string>) => okJson(["executions", "list", ...args, ...flags])
      const [now, table, suspended, nope, lastHour, future, past] = await Promise.all([
        statuses(),
        ok(["executions", "list", ...flags]),
        list("--status", "suspended"),
        ok(["executions", "list", "--workflow", "Nope", ...flags]),
        list("--since", "1h"),
        list("--since", "2099-01-01"),
        list("--until", "2000-01-01T00:00:00Z")
      ])
      expect(now).toEqual(populated)
      const lines = table.trimEnd().split("\n")
      expect(lines[0]).toMatch(/^ID\s+WORKFLOW\s+STATUS\s+CREATED\s+UPDATED\s+DETAIL$/)
      expect(lines).toHaveLength(9)
      const row = (id: string) => lines.find((line) => line.startsWith(`${id} `)) ?? ""
      expect(row("job-suspend-1")).toMatch(
        /suspended .*ExecutionYielded: yielded: needs an operator's review/
      )
      expect(row("job-fail")).toMatch(/failed .*JobFailed \{"reason":"card declined"\}/)
      expect(row("job-sleep-1")).toMatch(/sleeping .*wakes \d{4}-\d{2}-\d{2} /)
      expect(row("job-wait")).toContain("until a signal")
      expect(row("job-block")).toContain(" running ")
      expect(suspended.executions.map((e: Execution) => e.executionId).sort()).toEqual([
        "job-suspend-1",
        "job-suspend-2"
      ])
      expect(nope).toBe("no executions match\n")
      expect(lastHour.executions).toHaveLength(8)
      expect(future.executions).toEqual([])
      expect(past.executions).toEqual([])

      // Newest first by default; pages of 3 by cursor cover every execution once, in order.
      const all: Array<Execution> = (await okJson(["executions", "list", ...flags])).executions
      const newest = [...all].sort(
        (a, b) => b.createdAt - a.createdAt || (a.executionId < b.executionId ? 1 : -1)
      )
      expect(all.map((e) => e.executionId)).toEqual(newest.map((e) => e.executionId))
      const paged: Array<string> = []
      let cursor: string | null = null
      let pages = 0
      do {
        const page: { executions: Array<Execution>; next: string | null } = await okJson([
          "executions",
          "list",
          "--limit",
          "3",
          ...(cursor === null ? [] : ["--cursor", cursor]),
          ...flags
        ])
        paged.push(...page.executions.map((e) => e.executionId))
        cursor = page.next
        pages++
      } while (cursor !== null && pages < 10)
      expect(pages).toBe(3)
      expect(paged).toEqual(newest.map((e) => e.executionId))
      const oldest = await okJson(["executions", "list", "--oldest", ...flags])
      expect(oldest.executions.map((e: Execution) => e.executionId)).toEqual(
        [...newest].reverse().map((e) => e.executionId)
      )
      // The table prints the next page's cursor.
      expect(await ok(["executions", "list", "--limit", "7", ...flags])).toMatch(
        /\nmore: --cursor c1\.\S+\n$/
      )
    }, 60_000)

    it("shows an execution's timeline: retried, failed, suspended, sleeping, and an attempt cut short by the crash", async () => {
      const [okJob, failed, suspended, sleeping, blocked, blockedJson] = await Promise.all([
        ok(["executions", "show", "job-ok", ...flags]),
        ok(["executions", "show", "job-fail", ...flags]),
        ok(["executions", "show", "job-suspend-1", ...flags]),
        ok(["executions", "show", "job-sleep-1", ...flags]),
        ok(["executions", "show", "job-block", ...flags]),
        okJson(["executions", "show", "job-block", ...flags])
      ])
      expect(okJob).toMatch(/^status\s+succeeded$/m)
      expect(okJob).toMatch(/^result\s+done ok after 2 attempts$/m)
      expect(okJob).toMatch(/^#\s+STEP\s+ATTEMPT\s+STARTED\s+ENDED\s+DURATION\s+OUTCOME\s+VALUE \/ ERROR$/m)
      expect(okJob).toMatch(
        /^1\s+flaky\s+1\s+\d{4}-\S+ \S+\s+\d{4}-\S+ \S+\s+\d+ ms\s+failed, retried\s+Busy$/m
      )
      expect(okJob).toMatch(/^\s+2\s+\d{4}-\S+ \S+\s+\d{4}-\S+ \S+\s+\d+ ms\s+succeeded\s+2$/m)
      expect(failed).toMatch(/^error\s+JobFailed \{"reason":"card declined"\}$/m)
      expect(failed).toMatch(/^1\s+charge\s+1\s.*failed\s+JobFailed/m)
      expect(suspended).toMatch(/^suspended\s+ExecutionYielded: .*needs an operator's review/m)
      expect(suspended).toMatch(/^1\s+review\s+1\s.*suspended the execution/m)
      expect(sleeping).toMatch(/^wakes\s+\d{4}-\d{2}-\d{2} /m)
      expect(sleeping).toMatch(/effect-cluster\/sleep \(local\)/)
      expect(blocked).toMatch(/^1\s+block\s+1\s.*running\s+\[heartbeat \{"progress":40\}\]$/m)
      expect(blockedJson.steps).toEqual([
        {
          stepKey: "block",
          activityId: "block",
          seq: 1,
          kind: "activity",
          heartbeat: { progress: 40 },
          attempts: [
            {
              attempt: 1,
              startedAt: expect.any(Number),
              endedAt: null,
              durationMillis: null,
              outcome: "running",
              value: null,
              error: null
            }
          ]
        }
      ])
    }, 60_000)

    it("exports a journal that WorkflowTest.replay replays against the workflow's code", async () => {
      const exported = await cli(["executions", "export", "job-ok", ...flags])
      expect(exported).toMatchObject({ code: 0, stderr: "" })
      const file = join(dir, "job-ok.json")
      writeFileSync(file, exported.stdout)
      const journal = await Effect.runPromise(JournalExport.readFile(file))
      expect(journal.execution).toMatchObject({ executionId: "job-ok", status: "succeeded" })
      expect(journal.steps.map((step) => [step.stepKey, step.attempt])).toEqual([["flaky", 2]])
      const report = await Effect.runPromise(WorkflowTest.replay(workflows, file))
      expect(report).toMatchObject({ executionId: "job-ok" })
    }, 60_000)

    it("shows entities (state, pending messages) and lists and replays dead letters", async () => {
      const account = await okJson(["entities", "show", "Account", "acc-1", ...flags])
      expect(account).toEqual({ entityType: "Account", entityId: "acc-1", state: 10, pending: [] })
      const mailbox = await ok(["entities", "show", "Mailbox", "box-1", ...flags])
      expect(mailbox).toMatch(/^state\s+\(none stored\)$/m)
      expect(mailbox).toMatch(/^\d+\s+m-1\s.*\{"_tag":"Deposit","messageId":"m-1","amount":1\}$/m)
      expect(mailbox).toMatch(/^\d+\s+m-2\s/m)
      const dead = await okJson(["dead-letters", "list", ...flags])
      expect(dead.deadLetters).toHaveLength(1)
      expect(dead.deadLetters[0]).toMatchObject({
        key: "Account/acc-1/d-2",
        entityType: "Account",
        entityId: "acc-1",
        messageId: "d-2",
        payload: { _tag: "Deposit", messageId: "d-2", amount: -5 }
      })
      expect(dead.deadLetters[0].error).toContain("negative deposit -5")
      expect(await ok(["dead-letters", "list", ...flags])).toMatch(/^Account\/acc-1\/d-2\s/m)
      expect(await ok(["dead-letters", "replay", "Account/acc-1/d-2", ...flags])).toContain(
        "replayed Account/acc-1/d-2"
      )
      expect((await okJson(["dead-letters", "list", ...flags])).deadLetters).toEqual([])
      const replayed = await okJson(["entities", "show", "Account", "acc-1", ...flags])
      expect(replayed.pending.map((m: { messageId: string }) => m.messageId)).toEqual(["d-2"])
    }, 60_000)

    it("resumes a suspended execution with no engine running: the next engine to start runs it", async () => {
      expect(await ok(["executions", "resume", "job-suspend-2", ...flags])).toContain("resumed job-suspend-2")
      expect(await statusOf("job-suspend-2")).toBe("running")
      const result = await okJson(["executions", "resume", "job-ok", ...flags])
      expect(result).toEqual({
        executionId: "job-ok",
        result: "NotSuspended",
        _tag: "NotSuspended",
        status: "succeeded"
      })
    }, 60_000)

    it("shows the crashed pod and its shards", async () => {
      // On PostgreSQL a pod whose session ended may still be running (its path to the server may
      // hang): it shows as suspect until its lease (5 s) has passed, then as gone. On SQLite its
      // file lock went with the process: gone at once.
      const crashed = await eventually(async () => {
        const view = await okJson(["pods", ...flags])
        expect(view.pods).toEqual([
          expect.objectContaining({ podId: "populate", liveness: "gone", shardCount: 8, leaseExpired: true })
        ])
        return view
      })
      expect(crashed.clustered).toBe(true)
      const shards = await okJson(["shards", ...flags])
      expect(shards.shards.map((s: { owner: string }) => s.owner)).toEqual(Array(8).fill("populate"))
      expect(await ok(["pods", ...flags])).toMatch(/^populate\s+gone\s+8\s/m)
    }, 60_000)

    it("steers executions that an engine in another process runs: resume, interrupt, signal", async () => {
      // Killed when this test ends.
      const serve = ChildPod.spawn<{ type: string }>(POD, {
        args: [JSON.stringify({ store, podId: "serve", mode: "serve" })]
      })
      await serve.waitFor((m) => m.type === "ready", 60_000)
      await eventually(async () => {
        const pods = await okJson(["pods", ...flags])
        expect(pods.pods).toEqual([
          expect.objectContaining({
            podId: "serve",
            liveness: "live",
            manager: true,
            shardCount: 8,
            leaseExpired: false
          })
        ])
        const owners = (await okJson(["shards", ...flags])).shards.map(
          (s: { owner: string; epoch: number }) => s.owner
        )
        expect(owners).toEqual(Array(8).fill("serve"))
      })
      const table = await ok(["shards", ...flags])
      expect(table.split("\n")[0]).toMatch(/^SHARD\s+OWNER\s+EPOCH\s+HANDOVER TO\s+UPDATED$/)
      expect(table).toMatch(/^1\s+serve\s+\d+\s/m)
      // Resumed before the engine started: it ran it at start.
      await eventually(async () => expect(await statusOf("job-suspend-2")).toBe("succeeded"))
      expect(await ok(["executions", "resume", "job-suspend-1", ...flags])).toContain("resumed job-suspend-1")
      expect(await ok(["executions", "interrupt", "job-sleep-1", ...flags])).toContain(
        "interruption of job-sleep-1 requested"
      )
      expect(await ok(["signal", "job-wait", "approval", "--json", '"ops"', ...flags])).toMatch(
        /^completed signal "approval" of job-wait/
      )
      expect(await ok(["signal", "job-wait", "approval", "--json", '"someone else"', ...flags])).toMatch(
        /^already-completed: /
      )
      await eventually(async () => {
        const now = await statuses()
        expect(now).toMatchObject({
          "job-suspend-1": "succeeded",
          "job-sleep-1": "interrupted",
          "job-wait": "succeeded"
        })
      })
      expect((await okJson(["executions", "show", "job-wait", ...flags])).execution.result).toBe(
        "approved by ops"
      )
      const suspendedOne = await okJson(["executions", "show", "job-suspend-1", ...flags])
      expect(suspendedOne.steps[0].attempts.map((a: { outcome: string }) => a.outcome)).toEqual([
        "cut-short",
        "succeeded"
      ])
      expect(await ok(["executions", "interrupt", "job-ok", ...flags])).toContain(
        "job-ok is already succeeded"
      )
      // The attempt the crash cut short, and the one the new engine runs since.
      await eventually(async () => {
        const block = await okJson(["executions", "show", "job-block", ...flags])
        expect(
          block.steps[0].attempts.map((a: { outcome: string; startedAt: number | null }) => a.outcome)
        ).toEqual(["cut-short", "running"])
        expect(block.steps[0].attempts[1].startedAt).toBeGreaterThan(block.steps[0].attempts[0].startedAt)
      })
    }, 120_000)
  })
