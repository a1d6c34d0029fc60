/**
 * `npm run bench -- --only network`: asks and workflow starts between two pods as two processes on
 * loopback (this process is pod `a`, `bench/network/peer.ts pod` is pod `b`, both on one fresh
 * PostgreSQL database), beside anchors measured in the same run between the same two processes:
 * - a raw `node:net` echo (newline-framed; 100 in flight are pipelined on one connection);
 * - a plain `effect/rpc` echo over `@effect/platform-node` sockets (ndjson), the library our
 *   transport is built on.
 *
 * Ours: a volatile ask to an entity of the other pod at concurrency 1 and 100 (and to one of this
 * pod, for reference); a persisted ask at concurrency 1 to the other pod and to this one; a
 * workflow `send` whose execution the other pod owns, and one this pod owns, at concurrency 1; and
 * the CPU seconds of both processes per execution, for 400 executions at concurrency 50 owned by
 * the other pod, then by this one. Last, effect 4.1's own cluster doing the same ask between two
 * processes (`bench/peers/effectCluster.ts`: socket runners, SQL storage on the same server). Entity and execution ids are chosen by the shard they hash to,
 * once the manager has spread the shards evenly.
 */
import { createConnection } from "node:net"
import { performance } from "node:perf_hooks"
import * as NodeSocket from "@effect/platform-node/NodeSocket"
import { Effect, Layer } from "effect"
import { RpcClient, RpcSerialization } from "effect/rpc"
import { Socket } from "effect/socket/Socket"
import { Membership, ShardId, Sharding, ShardStore, WorkflowEngine } from "effect-cluster"
import { PostgresJournal } from "effect-cluster/postgres"
import * as ChildPod from "../test/support/ChildPod.ts"
import { freePort } from "../test/support/freePort.ts"
import { Bench, Echo, EchoRpcs, Ping, registerTypes, SHARDS, Tally, workflow } from "./network/types.ts"
import { dropDatabase, freshDatabase, serverUrl } from "./postgres.ts"

interface Line {
  readonly ready?: string
  readonly port?: number
  readonly cpu?: number
  readonly results?: ReadonlyArray<Omit<Measured, "name">>
}

interface Measured {
  readonly name: string
  readonly concurrency: number
  readonly perSecond: number
  readonly p50: number
  readonly p99: number
}

