/**
 * What only the memory store has: `layerCluster` gives engines of one process a journal and a shard
 * store that share their state; leases follow effect's `Clock` (so `TestClock` drives them); the
 * plain journal (`layer`) has no shards, so a fenced write is refused there.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Layer, Scope } from "effect"
import { TestClock } from "effect/testing"
import { DurableExecutionJournal, MemoryJournal, ShardStore } from "../../../src/index.ts"

const write = (executionId: string, epoch: number) => ({
  executionId,
  outcomes: [],
  attempt: { executionId, stepKey: "a", activityId: "a", seq: 1, previous: null, attempt: 1 },
  fence: { shard: 1, epoch },
  now: 1
})

describe("memory store with ownership", () => {
  it.effect("leases follow the Clock: TestClock ends a lease, the manager's too", () =>
    Effect.gen(function* () {
      const { shards } = yield* MemoryJournal.makeCluster
      const scope = yield* Scope.make()
      yield* shards.register("a", 10_000).pipe(Scope.provide(scope))
      expect(yield* shards.acquireManager("a", 10_000)).toBe(true)
      expect((yield* shards.pods)[0]?.liveness).toBe("live")
      yield* TestClock.adjust("9999 millis")
      expect((yield* shards.pods)[0]?.liveness).toBe("live")
      expect(yield* shards.acquireManager("b", 10_000)).toBe(false)
      yield* TestClock.adjust("1 millis")
      expect((yield* shards.pods)[0]?.liveness).toBe("expired")
      expect(yield* shards.acquireManager("b", 10_000)).toBe(true)
      yield* Scope.close(scope, Exit.void)
      expect((yield* shards.pods)[0]?.liveness).toBe("gone")
    })
  )

  it.effect("layerCluster: one journal and shard store, sharing the shard epochs", () =>
    Effect.gen(function* () {
      const journal = yield* DurableExecutionJournal.DurableExecutionJournal
      const shards = yield* ShardStore.ShardStore
      yield* shards.init(4)
      yield* journal.start({ executionId: "e", workflow: "W", request: "{}", shard: 1, now: 1 })
      yield* shards.assign([{ shard: 1, from: null, to: "a" }])
      yield* journal.write(write("e", 1))
      yield* shards.assign([{ shard: 1, from: "a", to: "b" }])
      expect(yield* Effect.flip(journal.write(write("e", 1)))).toMatchObject({
        _tag: "StaleEpochError",
        currentEpoch: 2
      })
    }).pipe(Effect.provide(MemoryJournal.layerCluster))
  )

  it.effect("the plain journal has no shards: it refuses a fenced write, takes an unfenced one", () =>
    Effect.gen(function* () {
      const journal = yield* DurableExecutionJournal.DurableExecutionJournal
      yield* journal.start({ executionId: "e", workflow: "W", request: "{}", shard: 1, now: 1 })
      expect(yield* Effect.flip(journal.write(write("e", 0)))).toMatchObject({
        _tag: "StaleEpochError",
        currentEpoch: null
      })
      const { fence: _, ...unfenced } = write("e", 0)
      yield* journal.write(unfenced)
      expect((yield* journal.steps("e")).length).toBe(1)
    }).pipe(Effect.provide(Layer.fresh(MemoryJournal.layer)))
  )
})
