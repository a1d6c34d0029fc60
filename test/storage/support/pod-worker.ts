/**
 * A child process for the liveness tests: registers a pod in the shard store of the embedded store
 * (a file path) or of PostgreSQL (a URL), prints `REGISTERED`, and waits until it is killed.
 *
 * Usage: node pod-worker.ts <journalFile | postgresUrl> <tablePrefix> <podId> <ttlMillis>
 */
import { Effect, type Layer, Schema } from "effect"
import { ShardStore, SqliteJournal } from "effect-cluster"
import { PostgresJournal } from "effect-cluster/postgres"

const [store, tablePrefix, podId, ttl] = Schema.decodeUnknownSync(
  Schema.Tuple([Schema.String, Schema.String, Schema.String, Schema.NumberFromString])
)(process.argv.slice(2))

const layer: Layer.Layer<ShardStore.ShardStore, unknown> = store.startsWith("postgres://")
  ? PostgresJournal.layer({ url: store, tablePrefix, maxConnections: 2 })
  : SqliteJournal.layer({ filename: store, tablePrefix })

const program = Effect.gen(function* () {
  const shards = yield* ShardStore.ShardStore
  yield* shards.register(podId, ttl)
  yield* Effect.sync(() => console.log("REGISTERED"))
  // Nothing else keeps Node's event loop busy (the SQLite driver is synchronous): without this
  // timer the process would exit, and its pod would be gone.
  yield* Effect.acquireRelease(
    Effect.sync(() => setInterval(() => {}, 60_000)),
    (timer) => Effect.sync(() => clearInterval(timer))
  )
  return yield* Effect.never
})

Effect.runPromise(Effect.scoped(program).pipe(Effect.provide(layer))).catch((error) => {
  console.error(error)
  process.exit(1)
})
