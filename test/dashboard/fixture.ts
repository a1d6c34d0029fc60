/**
 * The store the dashboard tests look at: a real SQLite file, written by a real engine running one
 * `Job` workflow whose `kind` decides where its execution ends up (succeeded after a retried
 * attempt, failed, suspended by an activity, sleeping on a timer, waiting for a signal), on a pod
 * (`Membership`, `Sharding`) with an `Account` entity and a `Mailbox` that never gets through its
 * messages. One execution's id and payload contain
 * `<script>` markup, to show it is rendered as text.
 */
import { join } from "node:path"
import { Effect, Exit, Layer, Option, Ref, Schema, Scope } from "effect"
import {
  Activity,
  Admin,
  Membership,
  MessageState,
  RecipientBehaviour,
  RecipientType,
  Sharding,
  Signal,
  SqliteJournal,
  Workflow,
  WorkflowEngine
} from "../../src/index.ts"

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

/** Reports its progress once (the journal keeps the step's last heartbeat). */
const prepare = Activity.heartbeat({ checked: 3, of: 3 }).pipe(
  Effect.andThen(Effect.sleep("15 millis")),
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

export class Deposit extends Schema.TaggedClass<Deposit>()("Deposit", {
  messageId: Schema.String,
  amount: Schema.Number
}) {}

/** An account: the sum of its deposits; a negative deposit is a defect, so it is dead-lettered. */
export const Account = RecipientType.makeEntityType("Account", Deposit, (message) => message.messageId, {
  state: Schema.Number
})

const accountBehaviour = RecipientBehaviour.fromFunctionEffectStateful(
  () => Effect.succeed(0),
  (_entityId, deposit: Deposit, balance: Ref.Ref<number>) =>
    deposit.amount < 0
      ? Effect.die(new Error(`negative deposit ${deposit.amount}`))
      : Effect.as(
          Ref.update(balance, (n) => n + deposit.amount),
          MessageState.Processed(Option.none())
        )
)

/** An entity whose handler never finishes: its messages stay pending. */
export const Mailbox = RecipientType.makeEntityType("Mailbox", Deposit, (message) => message.messageId, {
  state: Schema.Number
})

/** The pod of the store: its id and shard count. */
export const POD_ID = "pod-a"
export const SHARDS = 4

/** A pod on the store file: membership (shards, lease), entities (Account) and the job engine. */
const podLayer = (file: string) =>
  Sharding.layer().pipe(
    Layer.provideMerge(Membership.layer({ podId: POD_ID, shardCount: SHARDS, leaseTtl: "5 seconds" })),
    Layer.provideMerge(Layer.fresh(SqliteJournal.layer({ filename: file })))
  )

/** A running pod with the job engine, until `stop`. */
export interface Pod {
  readonly engine: WorkflowEngine.WorkflowEngine<typeof job>
  readonly run: <A, E>(effect: Effect.Effect<A, E, Sharding.Sharding>) => Promise<A>
  readonly stop: () => Promise<void>
}

/** Starts a pod on the store (its engine resumes what is `running`; Account is registered). */
export const startPod = async (file: string): Promise<Pod> => {
  const scope = Effect.runSync(Scope.make())
  const context = await Effect.runPromise(Layer.buildWithScope(podLayer(file), scope))
  const engine = await Effect.runPromise(
    Effect.gen(function* () {
      yield* Sharding.registerEntity(Account)(accountBehaviour)
      yield* Sharding.registerEntity(Mailbox)(
        RecipientBehaviour.fromFunctionEffectStateful(
          () => Effect.succeed(0),
          () => Effect.never
        )
      )
      return yield* WorkflowEngine.makeScoped(job)
    }).pipe(Scope.provide(scope), Effect.provide(context))
  )
  return {
    engine,
    run: (effect) => Effect.runPromise(Effect.provide(effect, context)),
    stop: () => Effect.runPromise(Scope.close(scope, Exit.void))
  }
}

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

/** The Admin layer on the store file. */
export const adminLayer = (file: string) => Admin.layerFile(file)

/**
 * Creates the store in `folder`: every execution of `JOBS` in its status, an account with state
 * (two deposits) and a dead letter (a negative deposit), and two messages pending for `Mailbox`.
 * Returns its path and the pod, still running (stop it when done).
 */
export const makeStore = async (folder: string): Promise<{ readonly file: string; readonly pod: Pod }> => {
  const file = join(folder, "journal.db")
  const pod = await startPod(file)
  try {
    await Effect.runPromise(
      Effect.gen(function* () {
        for (const { id, kind, status } of JOBS) {
          const executionId = yield* pod.engine.sendDiscard(new Job({ id, kind, note: `note of ${id}` }))
          yield* awaitStatus(pod.engine, executionId, status)
        }
      })
    )
    await pod.run(
      Effect.gen(function* () {
        const accounts = yield* Sharding.messenger(Account)
        yield* accounts.sendDiscard("alice")(new Deposit({ messageId: "d-1", amount: 10 }))
        yield* accounts.sendDiscard("alice")(new Deposit({ messageId: "d-2", amount: 5 }))
        yield* accounts.sendDiscard("alice")(new Deposit({ messageId: "d-bad", amount: -1 }))
        const mailbox = yield* Sharding.messenger(Mailbox)
        yield* mailbox.sendDiscard("inbox-1")(new Deposit({ messageId: "m-1", amount: 1 }))
        yield* mailbox.sendDiscard("inbox-1")(new Deposit({ messageId: `m-${SCRIPT_ID}`, amount: 2 }))
      })
    )
    // Until the account has handled its deposits (two applied, one dead-lettered).
    await Effect.runPromise(
      Effect.gen(function* () {
        const admin = yield* Admin.Admin
        for (let i = 0; i < 1000; i++) {
          const page = yield* admin.deadLetters({})
          const entity = yield* admin.entity("Account", "alice")
          if (page.deadLetters.length === 1 && entity.state === 15) return
          yield* Effect.sleep("10 millis")
        }
        return yield* Effect.die(new Error("the account never handled its deposits"))
      }).pipe(Effect.provide(adminLayer(file)))
    )
    return { file, pod }
  } catch (error) {
    await pod.stop()
    throw error
  }
}
