import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Layer } from "effect"
import { Membership, Sharding, ShardId, ShardStore, SqliteJournal } from "effect-cluster"
import { Echo, Ping, registerTypes, SHARDS } from "./network/types.ts"

const dir = mkdtempSync(join(tmpdir(), "prof-"))
const file = join(dir, "j.db")
const pod = (podId: string) =>
  Sharding.layer().pipe(
    Layer.provideMerge(Membership.layer({ podId, shardCount: SHARDS })),
    Layer.provideMerge(Layer.fresh(SqliteJournal.layer({ filename: file })))
  )
const main = Effect.gen(function* () {
  const a = yield* Layer.build(pod("a"))
  const b = yield* Layer.build(pod("b"))
  yield* Effect.provideContext(registerTypes, a)
  yield* Effect.provideContext(registerTypes, b)
  const owners = yield* Effect.provideContext(
    Effect.gen(function* () {
      const store = yield* ShardStore.ShardStore
      while (true) {
        const shards = yield* store.shards
        if (shards.filter((s) => s.owner === "b").length === SHARDS / 2 && shards.every((s) => s.nextOwner === null))
          return new Map(shards.map((s) => [s.shard, s.owner]))
        yield* Effect.sleep("200 millis")
      }
    }),
    a
  )
  yield* Effect.sleep("1 second")
  const ids: Array<string> = []
  for (let i = 0; ids.length < 100; i++) if (owners.get(ShardId.shardOf(`e-${i}`, SHARDS)) === "b") ids.push(`e-${i}`)
  const messenger = yield* Effect.provideContext(Sharding.messenger(Echo), a)
  let m = 0
  for (let round = 0; round < 4; round++) {
    const t0 = performance.now()
    for (let i = 0; i < 3000; i++) yield* messenger.send(ids[i % 100]!)(new Ping({ messageId: `m-${m++}` }))
    const t1 = performance.now()
    yield* Effect.forEach(Array.from({ length: 30000 }, (_, i) => i), (i) => messenger.send(ids[i % 100]!)(new Ping({ messageId: `m-${m++}` })), { concurrency: 100, discard: true })
    const t2 = performance.now()
    console.log(`c1 ${(3000 / (t1 - t0) * 1000).toFixed(0)}/s  c100 ${(30000 / (t2 - t1) * 1000).toFixed(0)}/s`)
  }
}).pipe(Effect.scoped)
await Effect.runPromise(main)
process.exit(0)
