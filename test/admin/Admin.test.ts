/**
 * The operator API on the memory store (the CLI tests run it on SQLite and PostgreSQL through the
 * real binary): pages and cursors, counts, timelines, export, steering an execution that an engine
 * of the same store runs (through the owner's inbox, as from another pod), pods and shards,
 * entities and dead letters, and the errors of bad input and missing stores.
 */
import { existsSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Option, Schedule, Schema } from "effect"
import {
  Activity,
  Admin,
  AdminErrors,
  DurableExecutionJournal,
  EntityStore,
  MemoryJournal,
  Signal,
  Workflow,
  WorkflowEngine
} from "../../src/index.ts"
import { AdminPostgres } from "../../src/postgres.ts"
import { shardOf } from "../../src/sharding/ShardId.ts"
import { scopedTempDir } from "../support/tempDir.ts"

class Task extends Workflow.TaggedRequest<Task>()("Task", {
  payload: { id: Schema.String, kind: Schema.Literals(["ok", "suspend", "wait"]) },
  success: Schema.String,
  failure: Schema.Never
}) {}

const approval = Signal.make("approval", Schema.String)

const review = Activity.attempt.pipe(
  Effect.flatMap((attempt) =>
    attempt < 2 ? Workflow.yieldExecutionWith("review me") : Effect.succeed("ok")
  ),
  Activity.make("review", Schema.String, Schema.Never)
)

const task = Workflow.make(
  Task,
  (request) => `task-${request.id}`,
  ({ kind }) =>
    kind === "ok"
      ? Effect.succeed("done")
      : kind === "suspend"
        ? review
        : Effect.map(Signal.receive(approval), (by) => `approved by ${by}`)
)

/** Retries until `check` holds (every 10 ms, at most 10 s of real time). */
const until = <E, R>(check: Effect.Effect<boolean, E, R>) =>
  check.pipe(
    Effect.flatMap((ok) => (ok ? Effect.void : Effect.fail("not yet" as const))),
    Effect.retry({ schedule: Schedule.spaced("10 millis"), times: 1_000 })
  )

const start = (
  journal: DurableExecutionJournal.DurableExecutionJournal["Service"],
  id: string,
  now: number
) => journal.start({ executionId: id, workflow: "Task", request: "{}", shard: shardOf(id, 300), now })

