/**
 * A child process for the crash tests: runs a 3-activity workflow on the embedded store (a file
 * path) or on PostgreSQL (a `postgres://` URL). Each
 * activity appends `activity persistenceId attempt` to a side-effect log before it returns, so the
 * test can see which side effects happened. In mode `block-in-b`, activity b blocks on its first
 * attempt before its side effect; in `block-after-b`, it blocks after its side effect (before the
 * outcome is recorded). The test SIGKILLs the process when it prints `BLOCKED`.
 *
 * Modes `compensate` and `block-in-refund` run the talk's compensation instead: charge, then ship
 * fails with a final OutOfStockError, then refund (which blocks on its first attempt in
 * `block-in-refund`, so the test can kill the process between the charge and the refund).
 *
 * Usage: node worker.ts <journalFile | postgresUrl> <sideEffectLog> <mode>
 */
import { appendFileSync } from "node:fs"
import { Effect, Schema } from "effect"
import { Activity, Saga, Signal, SqliteJournal, Workflow, WorkflowEngine } from "effect-cluster"
import { PostgresJournal } from "effect-cluster/postgres"

const [store, sideEffectLog, mode] = Schema.decodeUnknownSync(
  Schema.Tuple([
    Schema.String,
    Schema.String,
    Schema.Literals([
      "run",
      "block-in-b",
      "block-after-b",
      "compensate",
      "block-in-refund",
      "values",
      "sleep",
      "signal-wait",
      "signal-send",
      "saga",
      "heartbeat",
      "child"
    ])
  ])
)(process.argv.slice(2))

class Crashy extends Workflow.TaggedRequest<Crashy>()("Crashy", {
  payload: { id: Schema.String },
  success: Schema.String,
  failure: Schema.Never
}) {}

const blocked = Effect.sync(() => console.log("BLOCKED")).pipe(Effect.andThen(Effect.never))

const step = (id: string, value: string) =>
  Effect.gen(function* () {
    const key = yield* Activity.persistenceId
    const attempt = yield* Activity.attempt
    const blocks = id === "b" && attempt === 1
    if (blocks && mode === "block-in-b") yield* blocked
    appendFileSync(sideEffectLog, `${id} ${key} ${attempt}\n`)
    if (blocks && mode === "block-after-b") yield* blocked
    return value
  }).pipe(Activity.make(id, Schema.String, Schema.Never))

const workflow = Workflow.make(
  Crashy,
  (r) => `crashy@${r.id}`,
  () =>
    Effect.gen(function* () {
      const a = yield* step("a", "A")
      const b = yield* step("b", "B")
      const c = yield* step("c", "C")
      return `${a}${b}${c}`
    })
)

class OutOfStockError extends Schema.TaggedError<OutOfStockError>()("OutOfStockError", {}) {}

const sideEffect = (id: string) =>
  Effect.gen(function* () {
    appendFileSync(sideEffectLog, `${id} ${yield* Activity.persistenceId} ${yield* Activity.attempt}\n`)
  })

const compensating = Workflow.make(
  Crashy,
  (r) => `compensating@${r.id}`,
  () =>
    sideEffect("charge").pipe(
      Activity.make("charge", Schema.Void, Schema.Never),
      Effect.andThen(
        Effect.andThen(sideEffect("ship"), Effect.fail(new OutOfStockError())).pipe(
          Activity.make("ship", Schema.Void, OutOfStockError, { retry: { maxAttempts: 1 } })
        )
      ),
      Effect.as("shipped"),
      Effect.catchTag("OutOfStockError", () =>
        Effect.gen(function* () {
          if (mode === "block-in-refund" && (yield* Activity.attempt) === 1) yield* blocked
          yield* sideEffect("refund")
          return "refunded"
        }).pipe(Activity.make("refund", Schema.String, Schema.Never))
      )
    )
)

/** Mode `values`: records Workflow.now and Workflow.random, then blocks on the first attempt. */
const values = Workflow.make(
  Crashy,
  (r) => `values@${r.id}`,
  () =>
    Effect.gen(function* () {
      const now = yield* Workflow.now
      const random = yield* Workflow.random
      yield* Effect.gen(function* () {
        console.log(`VALUES ${now} ${random}`)
        if ((yield* Activity.attempt) === 1) yield* blocked
      }).pipe(Activity.make("after-values", Schema.Void, Schema.Never))
      return `${now} ${random}`
    })
)

/** Mode `sleep`: sleeps 2.5 s durably; prints SLEEPING once the execution is parked. */
const sleeper = Workflow.make(
  Crashy,
  (r) => `sleeper@${r.id}`,
  () =>
    Effect.gen(function* () {
      const before = yield* Workflow.now
      yield* Workflow.sleep("2500 millis")
      return `${before} ${yield* Workflow.now}`
    })
)

/** Modes `signal-wait` / `signal-send`: waits for the "go" signal; the second process sends it. */
const go = Signal.make("go", Schema.String)
const waiter = Workflow.make(
  Crashy,
  (r) => `waiter@${r.id}`,
  () => Effect.map(Signal.receive(go), (value) => `got ${value}`)
)

/** Mode `saga`: two reservations, a declined charge, compensations; cancel-flight blocks on attempt 1. */
const sagaStep = (id: string, fail = false) =>
  Effect.gen(function* () {
    if (id === "cancel-flight" && (yield* Activity.attempt) === 1) yield* blocked
    yield* sideEffect(id)
    if (fail) return yield* Effect.fail("declined")
  }).pipe(Activity.make(id, Schema.Void, Schema.String, { retry: { maxAttempts: 1 } }))

