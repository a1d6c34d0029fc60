/**
 * Stale routing, on two pods of one SQLite file in this process talking over loopback: a sender
 * whose routing table points at the wrong pod is told `NotOwner`, reads the routes again and
 * reaches the owner within its timeout, with nothing stored (a volatile message). A route to a pod
 * that does not answer at all sends it through the store instead.
 */
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer, Option } from "effect"
import {
  EntityStore,
  Membership,
  MessageState,
  RecipientBehaviour,
  Sharding,
  ShardStore,
  SqliteJournal
} from "../../src/index.ts"
import { scopedTempDir } from "../support/tempDir.ts"
import { Echo, Ping } from "./fixtures.ts"

const SHARDS = 8

/** A pod on `file` whose Echo entities answer with its id. */
const pod = (file: string, podId: string) =>
  Effect.gen(function* () {
    const layer = Sharding.layer({ sendTimeout: "10 seconds" }).pipe(
      Layer.provideMerge(Membership.layer({ podId, shardCount: SHARDS, leaseTtl: "3 seconds" })),
      Layer.provideMerge(Layer.fresh(SqliteJournal.layer({ filename: file })))
    )
    const context = yield* Layer.build(layer)
    yield* Sharding.registerEntity(Echo)(
      RecipientBehaviour.fromFunctionEffect(() => Effect.succeed(MessageState.Processed(Option.some(podId))))
    ).pipe(Effect.provideContext(context))
    const store = Context.get(context, EntityStore.EntityStore)
    const messenger = Context.get(context, Sharding.Sharding).messenger(Echo)
    const membership = Context.get(context, Membership.Membership)
    const shards = Context.get(context, ShardStore.ShardStore)
    return { messenger, membership, shards, store }
  })

/** Waits until both pods own half the shards and no handover is pending. */
const balanced = (shards: ShardStore.ShardStore["Service"]) =>
  Effect.gen(function* () {
    while (true) {
      const records = yield* shards.shards
      if (
        records.every((record) => record.nextOwner === null) &&
        records.filter((record) => record.owner === "a").length === SHARDS / 2
      ) {
        return records
      }
      yield* Effect.sleep("100 millis")
    }
  })

describe("stale routes", () => {
  it.live("a sender told NotOwner reads the routes again and reaches the owner, over the network", () =>
    Effect.gen(function* () {
      const dir = yield* scopedTempDir("stale-routes-")
      const file = join(dir, "journal.db")
      const a = yield* pod(file, "a")
      yield* pod(file, "b")
      const records = yield* balanced(a.shards)
      const network = a.membership.network!
      yield* network.routes.refresh
      // An entity of b, and a route of a's that says a owns its shard (as before a handover).
      const shardOfB = records.find((record) => record.owner === "b")!.shard
      let entityId = ""
      for (let i = 0; entityId === ""; i++) {
        if (a.membership.shardOf(`e-${i}`) === shardOfB) entityId = `e-${i}`
      }
      network.routes.learn(shardOfB, { podId: "a", address: network.network.address })
      expect(yield* a.messenger.send(entityId)(new Ping({ messageId: "m-1" }))).toBe("b")
      // It went over the network: nothing was stored for it, and a's route is right again.
      expect(yield* a.store.outcomes([{ entityType: "Echo", entityId, messageId: "m-1" }])).toEqual([
        undefined
      ])
      expect(network.routes.ownerOf(shardOfB)?.podId).toBe("b")

      // A route to an address where nobody listens: the message goes through the store instead.
      network.routes.learn(shardOfB, { podId: "b", address: "127.0.0.1:1" })
      expect(yield* a.messenger.send(entityId)(new Ping({ messageId: "m-2" }))).toBe("b")
      expect(
        (yield* a.store.outcomes([{ entityType: "Echo", entityId, messageId: "m-2" }]))[0]
      ).toMatchObject({ status: "processed" })
    }).pipe(Effect.scoped)
  )
})
