import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Option, Schema } from "effect"
import {
  Activity,
  MemoryJournal,
  ShardId,
  Workflow,
  WorkflowContext,
  WorkflowErrors
} from "../../src/index.ts"
import { awaitStatus, Calls, fastRetry, Job, withEngine } from "./fixtures.ts"

describe("execution lifecycle", () => {
  it.live("yieldExecution inside an activity suspends durably until resume, then re-runs it", () =>
    Effect.gen(function* () {
      const journal = yield* MemoryJournal.make
      const calls = new Calls()
      let apiUp = false
      const workflow = Workflow.make(
        Job,
        (r) => `job@${r.id}`,
        () =>
          Effect.gen(function* () {
            yield* calls.activity("before", Schema.Number, 1)
            return yield* calls
              .tracked(
                "get-amount",
                Effect.suspend(() =>
                  apiUp
                    ? Effect.succeed("42")
                    : Effect.logError("OrderAPI is down").pipe(Effect.andThen(Workflow.yieldExecution))
                )
              )
              .pipe(Activity.make("get-amount", Schema.String, Schema.Never))
          })
      )
      const first = yield* Effect.exit(withEngine(journal, workflow, (e) => e.send(new Job({ id: "1" }))))
      expect(Exit.isFailure(first)).toBe(true)
      expect(JSON.stringify(first)).toContain("ExecutionSuspendedError")
      // A new engine does not resume a suspended execution on its own.
      const info = yield* withEngine(journal, workflow, (e) =>
        Effect.andThen(Effect.sleep("20 millis"), e.status("job@1"))
      )
      expect(Option.map(info, (i) => [i.status, Option.map(i.suspendedBecause, (r) => r._tag)])).toEqual(
        Option.some(["suspended", Option.some("ExecutionYielded")])
      )
      expect(calls.count("get-amount")).toBe(1)
      apiUp = true
      const result = yield* withEngine(journal, workflow, (e) =>
        Effect.andThen(e.resume("job@1"), e.send(new Job({ id: "1" })))
      )
      expect(result).toBe("42")
      expect(calls.attempts.get("get-amount")).toEqual([1, 2])
      expect(calls.count("before")).toBe(1)
    })
  )

  it.live(
    "interrupt runs the workflow's compensations (activities included) and records it interrupted",
    () =>
      Effect.gen(function* () {
        const journal = yield* MemoryJournal.make
        const calls = new Calls()
        const started = yield* Deferred.make<void>()
        const workflow = Workflow.make(
          Job,
          (r) => `cancel@${r.id}`,
          () =>
            Effect.gen(function* () {
              yield* calls.activity("charge", Schema.Number, 10)
              return yield* calls
                .tracked("ship", Deferred.succeed(started, undefined).pipe(Effect.andThen(Effect.never)))
                .pipe(Activity.make("ship", Schema.String, Schema.Never))
            }).pipe(Effect.onInterrupt(() => calls.activity("refund", Schema.Number, 10)))
        )
        yield* withEngine(journal, workflow, (e) =>
          Effect.gen(function* () {
            yield* e.sendDiscard(new Job({ id: "1" }))
            yield* Deferred.await(started)
            yield* e.interrupt("cancel@1")
            const info = yield* e.status("cancel@1")
            expect(Option.map(info, (i) => i.status)).toEqual(Option.some("interrupted"))
          })
        )
        expect(calls.count("refund")).toBe(1)
        const steps = yield* journal.steps("cancel@1")
        expect(steps.map((s) => [s.stepKey, s.outcome !== null])).toEqual([
          ["charge", true],
          ["ship", false],
          ["refund", true]
        ])
      })
  )

  it.live("interrupting a suspended execution replays it, then runs its compensations", () =>
    Effect.gen(function* () {
      const journal = yield* MemoryJournal.make
      const calls = new Calls()
      const workflow = Workflow.make(
        Job,
        (r) => `cancel-suspended@${r.id}`,
        () =>
          Effect.gen(function* () {
            yield* calls.activity("charge", Schema.Number, 10)
            yield* Workflow.yieldExecution
            return "unreachable"
          }).pipe(Effect.onInterrupt(() => calls.activity("refund", Schema.Number, 10)))
      )
      yield* Effect.exit(withEngine(journal, workflow, (e) => e.send(new Job({ id: "1" }))))
      yield* withEngine(journal, workflow, (e) => e.interrupt("cancel-suspended@1"))
      const row = yield* journal.get("cancel-suspended@1")
      expect(Option.map(row, (r) => r.status)).toEqual(Option.some("interrupted"))
      expect([calls.count("charge"), calls.count("refund")]).toEqual([1, 1])
    })
  )

  it.live("I8: a graceful shutdown mid-activity records nothing; the next engine resumes the execution", () =>
    Effect.gen(function* () {
      const journal = yield* MemoryJournal.make
      const calls = new Calls()
      const started = yield* Deferred.make<void>()
      const sawGraceful: Array<boolean> = []
      let block = true
      const workflow = Workflow.make(
        Job,
        (r) => `graceful@${r.id}`,
        () =>
          Effect.gen(function* () {
            yield* calls.activity("first", Schema.Number, 1)
            return yield* calls
              .tracked(
                "upload",
                Effect.suspend(() =>
                  block
                    ? Deferred.succeed(started, undefined).pipe(
                        Effect.andThen(Effect.never),
                        Effect.onInterrupt(() =>
                          Effect.map(WorkflowContext.isGracefulShutdown, (graceful) =>
                            sawGraceful.push(graceful)
                          )
                        )
                      )
                    : Effect.succeed("uploaded")
                )
              )
              .pipe(Activity.make("upload", Schema.String, Schema.Never))
          })
      )
      yield* withEngine(journal, workflow, (e) =>
        Effect.andThen(e.sendDiscard(new Job({ id: "1" })), Deferred.await(started))
      )
      expect(sawGraceful).toEqual([true])
      const afterShutdown = yield* journal.get("graceful@1")
      expect(Option.map(afterShutdown, (r) => r.status)).toEqual(Option.some("running"))
      const steps = yield* journal.steps("graceful@1")
      expect(steps.find((s) => s.stepKey === "upload")?.outcome).toBeNull()
      block = false
      // The next engine resumes it on start, without a send.
      const info = yield* withEngine(
        journal,
        workflow,
        (e) => awaitStatus(e, "graceful@1", "succeeded"),
        fastRetry
      )
      expect(info.status).toBe("succeeded")
      expect(calls.attempts.get("upload")).toEqual([1, 2])
      expect(calls.count("first")).toBe(1)
    })
  )

  it.live(
    "a journal write that fails for good stops the run: no later activity runs, nothing is misreported",
    () =>
      Effect.gen(function* () {
        const base = yield* MemoryJournal.make
        let failWriteOf: string | undefined = "b"
        const broken = {
          ...base,
          write: (write: Parameters<typeof base.write>[0]) =>
            Effect.suspend(() => {
              if (write.attempt?.stepKey !== failWriteOf) return base.write(write)
              failWriteOf = undefined
              return Effect.fail(
                new WorkflowErrors.JournalError({
                  operation: "write",
                  message: "disk full",
                  transient: false
                })
              )
            })
        }
        const calls = new Calls()
        const workflow = Workflow.make(
          Job,
          (r) => `broken@${r.id}`,
          () =>
            Effect.gen(function* () {
              yield* calls.activity("a", Schema.Number, 1)
              const b = yield* calls
                .activity("b", Schema.String, "b")
                .pipe(Effect.catchCause(() => Effect.succeed("compensated")))
              return yield* calls.activity("c", Schema.String, `c after ${b}`)
            })
        )
        const first = yield* Effect.exit(withEngine(broken, workflow, (e) => e.send(new Job({ id: "1" }))))
        expect(JSON.stringify(first)).toContain("disk full")
        expect([calls.count("b"), calls.count("c")]).toEqual([0, 0])
        expect(Option.map(yield* base.get("broken@1"), (row) => row.status)).toEqual(Option.some("running"))
        const result = yield* withEngine(base, workflow, (e) => e.send(new Job({ id: "1" })))
        expect(result).toBe("c after b")
        expect([calls.count("b"), calls.count("c")]).toEqual([1, 1])
      })
  )

  it.live("a send that read the row before an interrupt does not restart the interrupted execution", () =>
    Effect.gen(function* () {
      const base = yield* MemoryJournal.make
      const calls = new Calls()
      let shipBlocks = true
      const slowStart = {
        ...base,
        start: (x: Parameters<typeof base.start>[0]) =>
          Effect.tap(base.start(x), () => Effect.sleep("40 millis"))
      }
      const workflow = Workflow.make(
        Job,
        (r) => `stale@${r.id}`,
        () =>
          Effect.gen(function* () {
            yield* calls.activity("charge", Schema.Number, 1)
            return yield* calls
              .tracked(
                "ship",
                Effect.suspend(() => (shipBlocks ? Effect.never : Effect.succeed("shipped")))
              )
              .pipe(Activity.make("ship", Schema.String, Schema.Never))
          })
      )
      yield* withEngine(slowStart, workflow, (e) =>
        Effect.gen(function* () {
          yield* e.sendDiscard(new Job({ id: "1" }))
          yield* Effect.sleep("40 millis")
          const second = yield* Effect.forkChild(Effect.exit(e.send(new Job({ id: "1" }))))
          yield* Effect.sleep("10 millis")
          yield* e.interrupt("stale@1")
          shipBlocks = false
          const exit = yield* Fiber.join(second)
          expect(Exit.isSuccess(exit)).toBe(false)
        })
      )
      expect(Option.map(yield* base.get("stale@1"), (row) => row.status)).toEqual(Option.some("interrupted"))
      expect(calls.count("ship")).toBe(1)
    })
  )

  it.live("an engine shut down before its resumed runs began stops cleanly; the next one finishes them", () =>
    Effect.gen(function* () {
      const journal = yield* MemoryJournal.make
      const calls = new Calls()
      const workflow = Workflow.make(
        Job,
        (r) => `quick@${r.id}`,
        () => calls.activity("only", Schema.String, "done")
      )
      for (const id of ["1", "2", "3"]) {
        yield* journal.start({
          executionId: `quick@${id}`,
          workflow: "Job",
          request: `{"_tag":"Job","id":"${id}"}`,
          shard: ShardId.shardOf(`quick@${id}`, ShardId.DEFAULT_SHARD_COUNT),
          now: 1
        })
      }
      // Resumed at start, then shut down at once: the runs were forked but may not have begun.
      // Before the fix, shutdown waited forever on the runs that had not begun.
      yield* withEngine(journal, workflow, () => Effect.void)
      const results = yield* withEngine(journal, workflow, (e) =>
        Effect.forEach(["1", "2", "3"], (id) => e.send(new Job({ id })))
      )
      expect(results).toEqual(["done", "done", "done"])
      expect(calls.count("only")).toBe(3)
    })
  )
})
