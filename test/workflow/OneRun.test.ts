/**
 * One run per execution, however the scheduler interleaves its callers: a `send` and the shard's
 * resumption both ask for the run of the same unfinished execution at the same moment, with every
 * fiber yielding after each operation (`MaxOpsBeforeYield` 4: a hostile interleaving, which
 * a busy pod's scheduler approaches when it cuts turns short). Each activity body runs once.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Scheduler, Schema } from "effect"
import {
  Activity,
  DurableExecutionJournal,
  MemoryJournal,
  ShardId,
  Workflow,
  WorkflowEngine
} from "../../src/index.ts"
import { Calls } from "./fixtures.ts"

class Job extends Workflow.TaggedRequest<Job>()("Job", {
  payload: { id: Schema.Number },
  success: Schema.Number,
  failure: Schema.Never
}) {}

const COUNT = 200

describe("one run per execution", () => {
  it.live("a send and the resumption of the same executions at once: every activity runs once", () =>
    Effect.gen(function* () {
      const calls = new Calls()
      const job = Workflow.make(
        Job,
        (request) => `job-${request.id}`,
        (request) =>
          Effect.succeed(request.id).pipe(
            (body) => calls.tracked(`work-${request.id}`, body),
            Activity.make("work", Schema.Number, Schema.Never)
          )
      )
      const journal = yield* MemoryJournal.make
      // Unfinished executions, as a crash right after their start leaves them.
      for (let id = 0; id < COUNT; id++) {
        yield* journal.start({
          executionId: `job-${id}`,
          workflow: "Job",
          request: JSON.stringify({ _tag: "Job", id }),
          shard: ShardId.shardOf(`job-${id}`, ShardId.DEFAULT_SHARD_COUNT),
          now: Date.now()
        })
      }
      // The engine resumes them in the background while the callers send to each of them.
      const results = yield* Effect.scoped(
        Effect.gen(function* () {
          const engine = yield* WorkflowEngine.makeScoped(job)
          return yield* Effect.forEach(
            Array.from({ length: COUNT }, (_, id) => id),
            (id) => engine.send(new Job({ id })),
            { concurrency: "unbounded" }
          )
        })
      ).pipe(
        Effect.provideService(DurableExecutionJournal.DurableExecutionJournal, journal),
        Effect.provideService(Scheduler.MaxOpsBeforeYield, 4)
      )
      expect(results).toEqual(Array.from({ length: COUNT }, (_, id) => id))
      const twice = [...calls.counts].filter(([, n]) => n > 1)
      expect(twice).toEqual([])
      expect(calls.counts.size).toBe(COUNT)
    })
  )
})
