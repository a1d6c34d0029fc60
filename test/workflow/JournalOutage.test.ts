/**
 * The journal goes down (every operation fails with a transient `JournalError`, as when the
 * database restarts). An outage is logged once with how many operations wait, and once when it
 * recovers; executions carry on. A shutdown while it stays down finishes after `shutdownTimeout`
 * and leaves the executions `running` for the next engine (I8: nothing wrong is recorded).
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Logger, Option, Schema } from "effect"
import {
  Activity,
  type DurableExecutionJournal,
  MemoryJournal,
  Workflow,
  WorkflowErrors
} from "../../src/index.ts"
import { Calls, withEngine } from "./fixtures.ts"

type Journal = DurableExecutionJournal.DurableExecutionJournal["Service"]

/** `inner`, failing every operation with a transient error while `down` is set. */
const switchable = (inner: Journal) => {
  const state = { down: false }
  const guard = <A, E>(operation: string, effect: Effect.Effect<A, E>) =>
    Effect.suspend(
      (): Effect.Effect<A, E | WorkflowErrors.JournalError> =>
        state.down
          ? Effect.fail(
              new WorkflowErrors.JournalError({
                operation,
                transient: true,
                detail: "connect ECONNREFUSED 127.0.0.1:5432 (the test's outage)"
              })
            )
          : effect
    )
  const journal: Journal = {
    start: (execution) => guard("start", inner.start(execution)),
    get: (id) => guard("get", inner.get(id)),
    steps: (id) => guard("steps", inner.steps(id)),
    stepsMany: (ids) => guard("stepsMany", inner.stepsMany!(ids)),
    write: (write) => guard("write", inner.write(write)),
    listRunning: guard("listRunning", inner.listRunning),
    listDue: (now, limit, shards) => guard("listDue", inner.listDue(now, limit, shards)),
    listUnfinished: (query) => guard("listUnfinished", inner.listUnfinished(query)),
    getMany: (ids) => guard("getMany", inner.getMany(ids)),
    takeInbox: (shards, limit) => guard("takeInbox", inner.takeInbox(shards, limit)),
    signal: (signal) => guard("signal", inner.signal(signal)),
    getSignal: (id, name) => guard("getSignal", inner.getSignal(id, name)),
    heartbeat: (heartbeat) => guard("heartbeat", inner.heartbeat(heartbeat)),
    list: (query) => guard("list", inner.list(query)),
    count: (query) => guard("count", inner.count(query)),
    attempts: (id) => guard("attempts", inner.attempts(id))
  }
  return { state, journal }
}

interface LogLine {
  readonly level: string
  readonly text: string
}

/** A logger that keeps every line (and prints nothing). */
const capture = () => {
  const lines: Array<LogLine> = []
  const logger = Logger.make((options) => {
    const message = options.message
    lines.push({
      level: options.logLevel,
      text: Array.isArray(message) ? message.map(String).join(" ") : String(message)
    })
  })
  return { lines, layer: Logger.layer([logger]) }
}

class Job extends Workflow.TaggedRequest<Job>()("Job", {
  payload: { id: Schema.String },
  success: Schema.String,
  failure: Schema.Never
}) {}

const EXECUTIONS = 5