const trip = Workflow.make(
  Crashy,
  (r) => `trip@${r.id}`,
  () =>
    Saga.run(
      Effect.gen(function* () {
        yield* Saga.step(sagaStep("reserve-hotel"), () => sagaStep("cancel-hotel"))
        yield* Saga.step(sagaStep("reserve-flight"), () => sagaStep("cancel-flight"))
        yield* sagaStep("charge", true)
        return "booked"
      })
    ).pipe(Effect.catch((error) => Effect.succeed(`compensated after ${error}`)))
)

/** Mode `heartbeat`: attempt 1 uploads 3 chunks with heartbeats, then blocks; the retry resumes. */
const Progress = Schema.Struct({ uploaded: Schema.Number })
const uploader = Workflow.make(
  Crashy,
  (r) => `upload@${r.id}`,
  () =>
    Effect.gen(function* () {
      const last = yield* Activity.lastHeartbeat(Progress)
      const from = last._tag === "Some" ? last.value.uploaded : 0
      console.log(`RESUMING FROM ${from}`)
      for (let chunk = from; chunk < 6; chunk++) {
        if ((yield* Activity.attempt) === 1 && chunk === 3) {
          yield* Effect.sleep("1200 millis") // the last heartbeat is stored by now
          yield* blocked
        }
        yield* Activity.heartbeat({ uploaded: chunk + 1 })
      }
      return `uploaded from ${from}`
    }).pipe(Activity.make("upload", Schema.String, Schema.Never))
)

/** Mode `child`: the parent pays, then runs a child whose `deliver` blocks on its first attempt. */
class Deliver extends Workflow.TaggedRequest<Deliver>()("Deliver", {
  payload: { orderId: Schema.String },
  success: Schema.String,
  failure: Schema.Never
}) {}

const delivery = Workflow.make(
  Deliver,
  (r) => `deliver@${r.orderId}`,
  () =>
    Effect.gen(function* () {
      if ((yield* Activity.attempt) === 1) yield* blocked
      yield* sideEffect("deliver")
      return "delivered"
    }).pipe(Activity.make("deliver", Schema.String, Schema.Never))
)

const parent = Workflow.make(
  Crashy,
  (r) => `parent@${r.id}`,
  ({ id }) =>
    Effect.gen(function* () {
      yield* sideEffect("pay").pipe(Activity.make("pay", Schema.Void, Schema.Never))
      return yield* Workflow.executeChild(delivery, new Deliver({ orderId: id })).pipe(Effect.orDie)
    })
)

const program = Effect.gen(function* () {
  if (mode === "child") {
    const engine = yield* WorkflowEngine.makeScoped(Workflow.union(parent, delivery))
    console.log(`RESULT ${yield* engine.send(new Crashy({ id: "1" }))}`)
  } else if (mode === "heartbeat") {
    const engine = yield* WorkflowEngine.makeScoped(uploader)
    console.log(`RESULT ${yield* engine.send(new Crashy({ id: "1" }))}`)
  } else if (mode === "saga") {
    const engine = yield* WorkflowEngine.makeScoped(trip)
    console.log(`RESULT ${yield* engine.send(new Crashy({ id: "1" }))}`)
  } else if (mode === "signal-wait" || mode === "signal-send") {
    const engine = yield* WorkflowEngine.makeScoped(waiter)
    yield* engine.sendDiscard(new Crashy({ id: "1" }))
    if (mode === "signal-wait") {
      for (let i = 0; i < 500; i++) {
        const info = yield* engine.status("waiter@1")
        if (info._tag === "Some" && info.value.status === "sleeping") break
        yield* Effect.sleep("10 millis")
      }
      console.log("WAITING")
      yield* Effect.never
    }
    const first = yield* engine.signal("waiter@1", go, "now")
    const again = yield* engine.signal("waiter@1", go, "twice")
    console.log(`SIGNALED ${first} ${again}`)
    console.log(`RESULT ${yield* engine.send(new Crashy({ id: "1" }))}`)
  } else if (mode === "sleep") {
    const engine = yield* WorkflowEngine.makeScoped(sleeper)
    // When the engine is ready (its start-up on a loaded machine is not the sleep's): a resumed
    // execution's run, and so a fresh deadline if the kept one were lost, starts after this.
    console.log(`STARTED ${Date.now()}`)
    yield* engine.sendDiscard(new Crashy({ id: "1" }))
    const parked = yield* engine.status("sleeper@1")
    if (parked._tag === "Some" && parked.value.status !== "sleeping") {
      // Wait until parked (a fresh start) or go straight to the result (a resumed one).
      for (let i = 0; i < 200; i++) {
        const info = yield* engine.status("sleeper@1")
        if (info._tag === "Some" && info.value.status === "sleeping") {
          console.log("SLEEPING")
          break
        }
        yield* Effect.sleep("10 millis")
      }
    }
    console.log(`RESULT ${yield* engine.send(new Crashy({ id: "1" }))}`)
  } else if (mode === "values") {
    const engine = yield* WorkflowEngine.makeScoped(values)
    console.log(`RESULT ${yield* engine.send(new Crashy({ id: "1" }))}`)
  } else if (mode === "compensate" || mode === "block-in-refund") {
    const engine = yield* WorkflowEngine.makeScoped(compensating)
    console.log(`RESULT ${yield* engine.send(new Crashy({ id: "1" }))}`)
  } else {
    const engine = yield* WorkflowEngine.makeScoped(workflow)
    console.log(`RESULT ${yield* engine.send(new Crashy({ id: "1" }))}`)
  }
})

Effect.runPromise(
  Effect.scoped(program).pipe(
    Effect.provide(
      store.startsWith("postgres://")
        ? PostgresJournal.layer({ url: store })
        : SqliteJournal.layer({ filename: store })
    )
  )
).then(
  () => process.exit(0),
  (error) => {
    console.error(error)
    process.exit(1)
  }
)
