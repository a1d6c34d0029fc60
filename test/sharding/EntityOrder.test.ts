/**
 * A persisted entity processes its messages in store order (one process, memory store): a message
 * stored before another was sent is processed before it, even when the stored one has not been
 * handed to the entity yet (its push lost or late, the pickup not come by). The pickup is set to
 * read the store once an hour here, so only the entity's own reads can find the stored messages.
 * Across real processes with the network on: `test/node/Ordering.test.ts`.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import type { EntityStore } from "../../src/sharding/EntityStore.ts"
import * as ShardId from "../../src/sharding/ShardId.ts"
import * as Sharding from "../../src/sharding/Sharding.ts"
import * as MemoryEntityStore from "../../src/storage/memory/MemoryEntityStore.ts"
import {
  Add,
  Applied,
  AppliedCounter,
  type AppliedMsg,
  appliedBehaviour,
  Slow
} from "./fixtures/appliedCounter.ts"
import { singleProcess } from "./fixtures/counter.ts"

/** Runs `program` with a sharding on `store` whose pickup never comes by during a test. */
const withSharding = <A, E>(program: Effect.Effect<A, E, Sharding.Sharding>, store: EntityStore["Service"]) =>
  Effect.provide(program, singleProcess(store, { deliveryPollInterval: "1 hour" }))

/** Stores a message for entity `entityId` as a sender on another pod does, without delivering it. */
const storeOnly = (store: EntityStore["Service"], entityId: string, messages: ReadonlyArray<AppliedMsg>) =>
  store.enqueue(
    messages.map((message) => ({
      entityType: AppliedCounter.name,
      entityId,
      messageId: message.messageId,
      shard: ShardId.shardOf(entityId, 16),
      payload: JSON.stringify(message),
      now: 0
    }))
  )

/** The counter with `handled` counting each handler run by message id. */
const registered = (behaviour = appliedBehaviour()) =>
  Effect.flatMap(Sharding.registerEntity(AppliedCounter, { redeliverAfter: "200 millis" })(behaviour), () =>
    Sharding.messenger(AppliedCounter)
  )

const applied = (messageId: string, entityId = "c") =>
  Effect.flatMap(Sharding.messenger(AppliedCounter), (counter) =>
    counter.send(entityId)(new Applied({ messageId }))
  )

describe("a persisted entity processes its messages in store order", () => {
  it.live("a local send sees every message stored before it, though none was handed to the entity yet", () =>
    Effect.gen(function* () {
      const store = MemoryEntityStore.make()
      const runs = new Map<string, number>()
      const result = yield* withSharding(
        Effect.gen(function* () {
          const counter = yield* registered(
            appliedBehaviour((_, message) =>
              runs.set(message.messageId, (runs.get(message.messageId) ?? 0) + 1)
            )
          )
          yield* storeOnly(store, "c", [new Add({ messageId: "a1" }), new Add({ messageId: "a2" })])
          const first = yield* applied("get-1")
          // The stored messages' own deliveries come later: duplicates, answered without a run.
          yield* counter.sendDiscard("c")(new Add({ messageId: "a1" }))
          yield* counter.sendDiscard("c")(new Add({ messageId: "a3" }))
          return [first, yield* applied("get-2")]
        }),
        store
      )
      expect(result).toEqual([
        ["a1", "a2"],
        ["a1", "a2", "a3"]
      ])
      expect([...runs.entries()].filter(([, n]) => n !== 1)).toEqual([])
      expect(yield* store.pendingOf({ entityType: AppliedCounter.name, entityId: "c" }, 10)).toEqual([])
    })
  )

  it.live(
    "a stored message is processed after the ones stored before it and before the ones stored after it",
    () =>
      Effect.gen(function* () {
        const store = MemoryEntityStore.make()
        const result = yield* withSharding(
          Effect.gen(function* () {
            yield* registered()
            // The read is stored between two increments; it reaches the entity first (a push that
            // overtook the older message's), the increments only through the store.
            yield* storeOnly(store, "c", [new Add({ messageId: "a1" })])
            yield* storeOnly(store, "c", [new Applied({ messageId: "get-1" })])
            yield* storeOnly(store, "c", [new Add({ messageId: "a2" })])
            const read = yield* applied("get-1")
            return [read, yield* applied("get-2")]
          }),
          store
        )
        expect(result).toEqual([["a1"], ["a1", "a2"]])
      })
  )

  it.live("more stored messages ahead than one read of the store returns: all of them, in order", () =>
    Effect.gen(function* () {
      const store = MemoryEntityStore.make()
      const ids = Array.from({ length: 250 }, (_, i) => `a${i}`)
      const result = yield* withSharding(
        Effect.gen(function* () {
          yield* registered()
          for (const id of ids) yield* storeOnly(store, "c", [new Add({ messageId: id })])
          return yield* applied("get-1")
        }),
        store
      )
      expect(result).toEqual(ids)
    })
  )

  it.live("a stored message ahead that no longer decodes is dead-lettered; the others are processed", () =>
    Effect.gen(function* () {
      const store = MemoryEntityStore.make()
      const { result, letters } = yield* withSharding(
        Effect.gen(function* () {
          yield* registered()
          yield* storeOnly(store, "c", [new Add({ messageId: "a1" })])
          yield* store.enqueue([
            {
              entityType: AppliedCounter.name,
              entityId: "c",
              messageId: "bad",
              shard: ShardId.shardOf("c", 16),
              payload: JSON.stringify({ _tag: "Add", messageId: 7 }),
              now: 0
            }
          ])
          yield* storeOnly(store, "c", [new Add({ messageId: "a2" })])
          const result = yield* applied("get-1")
          const letters = yield* Effect.flatMap(Sharding.Sharding, (sharding) => sharding.deadLetters())
          return { result, letters }
        }),
        store
      )
      expect(result).toEqual(["a1", "a2"])
      expect(letters.map((letter) => letter.messageId)).toEqual(["bad"])
      expect(letters[0]!.error).toContain("does not decode")
    })
  )

  it.live(
    "a message that answered Processing waits for its redelivery: later messages do not run it again",
    () =>
      Effect.gen(function* () {
        const store = MemoryEntityStore.make()
        let slowRuns = 0
        const result = yield* withSharding(
          Effect.gen(function* () {
            const counter = yield* registered(
              appliedBehaviour((_, message) => {
                if (message._tag === "Slow") slowRuns++
              })
            )
            yield* counter.sendDiscard("c")(new Slow({ messageId: "s1" }))
            yield* counter.sendDiscard("c")(new Add({ messageId: "a1" }))
            // s1 is pending in the store, ahead of these reads, but it said "not done yet".
            const before = yield* applied("get-1")
            const runsBefore = slowRuns
            yield* Effect.sleep("400 millis")
            return { before, runsBefore, after: yield* applied("get-2") }
          }),
          store
        )
        expect(result).toEqual({ before: ["a1"], runsBefore: 1, after: ["a1", "s1"] })
        expect(slowRuns).toBe(2)
      })
  )
})
