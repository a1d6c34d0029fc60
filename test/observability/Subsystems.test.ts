/**
 * The spans and metrics of the other subsystems: shard acquisition and handover with their shard,
 * epoch and pod, lease renewals, entity messages with their type, id, message id and outcome, and
 * the group commits of the SQLite journal with their batch size.
 */
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Schema, Scope } from "effect"
import {
  Activity,
  DurableExecutionJournal,
  MemoryJournal,
  Sharding,
  ShardStore,
  SqliteJournal,
  Telemetry,
  TelemetryMetrics,
  Workflow,
  WorkflowEngine
} from "effect-cluster"
import {
  CounterEntity,
  counterBehaviour,
  GetCurrent,
  Increment,
  singleProcess
} from "../sharding/fixtures/counter.ts"
import { testTempDir } from "../support/tempDir.ts"
import { attr, counterValue, histogramCount, makeSpanCollector } from "./spanCollector.ts"

const A = Telemetry.Attributes
const SHARDS = 8

class Job extends Workflow.TaggedRequest<Job>()("Job", {
  payload: { id: Schema.String },
  success: Schema.String,
  failure: Schema.Never
}) {}
const jobs = Workflow.make(
  Job,
  (request) => request.id,
  (request) => Effect.succeed(request.id).pipe(Activity.make("work", Schema.String, Schema.Never))
)

/** Polls `check` until it holds (every 20 ms, at most 5 s of real time). */
const eventually = <E, R>(check: Effect.Effect<boolean, E, R>) =>
  Effect.gen(function* () {
    for (let i = 0; i < 250; i++) {
      if (yield* check) return
      yield* Effect.sleep("20 millis")
    }
    return yield* Effect.die(new Error("condition not met in time"))
  })

