/**
 * The engine's liveness backstop (`internal/Recovery.ts`): a `running` execution of a shard the
 * engine owns that has no run is started within an interval or two, with a warning that names it.
 * Here the orphan is made the way a run can leave one: its resumption stopped because the journal
 * gave up on loading its steps (a statement timeout), which leaves it `running` with no run. An
 * execution whose run is in progress (an activity taking its time) is left alone.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Logger, Option, Schema } from "effect"
import { TestClock } from "effect/testing"
import {
  Activity,
  DurableExecutionJournal,
  MemoryJournal,
  ShardId,
  Workflow,
  WorkflowEngine,
  WorkflowErrors
} from "../../src/index.ts"
import { Job } from "./fixtures.ts"

describe("recovery of executions left without a run", () => {
  it.live("an orphan is started with a warning naming it; a run in progress is left alone", () =>
    Effect.gen(function* () {
      const lines: Array<string> = []
      const logger = Logger.make(({ message }) => {
        lines.push(Array.isArray(message) ? message.map(String).join(" ") : String(message))
      })
      const release = yield* Deferred.make<void>()
      const job = Workflow.make(
        Job,
        (request) => request.id,
        (request) =>
          (request.id === "slow"
            ? Effect.as(Deferred.await(release), request.id)
            : Effect.succeed(request.id)
          ).pipe(Activity.make("work", Schema.String, Schema.Never))
      )
      const memory = yield* MemoryJournal.make
      // Unfinished, as a crash leaves it: the engine resumes it when it starts.
      yield* memory.start({
        executionId: "orphan",
        workflow: "Job",
        request: JSON.stringify({ _tag: "Job", id: "orphan" }),
        shard: ShardId.shardOf("orphan", ShardId.DEFAULT_SHARD_COUNT),
        now: Date.now() - 60_000
      })
      // Its first load of steps is given up on (a statement timeout): that run stops, the
      // execution stays `running`, and nothing else would start it again until a restart. A
      // batched read that holds it times out too (the run then loads alone, and gives up).
      let gaveUp = false
      const journal: DurableExecutionJournal.DurableExecutionJournal["Service"] = {
        ...memory,
        stepsMany: (executionIds) =>
          executionIds.includes("orphan") && !gaveUp
            ? Effect.fail(
                new WorkflowErrors.JournalError({
                  operation: "stepsMany",
                  transient: false,
                  timeoutMillis: 1
                })
              )
            : memory.stepsMany!(executionIds),
        steps: (executionId) => {
          if (executionId !== "orphan" || gaveUp) return memory.steps(executionId)
          gaveUp = true
          return Effect.fail(
            new WorkflowErrors.JournalError({ operation: "steps", transient: false, timeoutMillis: 1 })
          )
        }
      }
      yield* Effect.gen(function* () {
        const engine = yield* WorkflowEngine.makeScoped(job, { recoveryInterval: "200 millis" })
        // A run in progress for several intervals: not an orphan.
        yield* engine.sendDiscard(new Job({ id: "slow" }))
        let status = yield* engine.status("orphan")
        while (Option.isSome(status) && status.value.status === "running") {
          yield* Effect.sleep("50 millis")
          status = yield* engine.status("orphan")
        }
        expect(gaveUp).toBe(true)
        expect(Option.map(status, (info) => info.status)).toEqual(Option.some("succeeded"))
        const warnings = lines.filter((line) => line.startsWith("recovery:"))
        expect(warnings).toHaveLength(1)
        expect(warnings[0]).toContain("started them: orphan ")
        expect(warnings[0]).not.toContain("slow")
        yield* Deferred.succeed(release, undefined)
        expect(yield* engine.send(new Job({ id: "slow" }))).toBe("slow")
      }).pipe(
        Effect.scoped,
        Effect.provideService(DurableExecutionJournal.DurableExecutionJournal, journal),
        Effect.provide(Logger.layer([logger]))
      )
    })
  )

  it.live("a shard whose resumption has not ended is not looked at, however long it takes", () =>
    Effect.gen(function* () {
      const lines: Array<string> = []
      const logger = Logger.make(({ message }) => {
        lines.push(Array.isArray(message) ? message.map(String).join(" ") : String(message))
      })
      const job = Workflow.make(
        Job,
        (request) => request.id,
        (request) => Effect.succeed(request.id)
      )
      const shardCount = 4
      const slowShard = ShardId.shardOf("waiting", shardCount)
      const otherShard = slowShard === 1 ? 2 : 1
      const memory = yield* MemoryJournal.make
      yield* memory.start({
        executionId: "waiting",
        workflow: "Job",
        request: JSON.stringify({ _tag: "Job", id: "waiting" }),
        shard: slowShard,
        now: Date.now() - 60_000
      })
      // The first listing of the slow shard is part of its resumption: it waits (shards among
      // hundreds taken over at once wait their turn), for five intervals of recovery.
      const resumptionGoesOn = yield* Deferred.make<void>()
      let slowListings = 0
      let otherListings = 0
      const journal: DurableExecutionJournal.DurableExecutionJournal["Service"] = {
        ...memory,
        listUnfinished: (query) =>
          Effect.suspend(() => {
            if (query.shard === otherShard) otherListings++
            if (query.shard !== slowShard || slowListings++ > 0) return memory.listUnfinished(query)
            return Effect.andThen(Deferred.await(resumptionGoesOn), memory.listUnfinished(query))
          })
      }
      yield* Effect.gen(function* () {
        const engine = yield* WorkflowEngine.makeScoped(job, { recoveryInterval: "100 millis", shardCount })
        while (slowListings === 0) yield* Effect.sleep("10 millis")
        // Nothing is to happen meanwhile (a wait for an absence: on a slow machine it only
        // shortens the test). Before, recovery looked at every shard held for an interval, and
        // started the waiting execution as an orphan at its second look.
        yield* Effect.sleep("500 millis")
        expect(slowListings).toBe(1)
        expect(otherListings).toBeLessThanOrEqual(1)
        expect(Option.map(yield* engine.status("waiting"), (info) => info.status)).toEqual(
          Option.some("running")
        )
        yield* Deferred.succeed(resumptionGoesOn, undefined)
        let status = yield* engine.status("waiting")
        while (Option.isSome(status) && status.value.status === "running") {
          yield* Effect.sleep("20 millis")
          status = yield* engine.status("waiting")
        }
        expect(Option.map(status, (info) => info.status)).toEqual(Option.some("succeeded"))
        expect(lines.filter((line) => line.startsWith("recovery:"))).toEqual([])
      }).pipe(
        Effect.scoped,
        Effect.provideService(DurableExecutionJournal.DurableExecutionJournal, journal),
        Effect.provide(Logger.layer([logger]))
      )
    })
  )

  it.effect(
    "looks on the host's clock: a month skipped on a TestClock does not make it look once per interval",
    () =>
      Effect.gen(function* () {
        const memory = yield* MemoryJournal.make
        let looks = 0
        const journal: DurableExecutionJournal.DurableExecutionJournal["Service"] = {
          ...memory,
          listUnfinished: (query) =>
            Effect.andThen(
              Effect.sync(() => looks++),
              memory.listUnfinished(query)
            )
        }
        const job = Workflow.make(
          Job,
          (request) => request.id,
          (request) => Effect.succeed(request.id)
        )
        yield* Effect.gen(function* () {
          yield* WorkflowEngine.makeScoped(job, { recoveryInterval: "30 seconds", shardCount: 4 })
          // The shards' resumption at the start reads each of the 4 shards once.
          while (looks < 4) yield* Effect.yieldNow
          yield* TestClock.adjust("31 days")
          // 89,280 intervals of 30 s went by on the program's clock (a look reads the 4 shards): on
          // the host's, none.
          expect(looks).toBe(4)
        }).pipe(
          Effect.scoped,
          Effect.provideService(DurableExecutionJournal.DurableExecutionJournal, journal)
        )
      })
  )
})
