/**
 * Results pushed between pods: a `send` from one pod for an execution another pod owns gets its
 * result (a value, or the workflow's typed failure) from the final row the owner pushes over the
 * network, without reading the store. Two pods of one SQLite file in this process, on loopback;
 * the sender's result polling is an hour apart, so only the push can answer in time.
 */
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Exit, Layer, Schema } from "effect"
import {
  Activity,
  DurableExecutionJournal,
  Membership,
  ShardStore,
  SqliteJournal,
  Workflow,
  WorkflowEngine
} from "../../src/index.ts"
import { scopedTempDir } from "../support/tempDir.ts"

const SHARDS = 8

class Refused extends Schema.TaggedError<Refused>()("Refused", { reason: Schema.String }) {}

class Job extends Workflow.TaggedRequest<Job>()("Job", {
  payload: { id: Schema.String },
  success: Schema.String,
  failure: Refused
}) {}

const job = Workflow.make(
  Job,
  (request) => `job-${request.id}`,
  (request) =>
    Effect.gen(function* () {
      const done = yield* Effect.succeed(`done:${request.id}`).pipe(
        Activity.make("work", Schema.String, Schema.Never)
      )
      if (request.id.startsWith("bad")) return yield* new Refused({ reason: `no ${request.id}` })
      return done
    })
)

describe("results pushed between pods", () => {
  it.live("a send for an execution of another pod takes its result from the pushed row, not the store", () =>
    Effect.gen(function* () {
      const dir = yield* scopedTempDir("remote-results-")
      const file = join(dir, "journal.db")
      const pod = (podId: string) =>
        Layer.build(
          Membership.layer({ podId, shardCount: SHARDS, leaseTtl: "3 seconds" }).pipe(
            Layer.provideMerge(Layer.fresh(SqliteJournal.layer({ filename: file })))
          )
        )
      const a = yield* pod("a")
      const b = yield* pod("b")
      // The sender's reads of other pods' executions, counted.
      let reads = 0
      const journal = Context.get(a, DurableExecutionJournal.DurableExecutionJournal)
      const counted = DurableExecutionJournal.DurableExecutionJournal.of({
        ...journal,
        getMany: (ids) =>
          Effect.suspend(() => {
            reads += 1
            return journal.getMany(ids)
          })
      })
      const engineA = yield* WorkflowEngine.makeScoped(job, { deliveryPollInterval: "1 hour" }).pipe(
        Effect.provideService(DurableExecutionJournal.DurableExecutionJournal, counted),
        Effect.provideContext(a)
      )
      yield* WorkflowEngine.makeScoped(job).pipe(Effect.provideContext(b))
      // Until b owns half the shards.
      const shards = Context.get(a, ShardStore.ShardStore)
      while (true) {
        const records = yield* shards.shards
        if (
          records.every((record) => record.nextOwner === null) &&
          records.filter((record) => record.owner === "b").length === SHARDS / 2
        ) {
          break
        }
        yield* Effect.sleep("100 millis")
      }
      const membership = Context.get(a, Membership.Membership)
      const onB = (prefix: string, n: number) => {
        const ids: Array<string> = []
        for (let i = 0; ids.length < n; i++) {
          if (membership.pod?.epochOf(membership.shardOf(`job-${prefix}${i}`)) === undefined)
            ids.push(`${prefix}${i}`)
        }
        return ids
      }
      yield* membership.network!.routes.refresh
      const good = onB("ok", 5)
      const results = yield* Effect.forEach(good, (id) => engineA.send(new Job({ id })), { concurrency: 5 })
      expect(results).toEqual(good.map((id) => `done:${id}`))
      const [bad] = onB("bad", 1)
      const failed = yield* Effect.exit(engineA.send(new Job({ id: bad! })))
      expect(Exit.isFailure(failed) && JSON.stringify(failed.cause)).toContain(`no ${bad}`)
      expect(reads).toBe(0)
    }).pipe(Effect.scoped)
  )
})
