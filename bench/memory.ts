/**
 * `npm run bench -- --only memory`: what one engine holds for work at rest, on the embedded store
 * (a file in a temporary directory, `SqliteJournal.layer`, one pod owning every shard):
 *
 * - **parked executions**: `count` executions that each sleep an hour (`Workflow.sleep`), started
 *   with `sendDiscard`; measured once none holds a fiber (`engine.runningCount() === 0`);
 * - **passivated entities**: one persisted message (the talk's counter, `PersistedCounter`) to each
 *   of `count` entities, with a passivation time of 1 s; measured once none is active
 *   (`Sharding.activeEntities`).
 *
 * Heap after a full GC (needs `--expose-gc`), minus the heap of the same engine before; the total
 * heap and RSS at the end beside it. Target: 100,000 of each held in ≤ 256 MiB of heap.
 */
import { join } from "node:path"
import { Effect, Layer, Schema } from "effect"
import { Workflow, WorkflowEngine } from "effect-cluster"
import * as Membership from "../src/sharding/Membership.ts"
import * as Sharding from "../src/sharding/Sharding.ts"
import * as SqliteJournal from "../src/storage/sqlite/SqliteJournal.ts"
import { counterBehaviour, Increment, PersistedCounter } from "../test/sharding/fixtures/counter.ts"
import { collect } from "./sleep.ts"

class Nap extends Workflow.TaggedRequest<Nap>()("Nap", {
  payload: { id: Schema.Number },
  success: Schema.Number,
  failure: Schema.Never
}) {}

const napper = Workflow.make(
  Nap,
  (r) => `parked-${r.id}`,
  ({ id }) => Effect.as(Workflow.sleep("1 hour"), id)
)

const heapBytes = () => process.memoryUsage().heapUsed
const MiB = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`

/** Waits until `done()`, looking every 50 ms. */
const until = (done: () => boolean) =>
  Effect.gen(function* () {
    while (!done()) yield* Effect.sleep("50 millis")
  })

export const memoryBench = (dir: string, count: number) =>
  Effect.gen(function* () {
    if ((globalThis as { gc?: unknown }).gc === undefined) {
      return yield* Effect.die(new Error("the memory bench needs node --expose-gc (npm run bench has it)"))
    }
    const engine = yield* WorkflowEngine.makeScoped(napper)
    yield* Sharding.registerEntity(PersistedCounter, { passivateAfter: "1 second" })(counterBehaviour())
    const counters = yield* Sharding.messenger(PersistedCounter)
    const sharding = yield* Sharding.Sharding
    yield* Effect.sleep("200 millis")
    collect()
    const empty = heapBytes()

    const parkStarted = performance.now()
    yield* Effect.forEach(
      Array.from({ length: count }, (_, id) => id),
      (id) => engine.sendDiscard(new Nap({ id })),
      { concurrency: 256, discard: true }
    )
    yield* until(() => engine.runningCount() === 0)
    const parkSeconds = (performance.now() - parkStarted) / 1000
    collect()
    const parked = heapBytes()

    const passivateStarted = performance.now()
    yield* Effect.forEach(
      Array.from({ length: count }, (_, id) => id),
      (id) => counters.sendDiscard(`idle-${id}`)(new Increment({ messageId: `m-${id}` })),
      { concurrency: 256, discard: true }
    )
    yield* until(() => sharding.activeEntities(PersistedCounter) === 0)
    const passivateSeconds = (performance.now() - passivateStarted) / 1000
    collect()
    const rest = heapBytes()

    console.log(`\n### Memory at rest (SQLite, one pod, ${count.toLocaleString("en")} of each)\n`)
    console.log("| what | count | time to reach rest | heap per item | heap in all (engine included) |")
    console.log("|---|---|---|---|---|")
    console.log(
      `| parked executions (sleeping 1 h) | ${count} | ${parkSeconds.toFixed(1)} s | ${((parked - empty) / count).toFixed(0)} B | ${MiB(parked)} |`
    )
    console.log(
      `| passivated entities (one persisted message each) | ${count} | ${passivateSeconds.toFixed(1)} s | ${((rest - parked) / count).toFixed(0)} B | ${MiB(rest)} |`
    )
    console.log(
      `\nheap with both at rest: ${MiB(rest)} (${MiB(empty)} before any); RSS: ${MiB(process.memoryUsage().rss)}`
    )
  }).pipe(
    Effect.scoped,
    Effect.provide(
      Sharding.layer().pipe(
        Layer.provideMerge(Membership.layer()),
        Layer.provideMerge(SqliteJournal.layer({ filename: join(dir, "memory.db") }))
      )
    )
  )