const percentile = (sorted: ReadonlyArray<number>, p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? Number.NaN

/** Runs `count` calls, `concurrency` at a time; latency of each in ms. */
const measure = (
  name: string,
  count: number,
  concurrency: number,
  call: (i: number) => Effect.Effect<unknown, unknown>
): Effect.Effect<Measured> =>
  Effect.gen(function* () {
    const latencies: Array<number> = []
    const started = performance.now()
    yield* Effect.forEach(
      Array.from({ length: count }, (_, i) => i),
      (i) =>
        Effect.suspend(() => {
          const at = performance.now()
          return Effect.map(call(i), () => latencies.push(performance.now() - at))
        }),
      { concurrency, discard: true }
    ).pipe(Effect.orDie)
    const seconds = (performance.now() - started) / 1000
    latencies.sort((a, b) => a - b)
    return {
      name,
      concurrency,
      perSecond: count / seconds,
      p50: percentile(latencies, 0.5),
      p99: percentile(latencies, 0.99)
    }
  })

/** A raw newline-framed echo client: one connection, requests pipelined, answers in order. */
const netEcho = (port: number) =>
  Effect.acquireRelease(
    Effect.callback<{ readonly call: () => Effect.Effect<void>; readonly close: () => void }>((resume) => {
      const socket = createConnection({ host: "127.0.0.1", port, noDelay: true }, () => {
        const waiting: Array<() => void> = []
        let buffered = ""
        socket.setEncoding("utf8")
        socket.on("data", (chunk: string) => {
          buffered += chunk
          let newline = buffered.indexOf("\n")
          while (newline >= 0) {
            buffered = buffered.slice(newline + 1)
            waiting.shift()?.()
            newline = buffered.indexOf("\n")
          }
        })
        let n = 0
        resume(
          Effect.succeed({
            call: () =>
              Effect.callback<void>((done) => {
                waiting.push(() => done(Effect.void))
                socket.write(`${n++}\n`)
              }),
            close: () => socket.destroy()
          })
        )
      })
    }),
    (client) => Effect.sync(client.close)
  )

const rpcEcho = (port: number) =>
  Effect.gen(function* () {
    const socket = yield* NodeSocket.makeNet({ host: "127.0.0.1", port, noDelay: true })
    return yield* RpcClient.make(EchoRpcs, { disableTracing: true }).pipe(
      Effect.provideServiceEffect(RpcClient.Protocol, RpcClient.makeProtocolSocket()),
      Effect.provideService(Socket, socket),
      Effect.provide(RpcSerialization.layerNdjson)
    )
  })

const print = (rows: ReadonlyArray<Measured>) => {
  console.log("\n| path | concurrency | per second | p50 ms | p99 ms |\n|---|---|---|---|---|")
  for (const row of rows) {
    console.log(
      `| ${row.name} | ${row.concurrency} | ${row.perSecond.toFixed(0)} | ${row.p50.toFixed(3)} | ${row.p99.toFixed(3)} |`
    )
  }
}

export const networkBench = (scale: number, givenUrl: string | undefined) =>
  Effect.gen(function* () {
    const n1 = Math.max(200, Math.round(5_000 * scale))
    const n100 = Math.max(2_000, Math.round(100_000 * scale))
    const rows: Array<Measured> = []

    // The anchors.
    const net = yield* ChildPod.scoped<Line>("bench/network/peer.ts", { args: ["net"] })
    const netPort = (yield* Effect.promise(() => net.waitFor((line) => line.ready !== undefined))).port!
    const echo = yield* netEcho(netPort)
    yield* measure("warm-up", 2_000, 1, () => echo.call())
    rows.push(yield* measure("raw node:net echo", n1, 1, () => echo.call()))
    rows.push(yield* measure("raw node:net echo", n100, 100, () => echo.call()))
    const rpc = yield* ChildPod.scoped<Line>("bench/network/peer.ts", { args: ["rpc"] })
    const rpcPort = (yield* Effect.promise(() => rpc.waitFor((line) => line.ready !== undefined))).port!
    const rpcClient = yield* rpcEcho(rpcPort)
    yield* measure("warm-up", 2_000, 10, () => rpcClient.Echo({ value: "x" }))
    rows.push(yield* measure("effect/rpc echo", n1, 1, () => rpcClient.Echo({ value: "x" })))
    rows.push(yield* measure("effect/rpc echo", n100, 100, () => rpcClient.Echo({ value: "x" })))

    // Two pods on one fresh database.
    const server = yield* serverUrl(givenUrl)
    const url = yield* freshDatabase(server, "bench_network")
    yield* Effect.addFinalizer(() => Effect.orDie(dropDatabase(server, url)))
    const cluster = Sharding.layer().pipe(
      Layer.provideMerge(Membership.layer({ podId: "a", shardCount: SHARDS })),
      Layer.provideMerge(PostgresJournal.layer({ url }))
    )
    const context = yield* Layer.build(cluster)
    const run = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
      Effect.provide(effect, context) as Effect.Effect<A, E, Exclude<R, Layer.Success<typeof cluster>>>
    yield* run(registerTypes)
    const engine = yield* run(WorkflowEngine.makeScoped(workflow))
    const b = yield* ChildPod.scoped<Line>("bench/network/peer.ts", { args: ["pod", url] })
    yield* Effect.promise(() => b.waitFor((line) => line.ready !== undefined, 60_000))
    // Until the manager has spread the shards evenly.
    const owners = yield* run(
      Effect.gen(function* () {
        const store = yield* ShardStore.ShardStore
        while (true) {
          const shards = yield* store.shards
          const ofA = shards.filter((shard) => shard.owner === "a").length
          const ofB = shards.filter((shard) => shard.owner === "b").length
          if (ofA === SHARDS / 2 && ofB === SHARDS / 2 && shards.every((shard) => shard.nextOwner === null)) {
            return new Map(shards.map((shard) => [shard.shard, shard.owner]))
          }
          yield* Effect.sleep("200 millis")
        }
      })
    )
    yield* Effect.sleep("1 second")
    const idsOn = (
      owner: string,
      prefix: string,
      count: number,
      idOf: (i: number) => string = (i) => `${prefix}-${i}`
    ) => {
      const ids: Array<number> = []
      for (let i = 0; ids.length < count; i++) {
        if (owners.get(ShardId.shardOf(idOf(i), SHARDS)) === owner) ids.push(i)
      }
      return ids
    }
    const echoOn = (owner: string, count: number) => idsOn(owner, "echo", count).map((i) => `echo-${i}`)
    const remoteEntities = echoOn("b", 100)
    const localEntities = echoOn("a", 100)
    const messenger = yield* run(Sharding.messenger(Echo))
    const tally = yield* run(Sharding.messenger(Tally))
    let m = 0
    const askEcho = (ids: ReadonlyArray<string>) => (i: number) =>
      messenger.send(ids[i % ids.length]!)(new Ping({ messageId: `m-${m++}` }))
    const askTally = (ids: ReadonlyArray<string>) => (i: number) =>
      tally.send(ids[i % ids.length]!)(new Ping({ messageId: `t-${m++}` }))
    yield* measure("warm-up", 2_000, 10, askEcho(remoteEntities))
    rows.push(yield* measure("ours: volatile ask, other pod", n1, 1, askEcho(remoteEntities)))
    rows.push(yield* measure("ours: volatile ask, other pod", n100, 100, askEcho(remoteEntities)))
    rows.push(yield* measure("ours: volatile ask, same pod", n1, 1, askEcho(localEntities)))
    const nPersisted = Math.max(100, Math.round(1_000 * scale))
    yield* measure("warm-up", 200, 1, askTally(remoteEntities))
    rows.push(yield* measure("ours: persisted ask, other pod", nPersisted, 1, askTally(remoteEntities)))
    rows.push(yield* measure("ours: persisted ask, same pod", nPersisted, 1, askTally(localEntities)))

    const execOn = (owner: string, count: number, from: number) =>
      idsOn(owner, "bench", count + from, (i) => `bench-${i}`).slice(from)
    const nWorkflows = Math.max(100, Math.round(500 * scale))
    const remoteRuns = execOn("b", nWorkflows + 400, 0)
    const localRuns = execOn("a", nWorkflows + 400, 0)
    const sendRun = (ids: ReadonlyArray<number>) => (i: number) => engine.send(new Bench({ id: ids[i]! }))
    yield* measure("warm-up", 50, 1, (i) => engine.send(new Bench({ id: 10_000_000 + i })))
    rows.push(yield* measure("ours: workflow send, other pod", nWorkflows, 1, sendRun(remoteRuns)))
    rows.push(yield* measure("ours: workflow send, same pod", nWorkflows, 1, sendRun(localRuns)))
    // effect 4.1's own cluster, the same ask between two processes (bench/peers/effectCluster.ts).
    const peerUrl = yield* freshDatabase(server, "bench_effect_cluster")
    yield* Effect.addFinalizer(() => Effect.orDie(dropDatabase(server, peerUrl)))
    const peerPort = yield* Effect.promise(freePort)
    const runner = yield* ChildPod.scoped<Line>("bench/peers/effectCluster.ts", {
      args: ["runner", peerUrl, String(peerPort)]
    })
    yield* Effect.promise(() => runner.waitFor((line) => line.ready !== undefined, 60_000))
    const client = yield* ChildPod.scoped<Line>("bench/peers/effectCluster.ts", {
      args: ["client", peerUrl, String(peerPort), String(n1)]
    })
    const peer = yield* Effect.promise(() => client.waitFor((line) => line.results !== undefined, 600_000))
    for (const result of peer.results!)
      rows.push({ name: "effect 4.1 cluster: entity ask, other process", ...result })
    print(rows)

    // CPU per execution, both processes.
    const childCpu = () =>
      Effect.promise(async () => {
        b.skipReceived()
        b.send({ cpu: true })
        return (await b.waitFor((line) => line.cpu !== undefined)).cpu!
      })
    const ownCpu = () => {
      const usage = process.cpuUsage()
      return (usage.user + usage.system) / 1e6
    }
    const cpuPerExecution = (ids: ReadonlyArray<number>) =>
      Effect.gen(function* () {
        const before = ownCpu() + (yield* childCpu())
        yield* Effect.forEach(ids, (id) => engine.send(new Bench({ id })), { concurrency: 50, discard: true })
        return ((ownCpu() + (yield* childCpu()) - before) / ids.length) * 1e3
      })
    const remoteCpu = yield* cpuPerExecution(remoteRuns.slice(nWorkflows))
    const localCpu = yield* cpuPerExecution(localRuns.slice(nWorkflows))

    const by = (name: string, concurrency: number) =>
      rows.find((row) => row.name === name && row.concurrency === concurrency)!
    const rawC1 = by("raw node:net echo", 1)
    console.log(`
CPU per execution (both processes), 400 at concurrency 50: other pod ${remoteCpu.toFixed(2)} ms, same pod ${localCpu.toFixed(2)} ms: ${(remoteCpu / localCpu).toFixed(2)} ×
volatile ask to the other pod at concurrency 1 ÷ raw echo: ${(by("ours: volatile ask, other pod", 1).perSecond / rawC1.perSecond).toFixed(2)}
persisted ask p50, other pod − same pod: ${(by("ours: persisted ask, other pod", 1).p50 - by("ours: persisted ask, same pod", 1).p50).toFixed(2)} ms
workflow send p50, other pod − same pod: ${(by("ours: workflow send, other pod", 1).p50 - by("ours: workflow send, same pod", 1).p50).toFixed(2)} ms`)
  }).pipe(Effect.scoped)
