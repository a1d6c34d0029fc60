/**
 * A child process for the crash tests: runs a 3-activity workflow on the embedded store. Each
 * activity appends `activity persistenceId attempt` to a side-effect log before it returns, so the
 * test can see which side effects happened. In mode `block-in-b`, activity b blocks on its first
 * attempt before its side effect; in `block-after-b`, it blocks after its side effect (before the
 * outcome is recorded). The test SIGKILLs the process when it prints `BLOCKED`.
 *
 * Usage: node worker.ts <journalFile> <sideEffectLog> <mode: run|block-in-b|block-after-b>
 */
import { appendFileSync } from "node:fs"
import { Effect, Schema } from "effect"
import { Activity, SqliteJournal, Workflow, WorkflowEngine } from "effect-cluster"

const [journalFile, sideEffectLog, mode] = Schema.decodeUnknownSync(
  Schema.Tuple([Schema.String, Schema.String, Schema.Literals(["run", "block-in-b", "block-after-b"])])
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

const program = Effect.gen(function* () {
  const engine = yield* WorkflowEngine.makeScoped(workflow)
  const result = yield* engine.send(new Crashy({ id: "1" }))
  console.log(`RESULT ${result}`)
})

Effect.runPromise(
  Effect.scoped(program).pipe(Effect.provide(SqliteJournal.layer({ filename: journalFile })))
).then(
  () => process.exit(0),
  (error) => {
    console.error(error)
    process.exit(1)
  }
)
