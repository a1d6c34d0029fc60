/**
 * The peer baseline's first peer: effect 4.1's own workflow engine. `effect/workflow` (Workflow,
 * Activity) on the cluster workflow engine (`effect/cluster/ClusterWorkflowEngine`) of a one-runner
 * cluster (`SingleRunner`: messages, replies and shard locks in SQL through `SqlMessageStorage` and
 * `SqlRunnerStorage`), on PostgreSQL through `@effect/sql-pg`, every setting at its default.
 *
 * The workload is `bench/workload.ts`'s: three activities that each return a number at once,
 * started and awaited (`execute`), `concurrency` at a time. It imports the repository's own copy of
 * effect (4.1.0) and `@effect/sql-pg`, so this file needs nothing from `bench/peers/node_modules`
 * and is type-checked by the repository's `npm run check`.
 */
import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, Redacted, Schema } from "effect"
import * as ClusterWorkflowEngine from "effect/cluster/ClusterWorkflowEngine"
import * as SingleRunner from "effect/cluster/SingleRunner"
import * as Digest from "effect/crypto/Digest"
import * as Activity from "effect/workflow/Activity"
import * as Workflow from "effect/workflow/Workflow"

const Bench = Workflow.make("Bench", {
  payload: { id: Schema.Number },
  success: Schema.Number,
  idempotencyKey: ({ id }) => `bench-${id}`
})

const step = (name: string, value: number) =>
  Activity.make({ name, success: Schema.Number, execute: Effect.succeed(value) })

const BenchLayer = Bench.toLayer(({ id }) =>
  Effect.gen(function* () {
    const a = yield* step("a", id)
    const b = yield* step("b", a + 1)
    return yield* step("c", b + 1)
  })
)

/** The engine on the database at `url`: the same pool size as our engine's (10 connections). */
const layer = (url: string) =>
  BenchLayer.pipe(
    Layer.provideMerge(ClusterWorkflowEngine.layer),
    Layer.provideMerge(SingleRunner.layer()),
    Layer.provide(
      PgClient.layer({
        url: Redacted.make(url),
        maxConnections: 10,
        applicationName: "bench-effect-workflow"
      })
    ),
    // Hashes over-long message deduplication keys; WebCrypto is built into Node.
    Layer.provide(Digest.layerWebCrypto)
  )

/**
 * Starts the engine on `url` (migrations, shard locks), runs `executions` executions `concurrency`
 * at a time, and stops it. Returns the wall time of the executions alone, in seconds.
 */
export const runWorkload = (url: string, executions: number, concurrency: number) =>
  Effect.gen(function* () {
    // The runner acquires its shards after the layer is built: the first execution waits for them
    // (0.4–0.9 s here). One execution outside the workload (id -1) keeps that out of the timing;
    // the bench also runs it in the no-execution run whose commits it subtracts.
    yield* Bench.execute({ id: -1 })
    const started = performance.now()
    yield* Effect.forEach(
      Array.from({ length: executions }, (_, id) => id),
      (id) => Bench.execute({ id }),
      { concurrency, discard: true }
    )
    return (performance.now() - started) / 1000
  }).pipe(Effect.provide(layer(url)))
