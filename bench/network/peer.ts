/**
 * The far side of `bench/network.ts`, a child process in one of three modes (argv[2]):
 * - `net`: a raw `node:net` echo server (newline-framed);
 * - `rpc`: a plain `effect/rpc` echo server over `@effect/platform-node` sockets (ndjson);
 * - `pod` (argv[3] = PostgreSQL URL): pod `b` of the cluster, hosting the bench's entities and
 *   workflow (`bench/network/types.ts`).
 * It prints `{"ready": ..., "port"?: n}`, then `{"cpu": seconds}` for every line on stdin.
 */
import { createServer } from "node:net"
import { createInterface } from "node:readline"
import * as NodeSocketServer from "@effect/platform-node/NodeSocketServer"
import { Effect, Layer } from "effect"
import { RpcSerialization, RpcServer } from "effect/rpc"
import { SocketServer } from "effect/socket/SocketServer"
import { Membership, Sharding, WorkflowEngine } from "effect-cluster"
import { PostgresJournal } from "effect-cluster/postgres"
import { EchoRpcs, registerTypes, SHARDS, workflow } from "./types.ts"

const say = (line: unknown) => console.log(JSON.stringify(line))
const cpu = () => {
  const usage = process.cpuUsage()
  return (usage.user + usage.system) / 1e6
}
createInterface({ input: process.stdin }).on("line", () => say({ cpu: cpu() }))

const mode = process.argv[2]
if (mode === "net") {
  const server = createServer({ noDelay: true }, (socket) => socket.pipe(socket))
  server.listen(0, "127.0.0.1", () => {
    const address = server.address()
    say({ ready: "net", port: typeof address === "object" && address !== null ? address.port : 0 })
  })
} else if (mode === "rpc") {
  const handlers = EchoRpcs.toLayer({ Echo: ({ value }) => Effect.succeed(value) })
  Effect.runFork(
    Effect.gen(function* () {
      const server = yield* NodeSocketServer.make({ host: "127.0.0.1", port: 0, noDelay: true })
      say({ ready: "rpc", port: "port" in server.address ? server.address.port : 0 })
      yield* RpcServer.make(EchoRpcs, { disableTracing: true, concurrency: "unbounded" }).pipe(
        Effect.provideServiceEffect(RpcServer.Protocol, RpcServer.makeProtocolSocketServer),
        Effect.provideService(SocketServer, server),
        Effect.provide(RpcSerialization.layerNdjson),
        Effect.provide(handlers)
      )
    }).pipe(Effect.scoped)
  )
} else if (mode === "pod") {
  const url = process.argv[3]!
  const cluster = Sharding.layer().pipe(
    Layer.provideMerge(Membership.layer({ podId: "b", shardCount: SHARDS })),
    Layer.provideMerge(PostgresJournal.layer({ url }))
  )
  Effect.runFork(
    Effect.gen(function* () {
      yield* registerTypes
      yield* WorkflowEngine.makeScoped(workflow)
      say({ ready: "pod" })
      return yield* Effect.never
    }).pipe(Effect.scoped, Effect.provide(cluster))
  )
}