describe("Admin", () => {
  it.effect("executions: newest first, filters, pages by an opaque cursor; counts by status", () =>
    Effect.gen(function* () {
      const journal = yield* DurableExecutionJournal.DurableExecutionJournal
      for (let i = 0; i < 7; i++) yield* start(journal, `e-${i}`, 1_000 + Math.floor(i / 2))
      yield* journal.write({
        executionId: "e-3",
        outcomes: [],
        status: { _tag: "Suspend", reason: "{}" },
        now: 5
      })
      const admin = yield* Admin.Admin
      const ids = (page: Admin.ExecutionsPage) => page.executions.map((e) => e.executionId)
      const first = yield* admin.executions({ limit: 3 })
      expect(ids(first)).toEqual(["e-6", "e-5", "e-4"])
      const second = yield* admin.executions({ limit: 3, cursor: Option.getOrThrow(first.next) })
      expect(ids(second)).toEqual(["e-3", "e-2", "e-1"])
      const third = yield* admin.executions({ limit: 3, cursor: Option.getOrThrow(second.next) })
      expect(ids(third)).toEqual(["e-0"])
      expect(third.next).toEqual(Option.none())
      // Exactly a page left: no cursor to an empty page.
      expect((yield* admin.executions({ limit: 7 })).next).toEqual(Option.none())
      expect(ids(yield* admin.executions({ order: "oldest", since: 1_001, until: 1_003 }))).toEqual([
        "e-2",
        "e-3",
        "e-4",
        "e-5"
      ])
      expect(ids(yield* admin.executions({ status: "suspended" }))).toEqual(["e-3"])
      expect(yield* admin.counts()).toEqual({
        byStatus: { running: 6, suspended: 1, sleeping: 0, succeeded: 0, failed: 0, interrupted: 0 },
        total: 7
      })
      expect((yield* admin.counts({ since: 1_003 })).total).toBe(1)
      // Bad input: typed errors that say what was wrong.
      const cursorError = yield* Effect.flip(admin.executions({ cursor: "c1.nonsense" }))
      expect(cursorError).toBeInstanceOf(AdminErrors.InvalidCursorError)
      const otherOrder = yield* Effect.flip(
        admin.executions({ order: "oldest", cursor: Option.getOrThrow(first.next) })
      )
      expect(otherOrder.message).toContain('made for order "newest"')
      const limit = yield* Effect.flip(admin.executions({ limit: 1_001 }))
      expect(limit).toBeInstanceOf(AdminErrors.InvalidArgumentError)
      expect(limit.message).toBe('invalid limit "1001": expected an integer from 1 to 1000')
    }).pipe(Effect.provide(Admin.layer.pipe(Layer.provideMerge(MemoryJournal.layer))))
  )

  it.live(
    "steers executions an engine of the store runs: resume, signal, interrupt; timeline and export",
    () =>
      Effect.gen(function* () {
        const engine = yield* WorkflowEngine.makeScoped(task, { timerPollInterval: "10 millis" })
        const admin = yield* Admin.Admin
        const status = (id: string) => Effect.map(admin.timeline(id), (t) => t.execution.status)
        yield* engine.sendDiscard(new Task({ id: "s", kind: "suspend" }))
        yield* engine.sendDiscard(new Task({ id: "w", kind: "wait" }))
        yield* engine.sendDiscard(new Task({ id: "i", kind: "wait" }))
        yield* until(Effect.map(status("task-s"), (s) => s === "suspended"))
        yield* until(Effect.map(status("task-w"), (s) => s === "sleeping"))
        yield* until(Effect.map(status("task-i"), (s) => s === "sleeping"))

        const suspended = yield* admin.timeline("task-s")
        expect(suspended.execution.suspension).toMatchObject({ tag: "ExecutionYielded" })
        expect(suspended.execution.suspension?.message).toContain("review me")
        expect(suspended.steps[0]?.attempts.map((a) => a.outcome)).toEqual(["suspended"])

        expect(yield* admin.resume("task-s")).toEqual({ _tag: "Resumed" })
        yield* until(Effect.map(status("task-s"), (s) => s === "succeeded"))
        const resumed = yield* admin.timeline("task-s")
        expect(resumed.execution.result).toBe("ok")
        expect(resumed.steps[0]?.attempts.map((a) => [a.attempt, a.outcome, a.value])).toEqual([
          [1, "cut-short", null],
          [2, "succeeded", "ok"]
        ])
        expect(resumed.steps[0]?.attempts[1]?.startedAt).toEqual(expect.any(Number))
        expect(yield* admin.resume("task-s")).toEqual({ _tag: "NotSuspended", status: "succeeded" })

        expect(yield* admin.signal("task-w", "approval", '"ops"')).toEqual({
          _tag: "Completed",
          status: "sleeping"
        })
        expect(yield* admin.signal("task-w", "approval", '"late"')).toMatchObject({
          _tag: "AlreadyCompleted"
        })
        yield* until(Effect.map(status("task-w"), (s) => s === "succeeded"))
        expect((yield* admin.timeline("task-w")).execution.result).toBe("approved by ops")

        expect(yield* admin.interrupt("task-i")).toMatchObject({ _tag: "InterruptRequested" })
        yield* until(Effect.map(status("task-i"), (s) => s === "interrupted"))
        expect(yield* admin.interrupt("task-i")).toEqual({ _tag: "AlreadyFinal", status: "interrupted" })

        expect(yield* admin.exportJournal("task-s")).toEqual(yield* engine.exportJournal("task-s"))

        const unknown = yield* Effect.flip(admin.timeline("nope"))
        expect(unknown._tag).toBe("ExecutionNotFoundError")
        const payload = yield* Effect.flip(admin.signal("task-w", "approval", "{nope"))
        expect(payload).toBeInstanceOf(AdminErrors.InvalidSignalPayloadError)

        const pods = yield* admin.pods()
        expect(pods.clustered).toBe(true)
        expect(pods.pods).toEqual([
          expect.objectContaining({ podId: engine.podId(), liveness: "live", manager: true, shardCount: 300 })
        ])
        const shards = yield* admin.shards()
        expect(shards.shards).toHaveLength(300)
        expect(new Set(shards.shards.map((s) => s.owner))).toEqual(new Set([engine.podId()]))
      }).pipe(Effect.scoped, Effect.provide(Admin.layer.pipe(Layer.provideMerge(MemoryJournal.layerCluster))))
  )

  it.effect("entities and dead letters; a store without ownership or entities says so", () =>
    Effect.gen(function* () {
      const entities = yield* EntityStore.EntityStore
      const message = (messageId: string, entityId = "acc-1") => ({
        entityType: "Account",
        entityId,
        messageId,
        shard: 1,
        payload: JSON.stringify({ amount: messageId.length }),
        now: 1_000
      })
      yield* entities.enqueue([message("a"), message("bb"), message("ccc", "acc-2"), message("dddd")])
      const fence = undefined
      yield* entities.complete([
        { ...message("a"), fence, reply: null, state: JSON.stringify({ balance: 1 }), now: 2_000 }
      ])
      yield* entities.deadLetter([{ ...message("bb"), fence, error: "boom", now: 3_000 }])
      yield* entities.deadLetter([{ ...message("ccc", "acc-2"), fence, error: "bang", now: 4_000 }])
      const admin = yield* Admin.Admin
      expect(yield* admin.entity("Account", "acc-1")).toEqual({
        entityType: "Account",
        entityId: "acc-1",
        state: { balance: 1 },
        pending: [{ messageId: "dddd", seq: expect.any(Number), payload: { amount: 4 }, createdAt: 1_000 }]
      })
      const first = yield* admin.deadLetters({ limit: 1 })
      expect(first.deadLetters.map((d) => [d.key, d.error])).toEqual([["Account/acc-1/bb", "boom"]])
      const second = yield* admin.deadLetters({ limit: 1, cursor: Option.getOrThrow(first.next) })
      expect(second.deadLetters.map((d) => d.key)).toEqual(["Account/acc-2/ccc"])
      expect(second.next).toEqual(Option.none())
      yield* admin.replayDeadLetter("Account/acc-1/bb")
      expect((yield* admin.entity("Account", "acc-1")).pending.map((m) => m.messageId)).toEqual([
        "dddd",
        "bb"
      ])
      const gone = yield* Effect.flip(admin.replayDeadLetter("Account/acc-1/bb"))
      expect(gone).toBeInstanceOf(AdminErrors.DeadLetterNotFoundError)
      const badKey = yield* Effect.flip(admin.replayDeadLetter("Account"))
      expect(badKey).toBeInstanceOf(AdminErrors.InvalidArgumentError)
      // Ids with slashes round-trip through the key.
      expect(Admin.deadLetterKey({ entityType: "A/B", entityId: "x y", messageId: "%" })).toBe(
        "A%2FB/x%20y/%25"
      )
      // No ShardStore: a single-process store.
      expect(yield* admin.pods()).toEqual({ clustered: false, pods: [] })
      expect(yield* admin.shards()).toEqual({ clustered: false, shards: [] })
    }).pipe(Effect.provide(Admin.layer.pipe(Layer.provideMerge(MemoryJournal.layer))))
  )

  it.effect("a journal without an entity store: entities are unsupported, with a typed error", () =>
    Effect.gen(function* () {
      const admin = yield* Admin.Admin
      const error = yield* Effect.flip(admin.entity("Account", "acc-1"))
      expect(error).toBeInstanceOf(AdminErrors.UnsupportedByStoreError)
    }).pipe(
      Effect.provide(
        Admin.layer.pipe(
          Layer.provide(Layer.effect(DurableExecutionJournal.DurableExecutionJournal, MemoryJournal.make))
        )
      )
    )
  )

  it.effect(
    "layerFile refuses a missing file (and creates nothing); AdminPostgres refuses a malformed URL",
    () =>
      Effect.gen(function* () {
        const dir = yield* scopedTempDir("effect-cluster-admin-")
        const path = join(dir, "missing.db")
        const missing = yield* Effect.flip(Effect.provide(Admin.Admin, Admin.layerFile(path)))
        expect(missing).toBeInstanceOf(AdminErrors.StoreNotFoundError)
        expect(missing.message).toContain(`no store at ${path}`)
        const again = yield* Effect.flip(Effect.provide(Admin.Admin, Admin.layerFile(path)))
        expect(again._tag).toBe("StoreNotFoundError")
        expect(existsSync(path)).toBe(false)
        const url = yield* Effect.flip(Effect.provide(Admin.Admin, AdminPostgres.layer("http://x/y")))
        expect(url).toBeInstanceOf(AdminErrors.InvalidStoreUrlError)
      }).pipe(Effect.scoped)
  )
})
