/**
 * A pod for the multi-process ownership tests: one engine on the embedded file or on PostgreSQL,
 * running `Order` executions (`order.ts`) whose two activities record every attempt in an external ledger (a
 * file shared by every pod, one JSON line per event, appended with O_APPEND):
 * `{"k":"start"|"end"|"stop", "e": executionId, "s": activity, "a": attempt, "p": podId,
 *   "sh": shard, "ep": epoch, "t": epoch ms}`.
 *
 * It prints JSON lines on stdout: `{"ready": podId}` once the engine runs, `{"submitted": n}` as it
 * submits (option `submit`), `{"stopped": podId}` after a graceful shutdown (SIGTERM), and its
 * logs as JSON (`{"level": "WARN", "message": [...]}`), so a test can wait for a refused write.
 *
 * On stdin it takes commands, one JSON line each: `{"freezeInOwnershipLock": operation}` makes
 * the pod stop itself (SIGSTOP) inside its next ownership transaction of that `ShardStore`
 * operation (e.g. `acquireManager`), right after the transaction took the ownership lock; it prints
 * `{"freezing": operation}` first. The test resumes it with SIGCONT. `{"freezeInAttempt": true}` makes
 * the next activity attempt to start stop the process (SIGSTOP) at the instant its sleep is due,
 * just before the sleep's timer fires; it prints `{"freezing": "attempt", "attempt": key}` first
 * (`key`: `execution/activity#attempt`). `{"burst": {prefix, count}}`
 * makes it `send` executions `${prefix}-${i}` for i in [0, count) all at once (a flood of callers),
 * printing `{"burstDone": count}` once every send returned. `{"stopRenewing": true}` makes every
 * later lease renewal of the pod hang (as over a connection that stopped answering) while the pod
 * goes on running, printing `{"renewalsStopped": podId}`. `{"stopSubmitting": true}` ends the
 * submissions (option `submit`) early, once the test saw what it needed under load. Every run of
 * submissions ends with `{"submitted": n, "submitDone": true}`, n the number sent. When stdin closes (the test or runner
 * that started the pod is gone), the pod exits.
 *
 * Option `clockOffsetMillis` skews the pod's clock: its whole program (store layers included) runs
 * on an effect `Clock` whose wall-clock readings are that many ms ahead (behind when negative),
 * sleeps unchanged (`test/support/OffsetClock.ts`). The ledger's times are the host's.
 *
 * Usage: node --conditions=@effect-cluster/source pod.ts '<json options>'
 */
import { writeSync } from "node:fs"
import { createInterface } from "node:readline"
import { Duration, Effect, Fiber, Layer, Logger, Schema } from "effect"
import { type ActivityContext, ShardStore, SqliteJournal, Workflow, WorkflowEngine } from "effect-cluster"
import { PostgresJournal } from "effect-cluster/postgres"
import { OwnershipLocked } from "../../src/storage/sql/internal/OwnershipLocked.ts"
import * as OffsetClock from "../support/OffsetClock.ts"
import { Order, orderWorkflow } from "./order.ts"

const Options = Schema.Struct({
  /** A SQLite file path, or a postgres:// URL. */
  store: Schema.String,
  tablePrefix: Schema.optional(Schema.String),
  ledger: Schema.String,
  podId: Schema.optional(Schema.String),
  leaseTtlMillis: Schema.optional(Schema.Number),
  shardCount: Schema.optional(Schema.Number),
  /** The pod's clock is this many ms ahead (behind when negative) of the host's. */
  clockOffsetMillis: Schema.optional(Schema.Number),
  /** How long each activity attempt takes. */
  activityMillis: Schema.Number,
  /** Every n-th execution (by the number at the end of its id) takes `slowMillis` instead. */
  slowEvery: Schema.optional(Schema.Number),
  slowMillis: Schema.optional(Schema.Number),
  /** Submit executions `${prefix}-${i}` for i in [from, from + count), `perSecond` of them. */
  submit: Schema.optional(
    Schema.Struct({
      prefix: Schema.String,
      from: Schema.Number,
      count: Schema.Number,
      perSecond: Schema.Number
    })
  )
})

const options = Schema.decodeUnknownSync(Schema.fromJsonString(Options))(process.argv[2])

let podId = options.podId ?? "?"

/** How long the activities of `executionId` take. */
const durationOf = (executionId: string): number => {
  const n = Number(executionId.split("-").pop())
  return options.slowEvery !== undefined && Number.isInteger(n) && n % options.slowEvery === 0
    ? (options.slowMillis ?? options.activityMillis)
    : options.activityMillis
}

/** Whether the next attempt to start freezes this process when its sleep is due (the test asked). */
let freezeInAttempt = false

/**
 * The attempt's sleep: `Effect.sleep`, or for the attempt the test asked to freeze in, what
 * `Clock.sleep` does (a `setTimeout` that resumes the fiber) with the freeze armed just before, in
 * the same synchronous stretch: both timers are due at once and Node runs them in the order they
 * were armed, so the process stops right before the sleep's timer fires and, once resumed, runs
 * that timer next, before any other timer of the pod (its lease watchdog among them).
 */
const sleep = (millis: number, context: ActivityContext.ActivityContext["Service"]): Effect.Effect<void> => {
  if (!freezeInAttempt) return Effect.sleep(Duration.millis(millis))
  freezeInAttempt = false
  const key = `${context.persistenceId.split("/")[0]}/${context.activityId}#${context.attempt}`
  return Effect.callback<void>((resume) => {
    setTimeout(() => {
      writeSync(1, `${JSON.stringify({ freezing: "attempt", attempt: key })}\n`)
      process.kill(process.pid, "SIGSTOP")
    }, millis)
    const timer = setTimeout(() => resume(Effect.void), millis)
    return Effect.sync(() => clearTimeout(timer))
  })
}