describe("Telemetry of the subsystems", () => {
  it.live("shards: acquired by a lone pod, handed over to a second one; lease renewals counted", () => {
    const collector = makeSpanCollector()
    return Effect.gen(function* () {
      const cluster = yield* MemoryJournal.makeCluster
      const moves = (pod: string, move: string) => counterValue(TelemetryMetrics.shardMoves, { pod, move })
      const before = {
        acquiredA: yield* moves("tel-a", "acquired"),
        handedA: yield* moves("tel-a", "handed_over"),
        acquiredB: yield* moves("tel-b", "acquired"),
        renewedA: yield* counterValue(TelemetryMetrics.leaseRenewals, { pod: "tel-a", result: "ok" })
      }
      const startPod = (podId: string) =>
        Effect.gen(function* () {
          const scope = yield* Scope.make()
          yield* WorkflowEngine.makeScoped(jobs, {
            shardCount: SHARDS,
            podId,
            leaseTtl: "2 seconds",
            ownershipInterval: "40 millis"
          }).pipe(
            Effect.provideService(DurableExecutionJournal.DurableExecutionJournal, cluster.journal),
            Effect.provideService(ShardStore.ShardStore, cluster.shards),
            Scope.provide(scope)
          )
          return scope
        })
      const spansOf = (name: string, pod: string) =>
        collector.ended.filter((span) => span.name === name && attr(span, A.pod) === pod)

      yield* startPod("tel-a")
      const acquiredByA = spansOf(Telemetry.SpanNames.shardAcquire, "tel-a")
      expect(acquiredByA.map((span) => [attr(span, A.shard), attr(span, A.epoch)]).sort()).toEqual(
        Array.from({ length: SHARDS }, (_, i) => [i + 1, 1]).sort()
      )
      expect((yield* moves("tel-a", "acquired")) - before.acquiredA).toBe(SHARDS)
      yield* eventually(
        Effect.map(
          counterValue(TelemetryMetrics.leaseRenewals, { pod: "tel-a", result: "ok" }),
          (n) => n > before.renewedA
        )
      )

      yield* startPod("tel-b")
      // Converged, and b has taken (reconciled) each of its shards.
      yield* eventually(
        Effect.map(
          cluster.shards.shards,
          (shards) =>
            shards.filter((s) => s.owner === "tel-b" && s.nextOwner === null).length === SHARDS / 2 &&
            spansOf(Telemetry.SpanNames.shardAcquire, "tel-b").length === SHARDS / 2
        )
      )
      const owned = (yield* cluster.shards.shards).filter((s) => s.owner === "tel-b")
      // a handed over exactly the shards b now owns; b acquired them at their new epochs.
      const handed = spansOf(Telemetry.SpanNames.shardLose, "tel-a")
      expect(handed.map((span) => attr(span, A.outcome))).toEqual(Array(SHARDS / 2).fill("handed_over"))
      expect(handed.map((span) => attr(span, A.shard)).sort()).toEqual(owned.map((s) => s.shard).sort())
      expect(
        spansOf(Telemetry.SpanNames.shardAcquire, "tel-b")
          .map((span) => [attr(span, A.shard), attr(span, A.epoch)])
          .sort()
      ).toEqual(owned.map((s) => [s.shard, s.epoch]).sort())
      expect((yield* moves("tel-a", "handed_over")) - before.handedA).toBe(SHARDS / 2)
      expect((yield* moves("tel-b", "acquired")) - before.acquiredB).toBe(SHARDS / 2)
    }).pipe(Effect.provide(collector.layer), Effect.scoped)
  })

  it.live("entity messages: a span per message with its type, entity, message id and answer", () => {
    const collector = makeSpanCollector()
    return Effect.gen(function* () {
      const before = yield* counterValue(TelemetryMetrics.entityMessages, {
        entity_type: "Counter",
        outcome: "Reply"
      })
      yield* Effect.gen(function* () {
        yield* Sharding.registerEntity(CounterEntity)(counterBehaviour())
        const counter = yield* Sharding.messenger(CounterEntity)
        yield* counter.sendDiscard("c-1")(new Increment({ messageId: "inc-1" }))
        expect(yield* counter.send("c-1")(new GetCurrent({ messageId: "get-1" }))).toBe(1)
      }).pipe(Effect.provide(singleProcess()))
      const messages = collector.ended
        .filter((span) => span.name === Telemetry.SpanNames.entityMessage)
        .map((span) => [
          attr(span, A.entityType),
          attr(span, A.entityId),
          attr(span, A.messageId),
          attr(span, A.outcome)
        ])
      expect(messages).toEqual([
        ["Counter", "c-1", "inc-1", "Reply"],
        ["Counter", "c-1", "get-1", "Reply"]
      ])
      expect(
        (yield* counterValue(TelemetryMetrics.entityMessages, { entity_type: "Counter", outcome: "Reply" })) -
          before
      ).toBe(2)
    }).pipe(Effect.provide(collector.layer))
  })

  it.live("SQLite group commits: a span per batch with its size; the commit histograms record each", () => {
    const collector = makeSpanCollector()
    const file = join(testTempDir("telemetry-sqlite-"), "journal.db")
    return Effect.gen(function* () {
      const batches = yield* histogramCount(TelemetryMetrics.commitBatchSize, { store: "journal" })
      const durations = yield* histogramCount(TelemetryMetrics.commitDuration, { store: "journal" })
      yield* Effect.gen(function* () {
        const engine = yield* WorkflowEngine.makeScoped(jobs)
        const ids = Array.from({ length: 40 }, (_, i) => `sqlite-job-${i}`)
        expect(yield* Effect.forEach(ids, (id) => engine.send(new Job({ id })), { concurrency: 40 })).toEqual(
          ids
        )
      }).pipe(Effect.scoped, Effect.provide(SqliteJournal.layer({ filename: file })))
      const commits = collector.ended.filter(
        (span) => span.name === Telemetry.SpanNames.commit && attr(span, A.store) === "journal"
      )
      const sizes = commits.map((span) => attr(span, A.batchSize) as number)
      expect(commits.length).toBeGreaterThan(0)
      expect(sizes.every((size) => Number.isInteger(size) && size >= 1)).toBe(true)
      // 40 executions at once: some commits carried several writes.
      expect(Math.max(...sizes)).toBeGreaterThan(1)
      expect(commits.every((span) => attr(span, A.outcome) === "succeeded")).toBe(true)
      expect((yield* histogramCount(TelemetryMetrics.commitBatchSize, { store: "journal" })) - batches).toBe(
        commits.length
      )
      expect((yield* histogramCount(TelemetryMetrics.commitDuration, { store: "journal" })) - durations).toBe(
        commits.length
      )
    }).pipe(Effect.provide(collector.layer))
  })
})