describe("journal outage", () => {
  it.live(
    "one warning with the number of waiting operations, one recovered line; executions complete",
    () => {
      const logs = capture()
      return Effect.gen(function* () {
        const { state, journal } = switchable(yield* MemoryJournal.make)
        const calls = new Calls()
        const gate = yield* Deferred.make<void>()
        let waiting = 0
        const job = Workflow.make(
          Job,
          (request) => `job@${request.id}`,
          ({ id }) =>
            Effect.gen(function* () {
              yield* calls.activity("first", Schema.String, id)
              yield* Effect.andThen(
                Effect.sync(() => waiting++),
                Deferred.await(gate)
              ).pipe(Activity.make("wait", Schema.Void, Schema.Never))
              return yield* calls.activity("last", Schema.String, `done ${id}`)
            })
        )
        const ids = Array.from({ length: EXECUTIONS }, (_, i) => String(i))
        const results = yield* withEngine(journal, job, (engine) =>
          Effect.gen(function* () {
            for (const id of ids) yield* engine.sendDiscard(new Job({ id }))
            while (waiting < EXECUTIONS) yield* Effect.sleep("5 millis")
            // Every execution now writes its next step while the journal is down.
            state.down = true
            yield* Deferred.succeed(gate, undefined)
            yield* Effect.sleep("1 second")
            state.down = false
            return yield* Effect.forEach(ids, (id) => engine.send(new Job({ id })), {
              concurrency: "unbounded"
            })
          })
        )
        expect(results).toEqual(ids.map((id) => `done ${id}`))
        expect(calls.count("last")).toBe(EXECUTIONS)

        const outage = logs.lines.filter((line) => line.text.includes("the journal is unavailable"))
        expect(outage, JSON.stringify(logs.lines)).toHaveLength(1)
        expect(outage[0]?.level).toBe("Warn")
        const waitingCount = Number(/(\d+) operations? waiting/.exec(outage[0]?.text ?? "")?.[1])
        expect(waitingCount).toBeGreaterThanOrEqual(EXECUTIONS)
        expect(outage[0]?.text).toContain("ECONNREFUSED")
        const recovered = logs.lines.filter((line) => line.text.includes("the journal recovered"))
        expect(recovered, JSON.stringify(logs.lines)).toHaveLength(1)
        // Nothing else is logged above debug level for the outage: no line per execution per retry.
        const noisy = logs.lines.filter(
          (line) => line.level !== "Debug" && line !== outage[0] && line !== recovered[0]
        )
        expect(noisy, JSON.stringify(noisy)).toEqual([])
      }).pipe(Effect.provide(logs.layer))
    }
  )

  it.live(
    "a shutdown while the journal stays down ends after shutdownTimeout; the next engine resumes",
    () => {
      const logs = capture()
      return Effect.gen(function* () {
        const { state, journal } = switchable(yield* MemoryJournal.make)
        const calls = new Calls()
        let finish = false
        const job = Workflow.make(
          Job,
          (request) => `job@${request.id}`,
          ({ id }) =>
            Effect.gen(function* () {
              const first = yield* calls.activity("first", Schema.String, id)
              // The outcome of "first" is delivered but not yet written: shutdown must write it.
              yield* finish ? Effect.void : Effect.never
              return `done ${first}`
            })
        )
        const shutdown = withEngine(
          journal,
          job,
          (engine) =>
            Effect.gen(function* () {
              yield* engine.sendDiscard(new Job({ id: "1" }))
              while (calls.count("first") === 0) yield* Effect.sleep("5 millis")
              yield* Effect.sleep("20 millis")
              state.down = true
            }),
          { shutdownTimeout: "300 millis" }
        )
        // A generous bound: without the timeout, shutdown retries forever.
        expect(Option.isSome(yield* Effect.timeoutOption(shutdown, "8 seconds"))).toBe(true)
        expect(logs.lines.filter((line) => line.text.includes("shutdown: 1 execution(s)"))).toHaveLength(1)
        expect(
          logs.lines.filter((line) => line.level === "Error"),
          JSON.stringify(logs.lines)
        ).toEqual([])

        state.down = false
        const row = yield* journal.get("job@1")
        expect(Option.map(row, (r) => r.status)).toEqual(Option.some("running"))
        const [step] = yield* journal.steps("job@1")
        expect(step?.stepKey).toBe("first")
        expect(step?.outcome).toBeNull()

        finish = true
        const result = yield* withEngine(journal, job, (engine) => engine.send(new Job({ id: "1" })))
        expect(result).toBe("done 1")
      }).pipe(Effect.provide(logs.layer))
    }
  )
})
