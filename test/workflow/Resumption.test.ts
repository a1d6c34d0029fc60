/**
 * Resuming shards taken over (`internal/Resumption.ts`), on a real memory journal: the shards
 * taken together are resumed as one, in the order of their executions' ids (each shard read a
 * chunk at a time), every `running` execution once; a shard that moves meanwhile is left alone;
 * a listing the journal fails is read again.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect } from "effect"
import { type DurableExecutionJournal, MemoryJournal, ShardId, WorkflowErrors } from "../../src/index.ts"
import type { RunHandle } from "../../src/workflow/internal/ExecutionRunner.ts"
import { type RunJournal, unfenced } from "../../src/workflow/internal/FencedJournal.ts"
import { resumeShards } from "../../src/workflow/internal/Resumption.ts"

const SHARDS = 3

/** `count` running executions spread over `SHARDS` shards; returns their ids by shard. */
const stored = (journal: DurableExecutionJournal.DurableExecutionJournal["Service"], count: number) =>
  Effect.gen(function* () {
    const byShard = new Map<number, Array<string>>()
    for (let n = 0; n < count; n++) {
      const executionId = `exec-${String(n).padStart(5, "0")}`
      const shard = ShardId.shardOf(executionId, SHARDS)
      byShard.set(shard, [...(byShard.get(shard) ?? []), executionId])
      yield* journal.start({
        executionId,
        workflow: "Job",
        request: "{}",
        shard,
        now: 0
      })
    }
    // One is finished: it is not resumed.
    yield* journal.write({
      executionId: "exec-00000",
      outcomes: [],
      status: { _tag: "Complete", status: "succeeded", result: "null" },
      now: 1
    })
    return byShard
  })

/** A run that has loaded its journal at once (the resumption waits for that, page by page). */
const loadedRun = (): RunHandle => {
  const loaded = Deferred.makeUnsafe<void>()
  Deferred.doneUnsafe(loaded, Effect.void)
  return { state: { loaded } } as unknown as RunHandle
}

/** Records a start and gives its run. */
const record = (started: Array<string>, executionId: string): RunHandle => {
  started.push(executionId)
  return loadedRun()
}

/** Resumes every shard of `byShard`, all owned; returns the ids started, in order. */
const resumeAll = (journal: RunJournal, byShard: ReadonlyMap<number, ReadonlyArray<string>>) =>
  Effect.gen(function* () {
    const started: Array<string> = []
    const resumed = yield* resumeShards(
      {
        journal,
        stillOwned: () => true,
        start: (row) => Effect.sync(() => record(started, row.executionId))
      },
      [...byShard.keys()]
    )
    expect(resumed).toBe(started.length)
    return started
  })

/** The running executions of `byShard` (all but the finished one), in id order. */
const running = (byShard: ReadonlyMap<number, ReadonlyArray<string>>) =>
  [...byShard.values()]
    .flat()
    .filter((id) => id !== "exec-00000")
    .sort()

describe("resumption of the shards taken over", () => {
  it.effect("resumes every running execution once, in the order of their ids across the shards", () =>
    Effect.gen(function* () {
      const memory = yield* MemoryJournal.make
      const byShard = yield* stored(memory, 1_200)
      const listings = new Map<number, number>()
      const journal = unfenced({
        ...memory,
        listUnfinished: (query) =>
          Effect.suspend(() => {
            listings.set(query.shard, (listings.get(query.shard) ?? 0) + 1)
            return memory.listUnfinished(query)
          })
      })
      const started = yield* resumeAll(journal, byShard)
      expect(started).toHaveLength(1_199)
      expect(started).toEqual(running(byShard))
      // Each shard holds ~400: read in chunks of a page (256), until one comes back empty.
      for (const [shard, ids] of byShard) {
        const running = ids.filter((id) => id !== "exec-00000").length
        expect(listings.get(shard)).toBe(Math.floor(running / 256) + 1 + (running % 256 === 0 ? 0 : 1))
      }
    })
  )

  it.effect("leaves a shard alone once it moved; the others are resumed to the end", () =>
    Effect.gen(function* () {
      const memory = yield* MemoryJournal.make
      const byShard = yield* stored(memory, 900)
      const [moving, ...staying] = [...byShard.keys()]
      const movingIds = new Set(byShard.get(moving!))
      let owned = true
      let listedAfterMove = 0
      const journal = unfenced({
        ...memory,
        listUnfinished: (query) =>
          Effect.suspend(() => {
            if (query.shard === moving && !owned) listedAfterMove++
            return memory.listUnfinished(query)
          })
      })
      const started: Array<string> = []
      const resumed = yield* resumeShards(
        {
          journal,
          stillOwned: (shard) => shard !== moving || owned,
          // As `Runs.ensure` does, no run for a shard this engine no longer runs.
          start: (row) =>
            Effect.sync(() => {
              if (movingIds.has(row.executionId) && !owned) return undefined
              const handle = record(started, row.executionId)
              // The shard moves after 50 of its executions have been started.
              if (started.filter((id) => movingIds.has(id)).length === 50) owned = false
              return handle
            })
        },
        [...byShard.keys()]
      )
      // ~300 executions, read in chunks of 256: the second chunk is never read.
      expect(movingIds.size).toBeGreaterThan(256)
      expect(started.filter((id) => movingIds.has(id))).toHaveLength(50)
      expect(listedAfterMove).toBe(0)
      for (const shard of staying) {
        const ids = byShard.get(shard)!.filter((id) => id !== "exec-00000")
        expect(started.filter((id) => ids.includes(id))).toEqual(ids.sort())
      }
      expect(resumed).toBe(started.length)
    })
  )

  it.effect("a row the journal leaves out (it does not decode) does not end its shard's resumption", () =>
    Effect.gen(function* () {
      const memory = yield* MemoryJournal.make
      const byShard = yield* stored(memory, 900)
      const damaged = new Set<string>()
      // As the SQL journals do with a row that does not decode: logged and left out of the listing.
      const journal = unfenced({
        ...memory,
        listUnfinished: (query) =>
          Effect.map(memory.listUnfinished(query), (rows) => {
            if (query.after !== undefined || rows.length < 10) return rows
            damaged.add(rows[5]!.executionId)
            return rows.filter((_, index) => index !== 5)
          })
      })
      const started = yield* resumeAll(journal, byShard)
      expect(damaged.size).toBe(SHARDS)
      expect(started).toEqual(running(byShard).filter((id) => !damaged.has(id)))
    })
  )

  it.live("a listing the journal fails is logged and read again while the shard is owned", () =>
    Effect.gen(function* () {
      const memory = yield* MemoryJournal.make
      const byShard = yield* stored(memory, 30)
      const failing = [...byShard.keys()][0]!
      let listings = 0
      const journal = unfenced({
        ...memory,
        listUnfinished: (query) =>
          query.shard === failing && listings++ === 0
            ? Effect.fail(new WorkflowErrors.JournalError({ operation: "listUnfinished", transient: true }))
            : memory.listUnfinished(query)
      })
      const started = yield* resumeAll(journal, byShard)
      // Failed, read again, then read to its end (an empty chunk).
      expect(listings).toBe(3)
      expect(started.sort()).toEqual(running(byShard))
    })
  )
})