const order = orderWorkflow({ ledger: options.ledger, podId: () => podId, durationOf, sleep })

/** The operation whose next ownership transaction freezes this pod, once the test asks. */
let freezeIn: string | undefined
/** Bursts asked for, run by `main` once the engine is up. */
const bursts: Array<{ readonly prefix: string; readonly count: number }> = []
let burstArrived: (() => void) | undefined
/** False once the test asked the pod to stop renewing its lease. */
let renewing = true
/** True once the test asked the pod to end its submissions early. */
let stopSubmitting = false
const Command = Schema.fromJsonString(
  Schema.Union([
    Schema.Struct({ freezeInOwnershipLock: Schema.String }),
    Schema.Struct({ freezeInAttempt: Schema.Literal(true) }),
    Schema.Struct({ burst: Schema.Struct({ prefix: Schema.String, count: Schema.Number }) }),
    Schema.Struct({ stopRenewing: Schema.Literal(true) }),
    Schema.Struct({ stopSubmitting: Schema.Literal(true) })
  ])
)
createInterface({ input: process.stdin })
  .on("line", (line) => {
    const command = Schema.decodeUnknownSync(Command)(line)
    if ("freezeInOwnershipLock" in command) freezeIn = command.freezeInOwnershipLock
    else if ("freezeInAttempt" in command) freezeInAttempt = true
    else if ("stopSubmitting" in command) stopSubmitting = true
    else if ("stopRenewing" in command) {
      renewing = false
      console.log(JSON.stringify({ renewalsStopped: podId }))
    } else {
      bursts.push(command.burst)
      burstArrived?.()
    }
  })
  // The process that started this pod is gone (even SIGKILLed): nobody will stop it, so it stops.
  .on("close", () => process.exit(0))

/** The store's renewals hang once the test asked (the pod's own clock must then stop its runs). */
const renewalsUntilStopped = (store: ShardStore.ShardStore["Service"]): ShardStore.ShardStore["Service"] => ({
  ...store,
  renew: (id, ttlMillis) => Effect.suspend(() => (renewing ? store.renew(id, ttlMillis) : Effect.never))
})

/** Stops this process while it holds the ownership lock (once), when the test asked for it. */
const freezeWhenAsked = Layer.succeed(OwnershipLocked)((operation) =>
  Effect.sync(() => {
    if (operation !== freezeIn) return
    freezeIn = undefined
    // Synchronously: the line is out before the process stops.
    writeSync(1, `${JSON.stringify({ freezing: operation })}\n`)
    process.kill(process.pid, "SIGSTOP")
  })
)

const journal = (
  options.store.startsWith("postgres")
    ? PostgresJournal.layer({ url: options.store, tablePrefix: options.tablePrefix })
    : SqliteJournal.layer({ filename: options.store, tablePrefix: options.tablePrefix })
).pipe(Layer.provide(freezeWhenAsked))

const main = Effect.gen(function* () {
  const engine = yield* WorkflowEngine.makeScoped(Workflow.union(order), {
    podId: options.podId,
    shardCount: options.shardCount,
    leaseTtl: options.leaseTtlMillis === undefined ? undefined : Duration.millis(options.leaseTtlMillis)
  }).pipe(Effect.updateService(ShardStore.ShardStore, renewalsUntilStopped))
  podId = engine.podId() ?? podId
  console.log(JSON.stringify({ ready: podId }))
  const submit = options.submit
  if (submit !== undefined) {
    const gap = Duration.millis(1000 / submit.perSecond)
    let sent = 0
    for (let i = submit.from; i < submit.from + submit.count && !stopSubmitting; i++) {
      yield* engine.sendDiscard(new Order({ id: `${submit.prefix}-${i}` }))
      sent++
      if (sent % 50 === 0) console.log(JSON.stringify({ submitted: sent }))
      yield* Effect.sleep(gap)
    }
    console.log(JSON.stringify({ submitted: sent, submitDone: true }))
  }
  while (true) {
    const burst = bursts.shift()
    if (burst === undefined) {
      yield* Effect.callback<void>((resume) => {
        burstArrived = () => resume(Effect.void)
      })
      continue
    }
    yield* Effect.forEach(
      Array.from({ length: burst.count }, (_, i) => i),
      (i) => engine.send(new Order({ id: `${burst.prefix}-${i}` })),
      { concurrency: "unbounded", discard: true }
    )
    console.log(JSON.stringify({ burstDone: burst.count }))
  }
}).pipe(
  Effect.scoped,
  Effect.provide(Layer.mergeAll(Layer.fresh(journal), Logger.layer([Logger.consoleJson]))),
  // Outermost: the store layers, the engine and every fiber they fork read the skewed clock.
  Effect.provide(OffsetClock.layer(options.clockOffsetMillis ?? 0))
)

const fiber = Effect.runFork(main)
process.once("SIGTERM", () => Effect.runFork(Fiber.interrupt(fiber)))
fiber.addObserver((exit) => {
  if (exit._tag === "Failure" && !exit.cause.reasons.every((reason) => reason._tag === "Interrupt")) {
    console.error(String(exit.cause))
    process.exit(1)
  }
  console.log(JSON.stringify({ stopped: podId }))
  process.exit(0)
})
