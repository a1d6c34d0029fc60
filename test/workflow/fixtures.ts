/** Small workflows shared by the engine tests. */
import { Effect, Schema } from "effect"
import { Activity, DurableExecutionJournal, Workflow, WorkflowEngine } from "../../src/index.ts"

/** Counts how many times each activity body ran (attempts), by activity id. */
export class Calls {
  readonly counts = new Map<string, number>()
  readonly persistenceIds = new Map<string, Array<string>>()
  readonly attempts = new Map<string, Array<number>>()
  hit(id: string) {
    this.counts.set(id, (this.counts.get(id) ?? 0) + 1)
  }
  count(id: string) {
    return this.counts.get(id) ?? 0
  }
  /** An activity that records its call and returns `value`. */
  activity<S extends Activity.Schema<any>>(id: string, schema: S, value: S["Type"]) {
    return this.tracked(id, Effect.succeed(value)).pipe(Activity.make(id, schema, Schema.Never))
  }
  /** Wraps an activity body so that its calls, persistence ids and attempts are recorded. */
  tracked<A, E, R>(id: string, body: Effect.Effect<A, E, R>) {
    return Effect.gen({ self: this }, function* () {
      this.hit(id)
      const pid = yield* Activity.persistenceId
      const attempt = yield* Activity.attempt
      this.persistenceIds.set(id, [...(this.persistenceIds.get(id) ?? []), pid])
      this.attempts.set(id, [...(this.attempts.get(id) ?? []), attempt])
      return yield* body
    })
  }
}

export class OutOfStockError extends Schema.TaggedError<OutOfStockError>()("OutOfStockError", {
  sku: Schema.String
}) {}

/** A request with an id, answered with a string: the tests' plain job. */
export class Job extends Workflow.TaggedRequest<Job>()("Job", {
  payload: { id: Schema.String },
  success: Schema.String,
  failure: Schema.Never
}) {}

export class ThreeSteps extends Workflow.TaggedRequest<ThreeSteps>()("ThreeSteps", {
  payload: { id: Schema.String },
  success: Schema.Number,
  failure: OutOfStockError
}) {}

/** a → b → c, returns a + b + c. */
export const threeSteps = (calls: Calls) =>
  Workflow.make(
    ThreeSteps,
    (request) => `three@${request.id}`,
    () =>
      Effect.gen(function* () {
        const a = yield* calls.activity("a", Schema.Number, 1)
        const b = yield* calls.activity("b", Schema.Number, 2)
        const c = yield* calls.activity("c", Schema.Number, 3)
        return a + b + c
      })
  )

/**
 * Waits until `executionId` has a step of activity `activityId` in `journal` (an attempt started:
 * the execution got that far), for at most 10 s. What a test waits for before it stops an engine
 * mid-execution, instead of a fixed time that a loaded machine may not honour.
 */
export const untilStep = (
  journal: DurableExecutionJournal.DurableExecutionJournal["Service"],
  executionId: string,
  activityId: string
) =>
  Effect.gen(function* () {
    for (let i = 0; i < 1_000; i++) {
      const steps = yield* journal.steps(executionId)
      if (steps.some((step) => step.activityId === activityId)) return
      yield* Effect.sleep("10 millis")
    }
    return yield* Effect.die(new Error(`${executionId} did not reach activity "${activityId}" within 10 s`))
  })

/** Runs `f` with an engine for `workflows` on `journal`, then shuts the engine down gracefully. */
export const withEngine = <W extends Workflow.Any, A, E>(
  journal: DurableExecutionJournal.DurableExecutionJournal["Service"],
  workflows: Workflow.WorkflowUnion<W> | W,
  f: (engine: WorkflowEngine.WorkflowEngine<W>) => Effect.Effect<A, E>,
  options?: WorkflowEngine.EngineOptions
) =>
  Effect.scoped(Effect.flatMap(WorkflowEngine.makeScoped(workflows, options), f)).pipe(
    Effect.provideService(DurableExecutionJournal.DurableExecutionJournal, journal)
  )

/** Fast retries for tests. */
export const fastRetry: WorkflowEngine.EngineOptions = {
  retry: { initialDelay: "1 millis", maxDelay: "5 millis", maxAttempts: 5 }
}

/** Polls `status` until the execution has `expected` status. */
export const awaitStatus = <W extends Workflow.Any>(
  engine: WorkflowEngine.WorkflowEngine<W>,
  executionId: string,
  expected: DurableExecutionJournal.ExecutionStatus
) =>
  Effect.gen(function* () {
    for (let i = 0; i < 2000; i++) {
      const info = yield* engine.status(executionId)
      if (info._tag === "Some" && info.value.status === expected) return info.value
      yield* Effect.sleep("5 millis")
    }
    return yield* Effect.die(new Error(`execution ${executionId} never reached status ${expected}`))
  })

/**
 * Polls until the execution is `sleeping` and the engine holds no run (a park writes the status,
 * then its run ends: the two are not one step). Dies if a parked execution keeps a fiber.
 */
export const awaitParked = <W extends Workflow.Any>(
  engine: WorkflowEngine.WorkflowEngine<W>,
  executionId: string
) =>
  Effect.gen(function* () {
    for (let i = 0; i < 2000; i++) {
      const info = yield* engine.status(executionId)
      if (info._tag === "Some" && info.value.status === "sleeping" && engine.runningCount() === 0) {
        return info.value
      }
      yield* Effect.sleep("5 millis")
    }
    return yield* Effect.die(new Error(`execution ${executionId} never parked without a fiber`))
  })
