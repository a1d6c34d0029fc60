/**
 * The network benchmark's peer: effect 4.1's own cluster between two processes, every setting at
 * its default but the addresses. `runner` hosts an entity (`Echo`, one RPC that returns its
 * input) on a socket runner (`NodeClusterSocket.layer`: effect/rpc over TCP, its binary
 * serialization, SQL runner and message storage on the given PostgreSQL); `client` is a
 * client-only runner on the same database that asks it, at concurrency 1 and 100, and prints what
 * it measured as one JSON line. Every ask crosses from one process to the other.
 *
 * Usage: node bench/peers/effectCluster.ts runner|client <postgres URL> <port> [asks]
 * It uses the repository's own copy of effect (4.1.0) and @effect/sql-pg: nothing to install.
 */
import * as NodeClusterSocket from "@effect/platform-node/NodeClusterSocket"
import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, Option, Redacted, Schema } from "effect"
import * as Entity from "effect/cluster/Entity"
import * as RunnerAddress from "effect/cluster/RunnerAddress"
import * as Rpc from "effect/rpc/Rpc"

const [mode, url, port, asks] = process.argv.slice(2) as [string, string, string, string | undefined]

const Ask = Rpc.make("Ask", { payload: { value: Schema.String }, success: Schema.String })
const Echo = Entity.make("BenchEcho", [Ask])
const EchoLayer = Echo.toLayer(
  Effect.succeed(Echo.of({ Ask: ({ payload }) => Effect.succeed(payload.value) }))
)

const address = RunnerAddress.make("127.0.0.1", Number(port))
const sql = PgClient.layer({
  url: Redacted.make(url),
  maxConnections: 10,
  applicationName: `bench-effect-${mode}`
})

const percentile = (sorted: ReadonlyArray<number>, p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? Number.NaN

const measure = (count: number, concurrency: number, call: () => Effect.Effect<unknown, unknown>) =>
  Effect.gen(function* () {
    const latencies: Array<number> = []
    const started = performance.now()
    yield* Effect.forEach(
      Array.from({ length: count }),
      () =>
        Effect.suspend(() => {
          const at = performance.now()
          return Effect.map(call(), () => latencies.push(performance.now() - at))
        }),
      { concurrency, discard: true }
    )
    latencies.sort((a, b) => a - b)
    return {
      concurrency,
      perSecond: count / ((performance.now() - started) / 1000),
      p50: percentile(latencies, 0.5),
      p99: percentile(latencies, 0.99)
    }
  })

if (mode === "runner") {
  const layer = EchoLayer.pipe(
    Layer.provideMerge(
      NodeClusterSocket.layer({ shardingConfig: { runnerAddress: Option.some(address), shardsPerGroup: 60 } })
    ),
    Layer.provide(sql)
  )
  Effect.runFork(
    Effect.gen(function* () {
      console.log(JSON.stringify({ ready: "runner" }))
      return yield* Effect.never
    }).pipe(Effect.provide(layer))
  )
} else {
  const layer = NodeClusterSocket.layer({
    clientOnly: true,
    shardingConfig: { runnerAddress: Option.some(address), shardsPerGroup: 60 }
  }).pipe(Layer.provide(sql))
  const n = Number(asks ?? 5_000)
  Effect.runPromise(
    Effect.gen(function* () {
      const makeClient = yield* Echo.client
      const entities = Array.from({ length: 100 }, (_, i) => makeClient(`echo-${i}`))
      let i = 0
      const ask = () => entities[i++ % entities.length]!.Ask({ value: "x" })
      yield* measure(2_000, 10, ask)
      const c1 = yield* measure(n, 1, ask)
      const c100 = yield* measure(n * 10, 100, ask)
      console.log(JSON.stringify({ results: [c1, c100] }))
    }).pipe(Effect.provide(layer))
  ).then(
    () => process.exit(0),
    (error) => {
      console.error(error)
      process.exit(1)
    }
  )
}
