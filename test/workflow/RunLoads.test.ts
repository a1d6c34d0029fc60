/**
 * Runs that load their journals at the same time (`internal/RunLoads.ts`): the executions an engine
 * resumes share the reads of their steps and rows (`stepsMany`, `getMany`), each replays its own
 * steps, and an execution the batch cannot settle (its steps do not read, its row is left out) is
 * loaded alone without holding the others back.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Option, Schema } from "effect"
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

type Journal = DurableExecutionJournal.DurableExecutionJournal["Service"]

/** `effect`, noting `item` in `list` each time it runs. */
const noting = <T, A, E>(list: Array<T>, item: T, effect: Effect.Effect<A, E>) =>
  Effect.suspend(() => {
    list.push(item)
    return effect
  })

/** `inner` with its reads of steps counted. */
const counted = (inner: Journal) => {
  const calls = { steps: [] as Array<string>, stepsMany: [] as Array<number> }
  const journal: Journal = {
    ...inner,
    steps: (id) => noting(calls.steps, id, inner.steps(id)),
    stepsMany: (ids) => noting(calls.stepsMany, ids.length, inner.stepsMany!(ids))
  }
  return { calls, journal }
}

/** Polls `done` every 10 ms until it holds. */
const until = <E>(done: Effect.Effect<boolean, E>) =>
  Effect.gen(function* () {
    while (!(yield* done)) yield* Effect.sleep("10 millis")
  })

/** `running` executions of `Job`, as a crash leaves them, with no step recorded. */
const storeRunning = (journal: Journal, ids: ReadonlyArray<string>) =>
  Effect.forEach(ids, (id) =>
    journal.start({
      executionId: id,
      workflow: "Job",
      request: JSON.stringify({ _tag: "Job", id }),
      shard: ShardId.shardOf(id, ShardId.DEFAULT_SHARD_COUNT),
      now: Date.now()
    })
  )

