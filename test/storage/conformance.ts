/**
 * The journal contract, as cases that every backend must pass: each operation, I1 (an outcome is
 * recorded once and never replaced), I4 (starting an id twice is one execution), I6 (stored data
 * that no longer decodes suspends only its execution and is kept as is), ordering, large and
 * unicode payloads, racing writers, migrations, and the engine on top of the backend.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Option, Schema } from "effect"
import type { DurableExecutionJournal } from "../../src/index.ts"
import { Activity, Saga, Signal, Workflow } from "../../src/index.ts"
import { DEFAULT_SHARD_COUNT, shardOf } from "../../src/sharding/ShardId.ts"
import { migrations } from "../../src/storage/sql/Migrations.ts"
import {
  awaitParked,
  awaitStatus,
  Calls,
  OutOfStockError,
  ThreeSteps,
  threeSteps,
  withEngine
} from "../workflow/fixtures.ts"
import type { Backend, Journal } from "./backends.ts"

type AttemptStart = DurableExecutionJournal.AttemptStart

const allVersions = migrations.map((migration) => migration.version)

const newExecution = (executionId: string, now = 1_000, request = `{"id":"${executionId}"}`) => ({
  executionId,
  workflow: "Order",
  request,
  shard: shardOf(executionId, DEFAULT_SHARD_COUNT),
  now
})

const step = (
  executionId: string,
  stepKey: string,
  seq: number,
  attempt = 1,
  previous: string | null = null
) =>
  ({
    executionId,
    stepKey,
    activityId: stepKey.split("#")[0]!,
    seq,
    previous,
    attempt
  }) satisfies AttemptStart

const success = (value: unknown) => JSON.stringify({ _tag: "Success", value })

/** Writes an attempt marker. */
const markAttempt = (journal: Journal, attempt: AttemptStart, now = 2_000) =>
  journal.write({ executionId: attempt.executionId, outcomes: [], attempt, now })

/** Writes one outcome. */
const record = (journal: Journal, attempt: AttemptStart, outcome: string, now = 3_000) =>
  journal.write({ executionId: attempt.executionId, outcomes: [{ ...attempt, outcome }], now })

class Errand extends Workflow.TaggedRequest<Errand>()("Errand", {
  payload: { id: Schema.String },
  success: Schema.String,
  failure: Schema.String
}) {}

class Nap extends Workflow.TaggedRequest<Nap>()("Nap", {
  payload: { id: Schema.String },
  success: Schema.Struct({ before: Schema.Number, after: Schema.Number }),
  failure: Schema.Never
}) {}

/** Reads the time, sleeps `millis` durably, reads the time again. */
const napper = (millis: number) =>
  Workflow.make(
    Nap,
    (r) => `nap@${r.id}`,
    () =>
      Effect.gen(function* () {
        const before = yield* Workflow.now
        yield* Workflow.sleep(millis)
        return { before, after: yield* Workflow.now }
      })
  )

const approval = Signal.make("approval", Schema.Struct({ by: Schema.String }))

class Approve extends Workflow.TaggedRequest<Approve>()("Approve", {
  payload: { id: Schema.String, timeoutMillis: Schema.Number },
  success: Schema.String,
  failure: Schema.Never
}) {}

/** Waits for the approval signal, with a timeout when `timeoutMillis` > 0. */
const approvals = Workflow.make(
  Approve,
  (r) => `approve@${r.id}`,
  ({ timeoutMillis }) =>
    timeoutMillis > 0
      ? Effect.map(Signal.receive(approval, { timeout: timeoutMillis }), (value) =>
          Option.match(value, { onNone: () => "timed out", onSome: ({ by }) => `approved by ${by}` })
        )
      : Effect.map(Signal.receive(approval), ({ by }) => `approved by ${by}`)
)

