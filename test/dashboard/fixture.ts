/**
 * The store the dashboard tests look at: a real SQLite file, written by a real engine running one
 * `Job` workflow whose `kind` decides where its execution ends up (succeeded after a retried
 * attempt, failed, suspended by an activity, sleeping on a timer, waiting for a signal). One
 * execution's id and payload contain `<script>` markup, to show it is rendered as text.
 */
import { join } from "node:path"
import { Effect, Option, Schema } from "effect"
import { Activity, Admin, Signal, SqliteJournal, Workflow, WorkflowEngine } from "../../src/index.ts"

export class JobFailed extends Schema.TaggedError<JobFailed>()("JobFailed", { reason: Schema.String }) {}

export class Busy extends Schema.TaggedError<Busy>()("Busy", {}) {}

export class Job extends Workflow.TaggedRequest<Job>()("Job", {
  payload: {
    id: Schema.String,
    kind: Schema.Literals(["ok", "fail", "suspend", "sleep", "wait"]),
    note: Schema.String
  },
  success: Schema.String,
  failure: JobFailed
}) {}

/** The signal `wait` jobs wait for. */
export const approval = Signal.make("approval", Schema.String)

/** Fails its first attempt (retried), then succeeds. */
const flaky = Activity.attempt.pipe(
  Effect.flatMap((attempt) =>
    attempt < 2
      ? Effect.sleep("20 millis").pipe(Effect.andThen(Effect.fail(new Busy())))
      : Effect.succeed(attempt)
  ),
  Activity.make("flaky", Schema.Number, Busy, { retry: { initialDelay: "30 millis" } })
)

const prepare = Effect.sleep("15 millis").pipe(
  Effect.as("prepared"),
  Activity.make("prepare", Schema.String, Schema.Never)
)

const charge = Effect.fail(new JobFailed({ reason: "card declined" })).pipe(
  Activity.make("charge", Schema.Void, JobFailed, { retry: { maxAttempts: 1 } })
)

/** Suspends the execution in its first attempt; after a resume, the second attempt approves. */
const review = Activity.attempt.pipe(
  Effect.flatMap((attempt) =>
    attempt < 2 ? Workflow.yieldExecutionWith("needs an operator's review") : Effect.succeed("approved")
  ),
  Activity.make("review", Schema.String, Schema.Never)
)

export const job = Workflow.make(
  Job,
  (request) => `job-${request.id}`,
  ({ id, kind }) =>
    Effect.gen(function* () {
      yield* prepare
      switch (kind) {
        case "ok": {
          const attempts = yield* Effect.orDie(flaky)
          return `done ${id} after ${attempts} attempts`
        }
        case "fail":
          yield* charge
          return "unreachable"
        case "suspend":
          return yield* review
        case "sleep":
          yield* Workflow.sleep("1 day")
          return "woke"
        case "wait":
          return `approved by ${yield* Signal.receive(approval)}`
      }
    })
)

/** The id (and note) of the execution whose text is markup. */
export const SCRIPT_ID = `<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">`

/** The executions of the store and the status each reaches. */
export const JOBS = [
  { id: "ok-1", kind: "ok", status: "succeeded" },
  { id: "fail-1", kind: "fail", status: "failed" },
  { id: "suspend-1", kind: "suspend", status: "suspended" },
  { id: "sleep-1", kind: "sleep", status: "sleeping" },
  { id: "wait-1", kind: "wait", status: "sleeping" },
  { id: SCRIPT_ID, kind: "ok", status: "succeeded" }
] as const

/** The journal layer of a store file. */
export const journalLayer = (file: string) => SqliteJournal.layer({ filename: file })

/** Runs an engine on the store for the life of `f` (it resumes what is `running`). */
export const withEngine = <A, E>(
  file: string,
  f: (engine: WorkflowEngine.WorkflowEngine<typeof job>) => Effect.Effect<A, E>
) => Effect.scoped(Effect.flatMap(WorkflowEngine.makeScoped(job), f)).pipe(Effect.provide(journalLayer(file)))

/** Polls the engine until `executionId` has `status`. */
export const awaitStatus = (
  engine: WorkflowEngine.WorkflowEngine<typeof job>,
  executionId: string,
  status: string
) =>
  Effect.gen(function* () {
    for (let i = 0; i < 1000; i++) {
      const info = yield* engine.status(executionId)
      if (Option.isSome(info) && info.value.status === status) return
      yield* Effect.sleep("10 millis")
    }
    return yield* Effect.die(new Error(`${executionId} never reached ${status}`))
  })

/** Creates the store in `folder` with every execution of `JOBS` in its status; returns its path. */
export const makeStore = (folder: string): Promise<string> => {
  const file = join(folder, "journal.db")
  return Effect.runPromise(
    withEngine(file, (engine) =>
      Effect.gen(function* () {
        for (const { id, kind, status } of JOBS) {
          const executionId = yield* engine.sendDiscard(new Job({ id, kind, note: `note of ${id}` }))
          yield* awaitStatus(engine, executionId, status)
        }
      })
    )
  ).then(() => file)
}

/** The Admin layer on the store file. */
export const adminLayer = (file: string) => Admin.layerFile(file)