describe("runs loading together", () => {
  it.live("resumed executions share the reads of their journals, and each replays its own steps", () =>
    Effect.gen(function* () {
      const count = 300
      const ids = Array.from({ length: count }, (_, n) => `job-${n}`)
      const memory = yield* MemoryJournal.make
      const firstRuns = new Map<string, number>()
      let open = false
      // `first` returns something of its execution's own, so a step replayed into the wrong
      // execution shows in the result; `second` waits until the test opens it.
      const job = Workflow.make(
        Job,
        (request) => request.id,
        (request) =>
          Effect.gen(function* () {
            const first = yield* Effect.sync(() => {
              firstRuns.set(request.id, (firstRuns.get(request.id) ?? 0) + 1)
              return `${request.id}:first`
            }).pipe(Activity.make("first", Schema.String, Schema.Never))
            return yield* Effect.gen(function* () {
              while (!open) yield* Effect.sleep("5 millis")
              return `${first}:second`
            }).pipe(Activity.make("second", Schema.String, Schema.Never))
          })
      )
      // The first engine records `first` of every execution, then stops (they stay running).
      yield* Effect.gen(function* () {
        const engine = yield* WorkflowEngine.makeScoped(job)
        yield* Effect.forEach(ids, (id) => engine.sendDiscard(new Job({ id })), { discard: true })
        yield* until(
          Effect.map(
            memory.stepsMany!(ids),
            (steps) => steps.filter((s) => s.outcome !== null).length === count
          )
        )
      }).pipe(Effect.scoped, Effect.provideService(DurableExecutionJournal.DurableExecutionJournal, memory))
      expect([...firstRuns.values()].every((n) => n === 1)).toBe(true)

      open = true
      const { calls, journal } = counted(memory)
      const results = yield* Effect.gen(function* () {
        const engine = yield* WorkflowEngine.makeScoped(job)
        return yield* Effect.forEach(ids, (id) => engine.send(new Job({ id })), { concurrency: "unbounded" })
      }).pipe(Effect.scoped, Effect.provideService(DurableExecutionJournal.DurableExecutionJournal, journal))

      expect(results).toEqual(ids.map((id) => `${id}:first:second`))
      // Replayed, not run again.
      expect(firstRuns.size).toBe(count)
      expect([...firstRuns.values()].every((n) => n === 1)).toBe(true)
      // Loaded in batches: no execution read its steps alone, and far fewer reads than runs.
      expect(calls.steps).toEqual([])
      expect(calls.stepsMany.reduce((a, b) => a + b, 0)).toBe(count)
      expect(calls.stepsMany.length).toBeLessThanOrEqual(count / 16)
    })
  )

  const simple = Workflow.make(
    Job,
    (request) => request.id,
    (request) => Effect.succeed(`${request.id}!`).pipe(Activity.make("work", Schema.String, Schema.Never))
  )
  const good = Array.from({ length: 40 }, (_, n) => `good-${n}`)
  const broken = (operation: string) =>
    new WorkflowErrors.JournalError({ operation, transient: false, detail: "a step row does not decode" })

  /** Resumes `good` and `odd` on `journal`; returns each one's status once none is running. */
  const resumeAll = (memory: Journal, journal: Journal, odd: ReadonlyArray<string>) =>
    Effect.gen(function* () {
      const all = [...good, ...odd]
      yield* storeRunning(memory, all)
      return yield* Effect.gen(function* () {
        const engine = yield* WorkflowEngine.makeScoped(simple)
        const statusOf = (id: string) =>
          Effect.map(engine.status(id), Option.match({ onNone: () => "none", onSome: (info) => info.status }))
        const settled = yield* until(
          Effect.map(Effect.forEach(all, statusOf), (statuses) => !statuses.includes("running"))
        ).pipe(Effect.timeoutOption("20 seconds"))
        expect(Option.isSome(settled), "every execution settled").toBe(true)
        const statuses = new Map<string, string>()
        for (const id of all) statuses.set(id, yield* statusOf(id))
        return statuses
      }).pipe(Effect.scoped, Effect.provideService(DurableExecutionJournal.DurableExecutionJournal, journal))
    })

  it.live("an execution whose steps do not read is suspended alone; the others complete", () =>
    Effect.gen(function* () {
      const memory = yield* MemoryJournal.make
      const { calls, journal: countedJournal } = counted(memory)
      // A batch holding `unreadable` fails, as a step row that does not decode fails it.
      const journal: Journal = {
        ...countedJournal,
        stepsMany: (ids) =>
          ids.includes("unreadable") ? Effect.fail(broken("stepsMany")) : countedJournal.stepsMany!(ids),
        steps: (id) =>
          id === "unreadable"
            ? noting(calls.steps, id, Effect.fail(broken("steps")))
            : countedJournal.steps(id)
      }
      const statuses = yield* resumeAll(memory, journal, ["unreadable"])
      for (const id of good) expect(statuses.get(id)).toBe("succeeded")
      expect(statuses.get("unreadable")).toBe("suspended")
      // It was read alone after its batch failed.
      expect(calls.steps).toContain("unreadable")
    })
  )

  it.live("an execution whose row the batch left out is loaded alone and completes", () =>
    Effect.gen(function* () {
      const memory = yield* MemoryJournal.make
      const { calls, journal: countedJournal } = counted(memory)
      // `getMany` leaves out a row that does not decode; here one that does, to see it read alone.
      const journal: Journal = {
        ...countedJournal,
        getMany: (ids) =>
          Effect.map(memory.getMany(ids), (rows) => rows.filter((row) => row.executionId !== "left-out"))
      }
      const statuses = yield* resumeAll(memory, journal, ["left-out"])
      for (const id of [...good, "left-out"]) expect(statuses.get(id)).toBe("succeeded")
      expect(calls.steps).toEqual(["left-out"])
    })
  )

  for (const [name, stepsMany] of [
    ["a journal without stepsMany", undefined],
    ["a batch read that dies", () => Effect.die(new Error("the batch read died"))]
  ] as const) {
    it.live(`${name}: each run reads its own journal, all of them at once`, () =>
      Effect.gen(function* () {
        const memory = yield* MemoryJournal.make
        // No read of steps answers until ten wait at once: loads one after another never would.
        let waiting = 0
        const opened = Deferred.makeUnsafe<void>()
        const journal: Journal = {
          ...memory,
          stepsMany,
          steps: (id) =>
            Effect.suspend(() => {
              if (++waiting >= 10) Deferred.doneUnsafe(opened, Exit.void)
              return Effect.andThen(Deferred.await(opened), memory.steps(id))
            })
        }
        const statuses = yield* resumeAll(memory, journal, [])
        for (const id of good) expect(statuses.get(id)).toBe("succeeded")
        expect(waiting).toBe(good.length)
      })
    )
  }
})