/** Declares the conformance cases for `backend`. */
export const conformance = (backend: Backend) =>
  describe(`journal conformance: ${backend.name}`, () => {
    /** Runs `f` with fresh storage and a journal open on it. */
    const withJournal = <A, E>(f: (journal: Journal) => Effect.Effect<A, E>) =>
      Effect.scoped(
        Effect.gen(function* () {
          const storage = yield* backend.storage
          return yield* f(yield* storage.open)
        })
      )

    describe("operations", () => {
      it.live("start creates a running execution that get returns field by field", () =>
        withJournal((journal) =>
          Effect.gen(function* () {
            expect(Option.isNone(yield* journal.get("order@1"))).toBe(true)
            const started = yield* journal.start(newExecution("order@1", 1_234))
            const expected = {
              executionId: "order@1",
              workflow: "Order",
              request: '{"id":"order@1"}',
              status: "running",
              result: null,
              reason: null,
              interruptRequested: false,
              wakeAt: null,
              createdAt: 1_234,
              updatedAt: 1_234
            }
            expect(started).toEqual({ created: true, execution: expected })
            expect(yield* journal.get("order@1")).toEqual(Option.some(expected))
            expect(yield* journal.steps("order@1")).toEqual([])
          })
        )
      )

      it.live("I4: starting the same id again creates nothing and returns the first request", () =>
        withJournal((journal) =>
          Effect.gen(function* () {
            yield* journal.start(newExecution("order@1", 1_000, '{"first":true}'))
            const again = yield* journal.start(newExecution("order@1", 9_000, '{"second":true}'))
            expect(again.created).toBe(false)
            expect(again.execution.request).toBe('{"first":true}')
            expect(again.execution.createdAt).toBe(1_000)
            expect((yield* journal.listRunning).map((e) => e.executionId)).toEqual(["order@1"])
          })
        )
      )

      it.live("attempt markers raise the attempt; the outcome completes the step", () =>
        withJournal((journal) =>
          Effect.gen(function* () {
            yield* journal.start(newExecution("order@1"))
            yield* markAttempt(journal, step("order@1", "charge", 1), 2_000)
            expect(yield* journal.steps("order@1")).toEqual([
              {
                executionId: "order@1",
                stepKey: "charge",
                activityId: "charge",
                seq: 1,
                previous: null,
                attempt: 1,
                outcome: null,
                heartbeat: null,
                startedAt: 2_000,
                completedAt: null,
                attemptStartedAt: 2_000,
                completedAfter: null
              }
            ])
            yield* markAttempt(journal, step("order@1", "charge", 1, 2), 2_500)
            // The latest attempt's start moves; the step's first start stays.
            expect((yield* journal.steps("order@1"))[0]).toMatchObject({
              startedAt: 2_000,
              attemptStartedAt: 2_500
            })
            // Heartbeat details are kept across attempt markers, and frozen once the outcome is in.
            yield* journal.heartbeat({
              executionId: "order@1",
              stepKey: "charge",
              details: '{"done":40}',
              now: 2_600
            })
            yield* markAttempt(journal, step("order@1", "charge", 1, 3), 2_700)
            expect((yield* journal.steps("order@1"))[0]).toMatchObject({
              attempt: 3,
              heartbeat: '{"done":40}'
            })
            yield* journal.write({
              executionId: "order@1",
              outcomes: [{ ...step("order@1", "charge", 1, 3), outcome: success(42), completedAfter: 4 }],
              now: 3_000
            })
            yield* journal.heartbeat({
              executionId: "order@1",
              stepKey: "charge",
              details: '{"done":99}',
              now: 3_100
            })
            const [charge] = yield* journal.steps("order@1")
            expect(charge).toMatchObject({
              attempt: 3,
              outcome: success(42),
              startedAt: 2_000,
              completedAt: 3_000,
              // The outcome keeps the start of the attempt that produced it.
              attemptStartedAt: 2_700,
              heartbeat: '{"done":40}',
              // How far the execution had got when the outcome was recorded: replay's order.
              completedAfter: 4
            })
            // A step recorded without a marker (a local step) has no attempt start.
            yield* record(journal, step("order@1", "effect-cluster/now", 2), success(1), 3_200)
            expect((yield* journal.steps("order@1"))[1]).toMatchObject({
              startedAt: 3_200,
              attemptStartedAt: null,
              // Written by an older engine (no completion order): null, replayed at once.
              completedAfter: null
            })
          })
        )
      )

      it.live("one write stores outcomes, the next attempt and a status change together", () =>
        withJournal((journal) =>
          Effect.gen(function* () {
            yield* journal.start(newExecution("order@1"))
            yield* journal.write({
              executionId: "order@1",
              outcomes: [
                { ...step("order@1", "a", 1), outcome: success("A") },
                { ...step("order@1", "b", 2, 1, "a"), outcome: success("B") }
              ],
              attempt: step("order@1", "c", 3, 1, "b"),
              status: { _tag: "RequestInterrupt" },
              now: 5_000
            })
            const steps = yield* journal.steps("order@1")
            expect(steps.map((s) => [s.stepKey, s.previous, s.outcome])).toEqual([
              ["a", null, success("A")],
              ["b", "a", success("B")],
              ["c", "b", null]
            ])
            const row = yield* journal.get("order@1")
            expect(Option.getOrThrow(row)).toMatchObject({ interruptRequested: true, updatedAt: 5_000 })
          })
        )
      )

      it.live("status changes: suspend, resume, complete; a final execution never changes", () =>
        withJournal((journal) =>
          Effect.gen(function* () {
            yield* journal.start(newExecution("order@1"))
            const status = (change: DurableExecutionJournal.StatusChange, now: number) =>
              journal.write({ executionId: "order@1", outcomes: [], status: change, now })
            const row = () => Effect.map(journal.get("order@1"), Option.getOrThrow)
            yield* status({ _tag: "Suspend", reason: '{"why":"x"}' }, 2_000)
            expect(yield* row()).toMatchObject({
              status: "suspended",
              reason: '{"why":"x"}',
              updatedAt: 2_000
            })
            expect(yield* journal.listRunning).toEqual([])
            yield* status({ _tag: "Resume" }, 3_000)
            expect(yield* row()).toMatchObject({ status: "running", reason: null })
            yield* status({ _tag: "Complete", status: "succeeded", result: success("done") }, 4_000)
            const final = yield* row()
            expect(final).toMatchObject({ status: "succeeded", result: success("done"), updatedAt: 4_000 })
            yield* status({ _tag: "Complete", status: "failed", result: '"other"' }, 5_000)
            yield* status({ _tag: "Suspend", reason: "{}" }, 5_000)
            yield* status({ _tag: "Resume" }, 5_000)
            yield* status({ _tag: "RequestInterrupt" }, 5_000)
            expect(yield* row()).toEqual(final)
            expect(yield* journal.listRunning).toEqual([])
          })
        )
      )

      it.live("listRunning: only running executions, oldest first", () =>
        withJournal((journal) =>
          Effect.gen(function* () {
            yield* journal.start(newExecution("c", 3_000))
            yield* journal.start(newExecution("a", 1_000))
            yield* journal.start(newExecution("done", 500))
            yield* journal.start(newExecution("parked", 600))
            yield* journal.start(newExecution("b", 2_000))
            yield* journal.write({
              executionId: "done",
              outcomes: [],
              status: { _tag: "Complete", status: "succeeded", result: "{}" },
              now: 700
            })
            yield* journal.write({
              executionId: "parked",
              outcomes: [],
              status: { _tag: "Suspend", reason: "{}" },
              now: 700
            })
            expect((yield* journal.listRunning).map((e) => e.executionId)).toEqual(["a", "b", "c"])
          })
        )
      )

      it.live(
        "durable timers: Sleep parks, listDue finds due ones earliest first, Wake only wakes sleepers",
        () =>
          withJournal((journal) =>
            Effect.gen(function* () {
              const status = (id: string, change: DurableExecutionJournal.StatusChange, now = 2_000) =>
                journal.write({ executionId: id, outcomes: [], status: change, now })
              for (const id of ["late", "early", "middle", "awake", "parked"])
                yield* journal.start(newExecution(id))
              yield* status("late", { _tag: "Sleep", wakeAt: 9_000 })
              yield* status("early", { _tag: "Sleep", wakeAt: 3_000 })
              yield* status("middle", { _tag: "Sleep", wakeAt: 5_000 })
              yield* status("parked", { _tag: "Suspend", reason: "{}" })
              const row = Option.getOrThrow(yield* journal.get("early"))
              expect(row).toMatchObject({ status: "sleeping", wakeAt: 3_000, updatedAt: 2_000 })
              expect((yield* journal.listRunning).map((e) => e.executionId)).toEqual(["awake"])
              const before = yield* journal.listDue(2_999, 10)
              expect(before).toEqual({ due: [], nextWakeAt: 3_000 })
              const due = yield* journal.listDue(5_000, 10)
              expect(due.due.map((e) => e.executionId)).toEqual(["early", "middle"])
              expect(due.nextWakeAt).toBe(3_000)
              expect((yield* journal.listDue(10_000, 2)).due.map((e) => e.executionId)).toEqual([
                "early",
                "middle"
              ])
              // Wake: sleeping → running (wake_at cleared); it never resumes a suspension.
              yield* status("early", { _tag: "Wake" }, 3_001)
              yield* status("parked", { _tag: "Wake" }, 3_001)
              expect(Option.getOrThrow(yield* journal.get("early"))).toMatchObject({
                status: "running",
                wakeAt: null
              })
              expect(Option.getOrThrow(yield* journal.get("parked")).status).toBe("suspended")
              // Resume also wakes; a completed execution drops its timer and ignores later ones.
              yield* status("middle", { _tag: "Resume" })
              yield* status("late", { _tag: "Complete", status: "succeeded", result: "{}" })
              yield* status("late", { _tag: "Sleep", wakeAt: 1 })
              expect(Option.getOrThrow(yield* journal.get("middle"))).toMatchObject({
                status: "running",
                wakeAt: null
              })
              expect(Option.getOrThrow(yield* journal.get("late"))).toMatchObject({
                status: "succeeded",
                wakeAt: null
              })
              expect(yield* journal.listDue(99_999, 10)).toEqual({ due: [], nextWakeAt: null })
            })
          )
      )

      it.live("signals: stored once, first value wins, and a sleeping execution becomes due", () =>
        withJournal((journal) =>
          Effect.gen(function* () {
            const status = (id: string, change: DurableExecutionJournal.StatusChange, now = 2_000) =>
              journal.write({ executionId: id, outcomes: [], status: change, now })
            for (const id of ["waiting", "napping", "busy"]) yield* journal.start(newExecution(id))
            yield* status("waiting", { _tag: "Sleep", wakeAt: null })
            yield* status("napping", { _tag: "Sleep", wakeAt: 9_000 })
            expect(yield* journal.listDue(99_999, 10)).toEqual({
              due: [Option.getOrThrow(yield* journal.get("napping"))],
              nextWakeAt: 9_000
            })
            const signal = (executionId: string, payload: string, now: number) =>
              journal.signal({ executionId, name: "approval", payload, now })
            expect(yield* journal.getSignal("waiting", "approval")).toEqual(Option.none())
            expect(yield* signal("waiting", '{"by":"ada"}', 3_000)).toBe(true)
            expect(yield* signal("waiting", '{"by":"eve"}', 3_500)).toBe(false)
            expect(yield* journal.getSignal("waiting", "approval")).toEqual(Option.some('{"by":"ada"}'))
            expect(Option.getOrThrow(yield* journal.get("waiting"))).toMatchObject({
              status: "sleeping",
              wakeAt: 3_000
            })
            // A later deadline is brought forward; an earlier one is kept; a running row is untouched.
            yield* signal("napping", "1", 4_000)
            yield* signal("busy", "1", 4_000)
            expect(Option.getOrThrow(yield* journal.get("napping")).wakeAt).toBe(4_000)
            expect(Option.getOrThrow(yield* journal.get("busy"))).toMatchObject({
              status: "running",
              wakeAt: null
            })
            yield* status("napping", { _tag: "WakeBy", wakeAt: 5_000 })
            expect(Option.getOrThrow(yield* journal.get("napping")).wakeAt).toBe(4_000)
            yield* status("waiting", { _tag: "WakeBy", wakeAt: 2_500 })
            expect(Option.getOrThrow(yield* journal.get("waiting")).wakeAt).toBe(2_500)
            // Signals are per execution and per name.
            expect(yield* journal.getSignal("napping", "other")).toEqual(Option.none())
            expect(yield* journal.getSignal("busy", "approval")).toEqual(Option.some("1"))
          })
        )
      )

      it.live("list: by workflow and status, by execution id, in pages", () =>
        withJournal((journal) =>
          Effect.gen(function* () {
            const ids = Array.from({ length: 12 }, (_, i) => `pay-${String(i).padStart(2, "0")}`)
            for (const id of ids) yield* journal.start({ ...newExecution(id), workflow: "Pay" })
            yield* journal.start({ ...newExecution("ship-1"), workflow: "Ship" })
            for (const id of ["pay-03", "pay-07"]) {
              yield* journal.write({
                executionId: id,
                outcomes: [],
                status: { _tag: "Suspend", reason: "{}" },
                now: 2
              })
            }
            const page = (after?: string) => journal.list({ workflow: "Pay", after, limit: 5 })
            const first = yield* page()
            const second = yield* page(first[4]!.executionId)
            const third = yield* page(second[4]!.executionId)
            expect([...first, ...second, ...third].map((e) => e.executionId)).toEqual(ids)
            expect(third).toHaveLength(2)
            const suspended = yield* journal.list({ workflow: "Pay", status: "suspended", limit: 10 })
            expect(suspended.map((e) => e.executionId)).toEqual(["pay-03", "pay-07"])
            expect((yield* journal.list({ status: "running", limit: 100 })).length).toBe(11)
            expect((yield* journal.list({ limit: 100 })).length).toBe(13)
          })
        )
      )

      it.live("list: newest or oldest first by creation, time range, (created_at, id) keyset pages", () =>
        withJournal((journal) =>
          Effect.gen(function* () {
            // Creation times with ties (two executions per millisecond), ids out of creation order.
            const ids = Array.from({ length: 9 }, (_, i) => `run-${String((i * 7) % 9)}`)
            for (const [i, id] of ids.entries()) {
              yield* journal.start({ ...newExecution(id, 1_000 + Math.floor(i / 2)), workflow: "Pay" })
            }
            yield* journal.start({ ...newExecution("other", 1_002), workflow: "Ship" })
            yield* journal.write({
              executionId: "run-7",
              outcomes: [],
              status: { _tag: "Suspend", reason: "{}" },
              now: 5_000
            })
            const rows = (yield* journal.list({ workflow: "Pay", limit: 100 })).map((e) => ({
              id: e.executionId,
              at: e.createdAt
            }))
            const compare = (a: { id: string; at: number }, b: { id: string; at: number }) =>
              a.at - b.at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
            const oldest = [...rows].sort(compare).map((e) => e.id)
            const newest = [...oldest].reverse()
            for (const [order, expected] of [
              ["oldest", oldest],
              ["newest", newest]
            ] as const) {
              const seen: Array<string> = []
              let position: DurableExecutionJournal.ListPosition | undefined
              for (let page = 0; page < 5; page++) {
                const rows = yield* journal.list({ workflow: "Pay", order, position, limit: 2 })
                seen.push(...rows.map((e) => e.executionId))
                const last = rows[rows.length - 1]
                if (last === undefined) break
                position = { createdAt: last.createdAt, executionId: last.executionId }
              }
              expect(seen).toEqual(expected)
            }
            // Time range: created_at in [1_001, 1_003).
            const range = yield* journal.list({
              order: "oldest",
              createdSince: 1_001,
              createdUntil: 1_003,
              limit: 100
            })
            expect(range.map((e) => e.createdAt)).toEqual([1_001, 1_001, 1_002, 1_002, 1_002])
            expect(range.map((e) => e.executionId)).toContain("other")
            const suspended = yield* journal.list({ order: "newest", status: "suspended", limit: 10 })
            expect(suspended.map((e) => e.executionId)).toEqual(["run-7"])
            // Counts per status, with the same filters.
            const sorted = (counts: ReadonlyArray<DurableExecutionJournal.StatusCount>) =>
              [...counts].sort((a, b) => (a.status < b.status ? -1 : 1))
            expect(sorted(yield* journal.count({}))).toEqual([
              { status: "running", count: 9 },
              { status: "suspended", count: 1 }
            ])
            expect(sorted(yield* journal.count({ workflow: "Ship" }))).toEqual([
              { status: "running", count: 1 }
            ])
            expect(sorted(yield* journal.count({ workflow: "Pay", createdSince: 1_004 }))).toEqual([
              { status: "running", count: 1 }
            ])
            expect(yield* journal.count({ createdUntil: 999 })).toEqual([])
          })
        )
      )

      it.live("steps come back ordered by seq, whatever the order they were written in", () =>
        withJournal((journal) =>
          Effect.gen(function* () {
            yield* journal.start(newExecution("order@1"))
            // Concurrent branches: markers and outcomes arrive out of order, some in one write.
            yield* markAttempt(journal, step("order@1", "c", 3))
            yield* record(journal, step("order@1", "a", 1), success(1))
            yield* journal.write({
              executionId: "order@1",
              outcomes: [{ ...step("order@1", "d", 4), outcome: success(4) }],
              attempt: step("order@1", "b", 2),
              now: 4_000
            })
            for (let seq = 5; seq <= 12; seq++) yield* markAttempt(journal, step("order@1", `a#${seq}`, seq))
            const keys = (yield* journal.steps("order@1")).map((s) => [s.seq, s.stepKey])
            expect(keys).toEqual(
              Array.from({ length: 12 }, (_, i) => [i + 1, ["a", "b", "c", "d"][i] ?? `a#${i + 1}`])
            )
          })
        )
      )

      it.live("steps of other executions are not mixed in", () =>
        withJournal((journal) =>
          Effect.gen(function* () {
            yield* journal.start(newExecution("x"))
            yield* journal.start(newExecution("y"))
            yield* record(journal, step("x", "a", 1), success("x"))
            yield* record(journal, step("y", "a", 1), success("y"))
            expect((yield* journal.steps("x")).map((s) => s.outcome)).toEqual([success("x")])
            expect((yield* journal.steps("y")).map((s) => s.outcome)).toEqual([success("y")])
            expect(yield* journal.steps("nobody")).toEqual([])
          })
        )
      )

      it.live("stepsMany: the steps of several executions in one read, each one's as steps gives them", () =>
        withJournal((journal) =>
          Effect.gen(function* () {
            for (const id of ["x", "y", "empty"]) yield* journal.start(newExecution(id))
            // Written out of order, interleaved between the executions.
            yield* record(journal, step("y", "b", 2), success("y2"))
            yield* record(journal, step("x", "c", 3), success("x3"))
            yield* record(journal, step("x", "a", 1), success("x1"))
            yield* record(journal, step("y", "a", 1), success("y1"))
            yield* markAttempt(journal, step("x", "b", 2))
            expect(yield* journal.stepsMany!([])).toEqual([])
            const read = yield* journal.stepsMany!(["y", "nobody", "x", "empty"])
            expect(read).toHaveLength(5)
            for (const id of ["x", "y"]) {
              expect(read.filter((s) => s.executionId === id)).toEqual(yield* journal.steps(id))
            }
          })
        )
      )
    })

    describe("I1: an outcome is recorded once", () => {
      it.live("a second outcome for a step does not replace the first, nor does a later attempt marker", () =>
        withJournal((journal) =>
          Effect.gen(function* () {
            yield* journal.start(newExecution("order@1"))
            yield* record(journal, step("order@1", "charge", 1), success("first"), 3_000)
            yield* record(journal, step("order@1", "charge", 1, 2), success("second"), 4_000)
            yield* markAttempt(journal, step("order@1", "charge", 1, 3), 5_000)
            const [charge] = yield* journal.steps("order@1")
            expect(charge).toMatchObject({ attempt: 1, outcome: success("first"), completedAt: 3_000 })
          })
        )
      )

      it.live("concurrent writers racing on one step and one result: one value wins and stays", () =>
        withJournal((journal) =>
          Effect.gen(function* () {
            yield* journal.start(newExecution("order@1"))
            const writers = Array.from({ length: 40 }, (_, i) => i)
            yield* Effect.forEach(writers, (i) => record(journal, step("order@1", "charge", 1), success(i)), {
              concurrency: "unbounded"
            })
            yield* Effect.forEach(
              writers,
              (i) =>
                journal.write({
                  executionId: "order@1",
                  outcomes: [],
                  status: { _tag: "Complete", status: "succeeded", result: success(i) },
                  now: 9_000 + i
                }),
              { concurrency: "unbounded" }
            )
            const steps = yield* journal.steps("order@1")
            expect(steps).toHaveLength(1)
            const winner = JSON.parse(steps[0]!.outcome!).value
            expect(writers).toContain(winner)
            const row = Option.getOrThrow(yield* journal.get("order@1"))
            expect(writers).toContain(JSON.parse(row.result!).value)
            // Nothing changes afterwards.
            yield* record(journal, step("order@1", "charge", 1), success("late"))
            expect((yield* journal.steps("order@1"))[0]!.outcome).toBe(steps[0]!.outcome)
          })
        )
      )

      it.live("I4 under a race: concurrent starts of one id create it exactly once", () =>
        withJournal((journal) =>
          Effect.gen(function* () {
            const results = yield* Effect.forEach(
              Array.from({ length: 40 }, (_, i) => i),
              (i) => journal.start(newExecution("order@1", 1_000 + i, `{"n":${i}}`)),
              { concurrency: "unbounded" }
            )
            expect(results.filter((r) => r.created)).toHaveLength(1)
            const winner = results.find((r) => r.created)!.execution
            for (const result of results) expect(result.execution).toEqual(winner)
          })
        )
      )

      if (backend.sharedByProcesses) {
        it.live("two processes racing on the same executions: one start and one outcome each", () =>
          Effect.scoped(
            Effect.gen(function* () {
              const storage = yield* backend.storage
              const [p1, p2] = [yield* storage.open, yield* storage.open]
              const ids = Array.from({ length: 30 }, (_, i) => `order@${i}`)
              const race = <A>(f: (journal: Journal, id: string, who: number) => Effect.Effect<A, unknown>) =>
                Effect.forEach(
                  ids.flatMap((id) => [f(p1, id, 1), f(p2, id, 2)]),
                  (effect) => effect,
                  { concurrency: "unbounded" }
                )
              const starts = yield* race((journal, id, who) =>
                journal.start(newExecution(id, 1_000, `{"by":${who}}`))
              )
              expect(starts.filter((s) => s.created)).toHaveLength(ids.length)
              yield* race((journal, id, who) => record(journal, step(id, "charge", 1), success(who)))
              for (const id of ids) {
                const [a, b] = [yield* p1.steps(id), yield* p2.steps(id)]
                expect(a).toHaveLength(1)
                expect(a).toEqual(b)
                expect([success(1), success(2)]).toContain(a[0]!.outcome)
              }
            })
          )
        )
      }
    })

    describe("payloads", () => {
      it.live("a 1 MiB result and a 1 MiB outcome round-trip exactly", () =>
        withJournal((journal) =>
          Effect.gen(function* () {
            const big = success("x".repeat(1024 * 1024))
            const mixed = success(Array.from({ length: 40_000 }, (_, i) => `é${i}🚚`).join(""))
            yield* journal.start(newExecution("big", 1_000, big))
            yield* record(journal, step("big", "upload", 1), big)
            yield* record(journal, step("big", "mixed", 2), mixed)
            yield* journal.write({
              executionId: "big",
              outcomes: [],
              status: { _tag: "Complete", status: "succeeded", result: big },
              now: 4_000
            })
            const row = Option.getOrThrow(yield* journal.get("big"))
            expect(row.request.length).toBe(big.length)
            expect(row.request === big && row.result === big).toBe(true)
            const [upload, other] = yield* journal.steps("big")
            expect(upload!.outcome === big).toBe(true)
            expect(other!.outcome === mixed).toBe(true)
          })
        )
      )

      it.live("unicode in ids, workflow names, step keys and payloads is kept byte for byte", () =>
        withJournal((journal) =>
          Effect.gen(function* () {
            const texts = [
              "commande-été@Zoë",
              "注文@東京",
              "طلب@١",
              "emoji@🧾🚚💳",
              "e\u0301-combining", // "é" as e + combining accent: not normalized
              "line\u2028sep\tand 'quotes' \"double\" \\ back",
              "supplementary@𝔘𝔫𝔦𝔠𝔬𝔡𝔢"
            ]
            for (const id of texts) {
              const request = JSON.stringify({ id, note: `${id}\u0000 escaped NUL stays JSON` })
              yield* journal.start({ ...newExecution(id, 1_000, request), workflow: `Flow ${id}` })
              yield* record(journal, step(id, `${id}#2`, 1), success(id))
            }
            for (const id of texts) {
              const row = Option.getOrThrow(yield* journal.get(id))
              expect(row.workflow).toBe(`Flow ${id}`)
              expect(JSON.parse(row.request).id).toBe(id)
              const [only] = yield* journal.steps(id)
              expect(only).toMatchObject({ stepKey: `${id}#2`, outcome: success(id) })
            }
            expect(new Set((yield* journal.listRunning).map((e) => e.executionId))).toEqual(new Set(texts))
          })
        )
      )
    })

    describe("I6: stored data that no longer decodes", () => {
      it.live("a stored outcome that no longer decodes suspends only its execution and stays as stored", () =>
        withJournal((journal) =>
          Effect.gen(function* () {
            const calls = new Calls()
            // Two executions recorded their first activity; one outcome is not what `a` returns now.
            for (const id of ["good", "bad"]) {
              yield* journal.start({
                executionId: `three@${id}`,
                workflow: "ThreeSteps",
                request: `{"_tag":"ThreeSteps","id":"${id}"}`,
                shard: shardOf(`three@${id}`, DEFAULT_SHARD_COUNT),
                now: 1_000
              })
            }
            yield* record(journal, step("three@good", "a", 1), success(1))
            yield* record(journal, step("three@bad", "a", 1), success("not a number"))
            const run = (id: string) =>
              withEngine(journal, threeSteps(calls), (engine) =>
                Effect.exit(engine.send(new ThreeSteps({ id })))
              )
            expect(yield* run("good")).toEqual(Exit.succeed(6))
            const bad = yield* run("bad")
            const error: any = Exit.isFailure(bad)
              ? Option.getOrUndefined(Exit.findErrorOption(bad))
              : undefined
            expect(error?._tag).toBe("ExecutionSuspendedError")
            expect(error.reason).toMatchObject({
              _tag: "JournalDecodeError",
              record: "activity",
              activity: "a"
            })
            const row = Option.getOrThrow(yield* journal.get("three@bad"))
            expect(row.status).toBe("suspended")
            expect(row.reason).toContain("JournalDecodeError")
            expect((yield* journal.steps("three@bad"))[0]!.outcome).toBe(success("not a number"))
            expect(calls.count("a")).toBe(0)
          })
        )
      )

      it.live(
        "a request stored as bytes (a hand edit on SQLite) is read as text: the row lists, and its schema judges it",
        () =>
          Effect.scoped(
            Effect.gen(function* () {
              const storage = yield* backend.storage
              const journal = yield* storage.open
              const raw = storage.raw
              // Only SQLite's loose column types let a text column hold bytes.
              if (raw?.dialect !== "sqlite") return
              yield* journal.start(newExecution("fine", 1_000))
              yield* journal.start(newExecution("bytes", 2_000))
              yield* raw.sql.unsafe(
                `UPDATE ${raw.prefix}executions SET request = X'7B7D' WHERE execution_id = 'bytes'`
              )
              expect(Option.getOrThrow(yield* journal.get("bytes")).request).toBe("{}")
              const listed = yield* journal.list({ limit: 10 })
              expect(listed.map((row) => [row.executionId, row.request === "{}"])).toEqual([
                ["bytes", true],
                ["fine", false]
              ])
              expect((yield* journal.listRunning).map((e) => e.executionId).sort()).toEqual(["bytes", "fine"])
            })
          )
      )

      it.live(
        "an execution row that no longer decodes: a clear, non-transient error; the others resume",
        () =>
          Effect.scoped(
            Effect.gen(function* () {
              const storage = yield* backend.storage
              const journal = yield* storage.open
              const raw = storage.raw
              if (raw === undefined) {
                // Memory keeps typed records: no row can stop decoding. Nothing to damage.
                expect(backend.name).toBe("memory")
                return
              }
              yield* journal.start(newExecution("fine", 1_000))
              yield* journal.start(newExecution("damaged", 2_000))
              yield* raw.sql.unsafe(
                `UPDATE ${raw.prefix}executions SET status = 'exploded' WHERE execution_id = 'damaged'`
              )
              const error = yield* Effect.flip(journal.get("damaged"))
              expect(error._tag).toBe("JournalError")
              expect(error.transient).toBe(false)
              expect(error.message).toContain("does not decode")
              expect(error.message).toContain("damaged")
              expect(error.message).toContain("status")
              expect((yield* journal.listRunning).map((e) => e.executionId)).toEqual(["fine"])
              // The damaged row is left as it was, for a human to repair.
              const rows = yield* raw.sql.unsafe<{ status: string }>(
                `SELECT status FROM ${raw.prefix}executions WHERE execution_id = 'damaged'`
              )
              expect(rows).toEqual([{ status: "exploded" }])
            })
          )
      )
    })

    describe("migrations", () => {
      it.live("reopening migrated storage applies nothing and keeps the data", () =>
        Effect.scoped(
          Effect.gen(function* () {
            const storage = yield* backend.storage
            yield* Effect.scoped(
              Effect.flatMap(storage.open, (journal) => journal.start(newExecution("kept")))
            )
            const journal = yield* storage.open
            expect(Option.getOrThrow(yield* journal.get("kept")).status).toBe("running")
            if (storage.raw !== undefined) {
              const versions = yield* storage.raw.sql.unsafe<{ version: number }>(
                `SELECT version FROM ${storage.raw.prefix}migrations ORDER BY version`
              )
              expect(versions.map((v) => Number(v.version))).toEqual(allVersions)
            }
          })
        )
      )

      if (backend.name !== "memory") {
        it.live("several processes migrating at once: each migration is applied exactly once", () =>
          Effect.scoped(
            Effect.gen(function* () {
              const storage = yield* backend.storage
              const applied = yield* storage.migrateConcurrently!(4)
              expect(applied.filter((versions) => versions.length > 0)).toEqual([allVersions])
              expect(applied.flat()).toEqual(allVersions)
            })
          )
        )
      }
    })

    describe("the engine on this backend", () => {
      it.live("bad identifiers get the same typed error on every backend, and nothing is stored", () =>
        withJournal((journal) =>
          Effect.gen(function* () {
            const badIds = ["", "nul\u0000inside", "lone\ud800surrogate", "low\udc00first", "x".repeat(257)]
            const errands = (activityId: string) =>
              Workflow.make(
                Errand,
                (r) => r.id,
                () => Effect.succeed("ran").pipe(Activity.make(activityId, Schema.String, Schema.String))
              )
            yield* withEngine(journal, errands("fine"), (engine) =>
              Effect.gen(function* () {
                for (const id of badIds) {
                  const error = yield* Effect.flip(engine.sendDiscard(new Errand({ id })))
                  expect(error._tag).toBe("InvalidIdentifierError")
                  if (error._tag !== "InvalidIdentifierError") continue
                  expect(error.kind).toBe("execution id")
                  expect(error.message).toContain('workflow "Errand"')
                  const lookup = yield* Effect.flip(engine.status(id))
                  expect(lookup._tag).toBe("InvalidIdentifierError")
                }
                const nul = yield* Effect.flip(engine.sendDiscard(new Errand({ id: "nul\u0000inside" })))
                expect(nul.message).toContain("contains NUL (U+0000) at index 3")
                const lone = yield* Effect.flip(engine.status("lone\ud800surrogate"))
                expect(lone.message).toContain("lone surrogate (U+D800) at index 4")
                expect((yield* engine.list({})).executions).toEqual([])
                // A supplementary character is a valid surrogate pair.
                expect(yield* engine.send(new Errand({ id: "ok@𝔘" }))).toBe("ran")
                const badSignal = yield* Effect.flip(
                  engine.signal("ok@𝔘", Signal.make("nul\u0000", Schema.String), "x")
                )
                expect(badSignal._tag).toBe("InvalidIdentifierError")
              })
            )
            // An activity id the journal cannot store suspends only its execution, recording nothing.
            yield* withEngine(journal, errands("charge\u0000card"), (engine) =>
              Effect.gen(function* () {
                const error = yield* Effect.flip(engine.send(new Errand({ id: "bad-activity" })))
                if (typeof error === "string" || error._tag !== "ExecutionSuspendedError") {
                  return expect.fail(`expected a suspension, got ${String(error)}`)
                }
                expect(error.reason._tag).toBe("InvalidIdentifierError")
                expect(error.reason.message).toContain('activity id "charge\\u0000card"')
                expect(yield* journal.steps("bad-activity")).toEqual([])
              })
            )
          })
        )
      )

      it.live("runs a workflow, then a restarted engine returns the stored result without re-running", () =>
        Effect.scoped(
          Effect.gen(function* () {
            const storage = yield* backend.storage
            const calls = new Calls()
            const first = yield* Effect.scoped(
              Effect.flatMap(storage.open, (journal) =>
                withEngine(journal, threeSteps(calls), (engine) => engine.send(new ThreeSteps({ id: "1" })))
              )
            )
            expect(first).toBe(6)
            const again = yield* Effect.scoped(
              Effect.flatMap(storage.open, (journal) =>
                withEngine(journal, threeSteps(calls), (engine) => engine.send(new ThreeSteps({ id: "1" })))
              )
            )
            expect(again).toBe(6)
            expect([calls.count("a"), calls.count("b"), calls.count("c")]).toEqual([1, 1, 1])
          })
        )
      )

      it.live("200 concurrent executions all complete, each activity recorded once", () =>
        withJournal((journal) =>
          Effect.gen(function* () {
            const calls = new Calls()
            const ids = Array.from({ length: 200 }, (_, i) => String(i))
            const results = yield* withEngine(journal, threeSteps(calls), (engine) =>
              Effect.forEach(ids, (id) => engine.send(new ThreeSteps({ id })), { concurrency: "unbounded" })
            )
            expect(results).toEqual(ids.map(() => 6))
            expect(calls.count("a")).toBe(200)
            for (const id of ["0", "99", "199"]) {
              const steps = yield* journal.steps(`three@${id}`)
              expect(steps.map((s) => [s.stepKey, s.attempt, s.outcome])).toEqual([
                ["a", 1, success(1)],
                ["b", 1, success(2)],
                ["c", 1, success(3)]
              ])
            }
          })
        )
      )

      it.live("Workflow.now and Workflow.random are recorded and replayed after a restart", () =>
        Effect.scoped(
          Effect.gen(function* () {
            const storage = yield* backend.storage
            class Stamp extends Workflow.TaggedRequest<Stamp>()("Stamp", {
              payload: { id: Schema.String },
              success: Schema.Array(Schema.Number),
              failure: Schema.Never
            }) {}
            let gateOpen = false
            const seen: Array<ReadonlyArray<number>> = []
            const workflow = Workflow.make(
              Stamp,
              (r) => `stamp@${r.id}`,
              () =>
                Effect.gen(function* () {
                  const values = [yield* Workflow.now, yield* Workflow.random, yield* Workflow.random]
                  seen.push(values)
                  yield* Effect.suspend(() => (gateOpen ? Effect.void : Effect.never)).pipe(
                    Activity.make("gate", Schema.Void, Schema.Never)
                  )
                  return values
                })
            )
            // First engine: records the values, blocks at the gate, shuts down.
            yield* Effect.scoped(
              Effect.flatMap(storage.open, (journal) =>
                withEngine(journal, workflow, (engine) =>
                  Effect.andThen(engine.sendDiscard(new Stamp({ id: "1" })), Effect.sleep("50 millis"))
                )
              )
            )
            yield* Effect.sleep("5 millis") // the clock moves on
            gateOpen = true
            const result = yield* Effect.scoped(
              Effect.flatMap(storage.open, (journal) =>
                withEngine(journal, workflow, (engine) => engine.send(new Stamp({ id: "1" })))
              )
            )
            expect(seen).toHaveLength(2)
            expect(seen[1]).toEqual(seen[0])
            expect(result).toEqual(seen[0])
            const [now, r1, r2] = seen[0]!
            expect(r1).not.toBe(r2)
            for (const r of [r1!, r2!]) expect(r >= 0 && r < 1).toBe(true)
            expect(Math.abs(now! - Date.now())).toBeLessThan(60_000)
            const journal = yield* storage.open
            const keys = (yield* journal.steps("stamp@1")).map((s) => [s.stepKey, s.outcome !== null])
            expect(keys).toEqual([
              ["effect-cluster/now", true],
              ["effect-cluster/random", true],
              ["effect-cluster/random#2", true],
              ["gate", true]
            ])
          })
        )
      )

      it.live("Workflow.sleep parks the execution without a fiber and wakes it at its deadline", () =>
        withJournal((journal) =>
          Effect.gen(function* () {
            const workflow = napper(300)
            const result = yield* withEngine(journal, workflow, (engine) =>
              Effect.gen(function* () {
                yield* engine.sendDiscard(new Nap({ id: "1" }))
                const info = yield* awaitParked(engine, "nap@1")
                expect(engine.runningCount()).toBe(0)
                expect(Option.isSome(info.wakeAt)).toBe(true)
                return yield* engine.send(new Nap({ id: "1" }))
              })
            )
            const steps = yield* journal.steps("nap@1")
            const deadline = JSON.parse(
              steps.find((s) => s.stepKey === "effect-cluster/sleep")!.outcome!
            ).value
            // The deadline is the time the sleep began plus its duration.
            expect(deadline - 300).toBeGreaterThanOrEqual(result.before)
            expect(deadline - 300).toBeLessThan(result.before + 1_000)
            expect(result.after).toBeGreaterThanOrEqual(deadline)
            expect(Option.getOrThrow(yield* journal.get("nap@1"))).toMatchObject({
              status: "succeeded",
              wakeAt: null
            })
          })
        )
      )

      it.live("a sleep survives a restart: the next engine wakes it at the original deadline", () =>
        Effect.scoped(
          Effect.gen(function* () {
            const storage = yield* backend.storage
            const workflow = napper(1_000)
            yield* Effect.scoped(
              Effect.flatMap(storage.open, (journal) =>
                withEngine(journal, workflow, (engine) =>
                  Effect.andThen(
                    engine.sendDiscard(new Nap({ id: "r" })),
                    awaitStatus(engine, "nap@r", "sleeping")
                  )
                )
              )
            )
            yield* Effect.sleep("300 millis") // down for a while
            const restartedAt = Date.now()
            const result = yield* Effect.scoped(
              Effect.flatMap(storage.open, (journal) =>
                withEngine(journal, workflow, (engine) => engine.send(new Nap({ id: "r" })))
              )
            )
            const deadline = result.before + 1_000
            expect(result.after).toBeGreaterThanOrEqual(deadline)
            // Not a fresh 1 s sleep from the restart.
            expect(result.after).toBeLessThan(restartedAt + 1_000)
          })
        )
      )

      it.live("Signal.receive parks until engine.signal; exactly once; a signal sent early is kept", () =>
        withJournal((journal) =>
          Effect.gen(function* () {
            const results = yield* withEngine(journal, approvals, (engine) =>
              Effect.gen(function* () {
                // Sent before the workflow waits: kept.
                yield* engine.sendDiscard(new Approve({ id: "early", timeoutMillis: 0 }))
                const early = yield* engine.signal("approve@early", approval, { by: "ada" })
                const earlyResult = yield* engine.send(new Approve({ id: "early", timeoutMillis: 0 }))
                yield* engine.sendDiscard(new Approve({ id: "late", timeoutMillis: 0 }))
                const info = yield* awaitParked(engine, "approve@late")
                expect(info.wakeAt).toEqual(Option.none())
                expect(engine.runningCount()).toBe(0)
                const first = yield* engine.signal("approve@late", approval, { by: "grace" })
                const second = yield* engine.signal("approve@late", approval, { by: "mallory" })
                expect([early, first, second]).toEqual([true, true, false])
                const bad = yield* Effect.flip(engine.signal("approve@late", approval, { by: 7 } as never))
                expect(bad._tag).toBe("InvalidSignalError")
                const missing = yield* Effect.flip(engine.signal("approve@nobody", approval, { by: "x" }))
                expect(missing._tag).toBe("ExecutionNotFoundError")
                return [earlyResult, yield* engine.send(new Approve({ id: "late", timeoutMillis: 0 }))]
              })
            )
            expect(results).toEqual(["approved by ada", "approved by grace"])
          })
        )
      )

      it.live("Signal.receive with a timeout: none when it expires; a wait survives a restart", () =>
        Effect.scoped(
          Effect.gen(function* () {
            const storage = yield* backend.storage
            const timedOut = yield* Effect.scoped(
              Effect.flatMap(storage.open, (journal) =>
                withEngine(journal, approvals, (engine) =>
                  Effect.gen(function* () {
                    const result = yield* engine.send(new Approve({ id: "t", timeoutMillis: 300 }))
                    // Too late: stored, but the workflow already recorded its timeout.
                    yield* engine.signal("approve@t", approval, { by: "late" })
                    yield* engine.sendDiscard(new Approve({ id: "r", timeoutMillis: 0 }))
                    yield* awaitStatus(engine, "approve@r", "sleeping")
                    return result
                  })
                )
              )
            )
            expect(timedOut).toBe("timed out")
            // A new engine: the waiting execution is still parked; a signal wakes it.
            const resumed = yield* Effect.scoped(
              Effect.flatMap(storage.open, (journal) =>
                withEngine(journal, approvals, (engine) =>
                  Effect.gen(function* () {
                    yield* engine.signal("approve@r", approval, { by: "restarted" })
                    return [
                      yield* engine.send(new Approve({ id: "r", timeoutMillis: 0 })),
                      yield* engine.send(new Approve({ id: "t", timeoutMillis: 300 }))
                    ]
                  })
                )
              )
            )
            expect(resumed).toEqual(["approved by restarted", "timed out"])
          })
        )
      )

      it.live("child workflows, sagas and heartbeats on this backend", () =>
        withJournal((journal) =>
          Effect.gen(function* () {
            const log: Array<string> = []
            const act = (id: string, fail = false) =>
              Effect.gen(function* () {
                yield* Activity.heartbeat({ at: id })
                log.push(id)
                if (fail) return yield* Effect.fail(`${id} failed`)
              }).pipe(Activity.make(id, Schema.Void, Schema.String, { retry: { maxAttempts: 1 } }))
            const child = Workflow.make(
              Errand,
              (r) => `child@${r.id}`,
              () => Effect.as(act("child-work", true), "done")
            )
            const parent = Workflow.make(
              ThreeSteps,
              (r) => `parent@${r.id}`,
              ({ id }) =>
                Saga.run(
                  Effect.gen(function* () {
                    yield* Saga.step(act("reserve"), () => act("release"))
                    yield* Workflow.executeChild(child, new Errand({ id }))
                    return 1
                  })
                ).pipe(
                  Effect.mapError((e) => new OutOfStockError({ sku: typeof e === "string" ? e : e.message }))
                )
            )
            const exit = yield* withEngine(journal, Workflow.union(parent, child), (engine) =>
              Effect.exit(engine.send(new ThreeSteps({ id: "1" })))
            )
            expect(exit).toEqual(Exit.fail(new OutOfStockError({ sku: "child-work failed" })))
            expect(log).toEqual(["reserve", "child-work", "release"])
            const status = (id: string) =>
              Effect.map(
                journal.get(id),
                Option.map((row) => row.status)
              )
            expect(yield* status("parent@1")).toEqual(Option.some("failed"))
            expect(yield* status("child@1")).toEqual(Option.some("failed"))
            const [childWork] = yield* journal.steps("child@1")
            expect(childWork?.heartbeat).toBe('{"at":"child-work"}')
          })
        )
      )

      it.live("inspection: engine.list pages, engine.history shows steps with attempts and outcomes", () =>
        withJournal((journal) =>
          Effect.gen(function* () {
            const calls = new Calls()
            yield* withEngine(journal, threeSteps(calls), (engine) =>
              Effect.gen(function* () {
                yield* Effect.forEach(["1", "2", "3"], (id) => engine.send(new ThreeSteps({ id })))
                const first = yield* engine.list({ workflow: "ThreeSteps", limit: 2 })
                expect(first.executions.map((e) => e.executionId)).toEqual(["three@1", "three@2"])
                const second = yield* engine.list({
                  workflow: "ThreeSteps",
                  limit: 2,
                  after: Option.getOrThrow(first.next)
                })
                expect(second.executions.map((e) => [e.executionId, e.status])).toEqual([
                  ["three@3", "succeeded"]
                ])
                expect(second.next).toEqual(Option.none())
                const history = yield* engine.history("three@2")
                expect(history.execution.status).toBe("succeeded")
                expect(history.steps.map((s) => [s.stepKey, s.attempts, s.state, s.outcome])).toEqual([
                  ["a", 1, "succeeded", Option.some({ _tag: "Success", value: 1 })],
                  ["b", 1, "succeeded", Option.some({ _tag: "Success", value: 2 })],
                  ["c", 1, "succeeded", Option.some({ _tag: "Success", value: 3 })]
                ])
                for (const step of history.steps) {
                  expect(Option.getOrThrow(step.completedAt)).toBeGreaterThanOrEqual(step.startedAt)
                }
                const missing = yield* Effect.flip(engine.history("three@404"))
                expect(missing._tag).toBe("ExecutionNotFoundError")
              })
            )
          })
        )
      )

      it.live("history keeps every failed attempt with its timing and error", () =>
        withJournal((journal) =>
          Effect.gen(function* () {
            class Flaky extends Schema.TaggedError<Flaky>()("Flaky", { n: Schema.Number }) {}
            let calls = 0
            const workflow = Workflow.make(
              Errand,
              (r) => `flaky@${r.id}`,
              () =>
                Effect.suspend(() => {
                  calls++
                  return calls < 3 ? Effect.fail(new Flaky({ n: calls })) : Effect.succeed("third time")
                }).pipe(
                  Activity.make("call-api", Schema.String, Flaky, { retry: { initialDelay: "1 millis" } }),
                  Effect.mapError((e) => `flaky ${e.n}`)
                )
            )
            const history = yield* withEngine(journal, workflow, (engine) =>
              Effect.andThen(engine.send(new Errand({ id: "1" })), engine.history("flaky@1"))
            )
            const [step] = history.steps
            expect(step).toMatchObject({ stepKey: "call-api", attempts: 3, state: "succeeded" })
            expect(step!.failedAttempts.map((a) => [a.attempt, a.failure])).toEqual([
              [1, { _tag: "Failure", cause: [{ _tag: "Fail", error: { _tag: "Flaky", n: 1 } }] }],
              [2, { _tag: "Failure", cause: [{ _tag: "Fail", error: { _tag: "Flaky", n: 2 } }] }]
            ])
            for (const attempt of step!.failedAttempts)
              expect(attempt.endedAt).toBeGreaterThanOrEqual(attempt.startedAt)
            // Stored once: writing the same failed attempt again changes nothing.
            yield* journal.write({
              executionId: "flaky@1",
              outcomes: [],
              failedAttempts: [
                {
                  executionId: "flaky@1",
                  stepKey: "call-api",
                  attempt: 1,
                  startedAt: 0,
                  endedAt: 0,
                  outcome: "{}"
                }
              ],
              now: 1
            })
            expect((yield* journal.attempts("flaky@1")).map((a) => [a.attempt, a.startedAt === 0])).toEqual([
              [1, false],
              [2, false]
            ])
          })
        )
      )

      it.live("retry.yieldAfter and heartbeat timeouts on this backend", () =>
        withJournal((journal) =>
          Effect.gen(function* () {
            let up = false
            let stalls = 0
            const workflow = Workflow.make(
              Errand,
              (r) => `hooks@${r.id}`,
              () =>
                Effect.gen(function* () {
                  // The first attempt hangs without heartbeats: the heartbeat timeout fails it.
                  yield* Effect.suspend(() => (stalls++ === 0 ? Effect.never : Effect.void)).pipe(
                    Activity.make("stall", Schema.Void, Schema.Never, {
                      heartbeatTimeout: "100 millis",
                      retry: { initialDelay: "1 millis" }
                    })
                  )
                  return yield* Effect.suspend(() => (up ? Effect.succeed("up") : Effect.fail("down"))).pipe(
                    Activity.make("probe", Schema.String, Schema.String, {
                      retry: { yieldAfter: 2, maxAttempts: 100, initialDelay: "1 millis" }
                    })
                  )
                })
            )
            yield* withEngine(journal, workflow, (engine) =>
              Effect.gen(function* () {
                yield* Effect.exit(engine.send(new Errand({ id: "1" })))
                const info = yield* awaitStatus(engine, "hooks@1", "suspended")
                expect(Option.getOrThrow(info.suspendedBecause)).toMatchObject({ _tag: "ExecutionYielded" })
                up = true
                yield* engine.resume("hooks@1")
                expect(yield* engine.send(new Errand({ id: "1" }))).toBe("up")
                const history = yield* engine.history("hooks@1")
                expect(history.steps.map((s) => [s.stepKey, s.attempts, s.failedAttempts.length])).toEqual([
                  ["stall", 2, 1],
                  ["probe", 3, 2]
                ])
                expect(JSON.stringify(history.steps[0]!.failedAttempts[0]!.failure)).toContain(
                  "ActivityTimeoutError"
                )
              })
            )
          })
        )
      )

      it.live("an activity failure is recorded with its typed error and replayed as such", () =>
        withJournal((journal) =>
          Effect.gen(function* () {
            class Fails extends Schema.TaggedError<Fails>()("Fails", { why: Schema.String }) {}
            class Job extends Workflow.TaggedRequest<Job>()("Job", {
              payload: { id: Schema.String },
              success: Schema.String,
              failure: Fails
            }) {}
            const workflow = Workflow.make(
              Job,
              (r) => `job@${r.id}`,
              () =>
                Effect.fail(new Fails({ why: "déjà vu 🚫" })).pipe(
                  Activity.make("boom", Schema.String, Fails, { retry: { maxAttempts: 1 } })
                )
            )
            const first = yield* withEngine(journal, workflow, (engine) =>
              Effect.exit(engine.send(new Job({ id: "1" })))
            )
            const second = yield* withEngine(journal, workflow, (engine) =>
              Effect.exit(engine.send(new Job({ id: "1" })))
            )
            expect(first).toEqual(Exit.fail(new Fails({ why: "déjà vu 🚫" })))
            expect(second).toEqual(first)
            expect(Option.getOrThrow(yield* journal.get("job@1")).status).toBe("failed")
          })
        )
      )
    })
  })
