/**
 * Group commit on the SQL backends: concurrent writes from many executions share transactions,
 * and a batch holding one write the database rejects fails only that write.
 */
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import { SqlClient } from "effect/sql/SqlClient"
import { PostgresJournal } from "../../src/postgres.ts"
import * as SqliteClient from "../../src/storage/sqlite/SqliteClient.ts"
import * as SqliteJournal from "../../src/storage/sqlite/SqliteJournal.ts"
import { scopedTempDir } from "../support/tempDir.ts"
import { pgClient } from "./backends.ts"

const sqlite = Effect.gen(function* () {
  const sql = yield* SqliteClient.make({ filename: join(yield* scopedTempDir("group-commit-"), "j.db") })
  return yield* Effect.provideService(SqliteJournal.make(), SqlClient, sql)
})

const postgres = Effect.gen(function* () {
  const sql = yield* pgClient()
  const prefix = `gc_${Math.random().toString(36).slice(2, 8)}_`
  return yield* Effect.provideService(PostgresJournal.make({ tablePrefix: prefix }), SqlClient, sql)
})

describe("group commit", () => {
  for (const [name, open] of [
    ["sqlite", sqlite],
    ["postgres", postgres]
  ] as const) {
    it.live(`${name}: 200 concurrent starts and writes share transactions`, () =>
      Effect.gen(function* () {
        const journal = yield* open
        const ids = Array.from({ length: 200 }, (_, i) => `exec-${i}`)
        yield* Effect.forEach(
          ids,
          (executionId) => journal.start({ executionId, workflow: "W", request: "{}", shard: 1, now: 1 }),
          {
            concurrency: "unbounded"
          }
        )
        yield* Effect.forEach(
          ids,
          (executionId) =>
            journal.write({
              executionId,
              outcomes: [
                {
                  executionId,
                  stepKey: "a",
                  activityId: "a",
                  seq: 1,
                  previous: null,
                  attempt: 1,
                  outcome: "1"
                }
              ],
              status: { _tag: "Complete", status: "succeeded", result: "1" },
              now: 2
            }),
          { concurrency: "unbounded" }
        )
        expect(journal.stats.items).toBe(400)
        // Batched: far fewer transactions than writes (one per write without group commit).
        expect(journal.stats.transactions).toBeLessThan(40)
        expect((yield* journal.listRunning).length).toBe(0)
      }).pipe(Effect.scoped)
    )

    it.live(
      `${name}: completions sharing a batch each keep their own result; a finished execution keeps its first`,
      () =>
        Effect.gen(function* () {
          const journal = yield* open
          const ids = Array.from({ length: 60 }, (_, i) => `done-${i}`)
          yield* Effect.forEach(
            ids,
            (executionId) => journal.start({ executionId, workflow: "W", request: "{}", shard: 1, now: 1 }),
            { concurrency: "unbounded", discard: true }
          )
          const complete = (
            executionId: string,
            status: "succeeded" | "failed",
            result: string,
            now: number
          ) => journal.write({ executionId, outcomes: [], status: { _tag: "Complete", status, result }, now })
          yield* complete("done-0", "succeeded", `"first"`, 2)
          // One batch: the rest complete with their own results; done-0 again (refused: finished);
          // done-1 suspends and then completes in the same batch (two changes of one execution).
          yield* Effect.all(
            [
              ...ids
                .slice(2)
                .map((id, i) => complete(id, i % 2 === 0 ? "succeeded" : "failed", `"${id}"`, 3)),
              complete("done-0", "failed", `"second"`, 3),
              journal.write({
                executionId: "done-1",
                outcomes: [],
                status: { _tag: "Suspend", reason: "waits" },
                now: 3
              }),
              complete("done-1", "succeeded", `"after suspension"`, 4)
            ],
            { concurrency: "unbounded", discard: true }
          )
          const records = yield* Effect.forEach(ids, (id) => Effect.map(journal.get(id), Option.getOrThrow))
          expect(records.map((record) => [record.executionId, record.status, record.result])).toEqual([
            ["done-0", "succeeded", `"first"`],
            ["done-1", "succeeded", `"after suspension"`],
            ...ids.slice(2).map((id, i) => [id, i % 2 === 0 ? "succeeded" : "failed", `"${id}"`])
          ])
          expect(records.slice(2).every((record) => record.updatedAt === 3)).toBe(true)
        }).pipe(Effect.scoped)
    )
  }
})

describe("group commit on SQLite after an idle moment", () => {
  // A synchronous driver commits a lone write before any other fiber runs; without the writer's
  // periodic yield, every write after the first lone one would commit alone, for good.
  it.live("a burst after a lone write and an idle writer still batches", () =>
    Effect.gen(function* () {
      const journal = yield* sqlite
      const start = (executionId: string) =>
        journal.start({ executionId, workflow: "W", request: "{}", shard: 1, now: 1 })
      // One write alone, then the writer waits for work: the state of a server between requests.
      yield* start("lone")
      yield* Effect.yieldNow
      const before = { ...journal.stats }
      yield* Effect.forEach(
        Array.from({ length: 200 }, (_, i) => `burst-${i}`),
        start,
        { concurrency: "unbounded", discard: true }
      )
      expect(journal.stats.items - before.items).toBe(200)
      // Batched: one transaction per write (200) is what the idle writer used to do.
      expect(journal.stats.transactions - before.transactions).toBeLessThan(40)
    }).pipe(Effect.scoped)
  )
})
