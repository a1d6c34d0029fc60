/**
 * The attempt-failed signal (`retry.yieldAfter`): after n failed attempts the execution yields with
 * the activity and its last error instead of retrying forever; `resume` continues the attempts.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Option, Schema } from "effect"
import { Activity, MemoryJournal, Workflow } from "../../src/index.ts"
import { awaitStatus, Calls, withEngine } from "./fixtures.ts"

class Job extends Workflow.TaggedRequest<Job>()("Job", {
  payload: { id: Schema.String },
  success: Schema.String,
  failure: Schema.Never
}) {}

class ApiDown extends Schema.TaggedError<ApiDown>()("ApiDown", { status: Schema.Number }) {}

describe("retry.yieldAfter", () => {
  it.live("yields after every 3 failed attempts with the error in the reason; resume goes on", () =>
    Effect.gen(function* () {
      const journal = yield* MemoryJournal.make
      const calls = new Calls()
      let apiUp = false
      const workflow = Workflow.make(
        Job,
        (r) => `job@${r.id}`,
        () =>
          calls
            .tracked(
              "fetch",
              Effect.suspend(() =>
                apiUp ? Effect.succeed("fetched") : Effect.fail(new ApiDown({ status: 503 }))
              )
            )
            .pipe(
              Activity.make("fetch", Schema.String, ApiDown, {
                retry: { yieldAfter: 3, maxAttempts: Number.POSITIVE_INFINITY, initialDelay: "1 millis" }
              }),
              Effect.orDie
            )
      )
      yield* withEngine(journal, workflow, (engine) =>
        Effect.gen(function* () {
          const first = yield* Effect.exit(engine.send(new Job({ id: "1" })))
          expect(Exit.isFailure(first)).toBe(true)
          const info = yield* awaitStatus(engine, "job@1", "suspended")
          const reason: any = Option.getOrThrow(info.suspendedBecause)
          expect(reason._tag).toBe("ExecutionYielded")
          expect(reason.message).toContain('activity "fetch" failed 3 attempts')
          expect(reason.message).toContain("ApiDown")
          expect(calls.attempts.get("fetch")).toEqual([1, 2, 3])
          // Still down: three more attempts, then yields again.
          yield* engine.resume("job@1")
          yield* awaitStatus(engine, "job@1", "suspended")
          expect(calls.attempts.get("fetch")).toEqual([1, 2, 3, 4, 5, 6])
          apiUp = true
          yield* engine.resume("job@1")
          expect(yield* engine.send(new Job({ id: "1" }))).toBe("fetched")
          expect(calls.attempts.get("fetch")).toEqual([1, 2, 3, 4, 5, 6, 7])
        })
      )
    })
  )
})
