/**
 * The benchmark workload: a workflow of three activities that each return a number at once, so
 * the engine and the journal are all that is measured.
 */
import { Effect, Schema } from "effect"
import { SqlClient } from "effect/sql/SqlClient"
import { Activity, type DurableExecutionJournal, ShardId, Workflow, WorkflowEngine } from "effect-cluster"

export class Bench extends Workflow.TaggedRequest<Bench>()("Bench", {
  payload: { id: Schema.Number },
  success: Schema.Number,
  failure: Schema.Never
}) {}

const step = (id: string, value: number) =>
  Effect.succeed(value).pipe(Activity.make(id, Schema.Number, Schema.Never))
export const workflow = Workflow.make(
  Bench,
  (r) => `bench-${r.id}`,
  ({ id }) =>
    Effect.gen(function* () {
      const a = yield* step("a", id)
      const b = yield* step("b", a + 1)
      return yield* step("c", b + 1)
    })
)

export interface Row {
  readonly backend: string
  readonly concurrency: number
  readonly executions: number
  readonly seconds: number
  readonly durableCommits: number | undefined
  readonly transactions: number | undefined
}

/** Sends `executions` requests, `concurrency` at a time; returns the wall time in seconds. */
export const runWorkload = (executions: number, concurrency: number, offset: number) =>
  Effect.gen(function* () {
    const engine = yield* WorkflowEngine.makeScoped(workflow)
    const started = performance.now()
    yield* Effect.forEach(
      Array.from({ length: executions }, (_, i) => i + offset),
      (id) => engine.send(new Bench({ id })),
      { concurrency, discard: true }
    )
    return (performance.now() - started) / 1000
  }).pipe(Effect.scoped)

/** The median of some measurements. */
export const median = (values: ReadonlyArray<number>) =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0

/**
 * Raw single-row autocommit inserts through the SQLite `SqlClient` in context (a fresh file, with
 * the store's settings): the ceiling the SQLite figures are compared with.
 */
export const sqliteRawCommitRate = (count: number) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient
    yield* sql`CREATE TABLE raw (id INTEGER PRIMARY KEY, payload TEXT NOT NULL)`
    const started = performance.now()
    for (let i = 0; i < count; i++) yield* sql`INSERT INTO raw (id, payload) VALUES (${i}, ${"x"})`
    return count / ((performance.now() - started) / 1000)
  })

/**
 * Stores `count` unfinished executions of `workflow` (`bench-0` ...) through the journal port, 256
 * starts at a time: each `running` with no step yet, as after a crash right after `sendDiscard`.
 */
export const storeUnfinished = (
  journal: DurableExecutionJournal.DurableExecutionJournal["Service"],
  count: number
) =>
  Effect.forEach(
    Array.from({ length: count }, (_, id) => id),
    (id) => {
      const executionId = `bench-${id}`
      return journal.start({
        executionId,
        workflow: "Bench",
        request: `{"_tag":"Bench","id":${id}}`,
        shard: ShardId.shardOf(executionId, ShardId.DEFAULT_SHARD_COUNT),
        now: Date.now()
      })
    },
    { concurrency: 256, discard: true }
  )
