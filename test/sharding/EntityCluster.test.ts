/**
 * Entities on several pods of one process (`MemoryJournal.makeCluster`): sends from any pod reach
 * the owner, a pod joining takes entities over without running a message twice, and a shard that
 * moves while a message is in hand gets that message handled once, by the new owner. The same with
 * real processes, SIGKILL and real stores is `test/cluster/Entities.test.ts`.
 */
import { describe, expect, it } from "@effect/vitest"
import { Context, Deferred, Effect, Exit, Fiber, Layer, Logger, Schema, Scope } from "effect"
import { DurableExecutionJournal, MemoryJournal, Workflow, WorkflowEngine } from "../../src/index.ts"
import { EntityStore } from "../../src/sharding/EntityStore.ts"
import * as Membership from "../../src/sharding/Membership.ts"
import * as RecipientBehaviour from "../../src/sharding/RecipientBehaviour.ts"
import * as Sharding from "../../src/sharding/Sharding.ts"
import { ShardStore } from "../../src/sharding/ShardStore.ts"
import {
  CounterEntity,
  type CounterMsg,
  counterBehaviour,
  GetCurrent,
  Increment,
  PersistedCounter
} from "./fixtures/counter.ts"

const SHARDS = 12
const fast = { shardCount: SHARDS, leaseTtl: "1 second", ownershipInterval: "50 millis" } as const

type Cluster = Awaited<ReturnType<typeof Effect.runPromise<MemoryJournal.MemoryCluster, never>>>

/** Starts a pod with the counter registered; `onHandle` sees each handled message. */
const pod = (
  cluster: Cluster,
  podId: string,
  scope: Scope.Scope,
  before: (message: CounterMsg, podId: string) => Effect.Effect<void> = () => Effect.void
) =>
  Effect.gen(function* () {
    const storage = Layer.succeedContext(
      Context.make(ShardStore, cluster.shards).pipe(Context.add(EntityStore, cluster.entities))
    )
    const layer = Sharding.layer({ deliveryPollInterval: "20 millis" }).pipe(
      Layer.provideMerge(Membership.layer({ podId, ...fast })),
      Layer.provideMerge(storage)
    )
    const context = yield* Layer.buildWithScope(layer, scope)
    const sharding = Context.get(context, Sharding.Sharding)
    const handled: Array<string> = []
    const counter = counterBehaviour((_, message) => handled.push(message.messageId))
    yield* sharding.register(
      PersistedCounter,
      RecipientBehaviour.fromFunctionEffectStateful(
        counter.initialState!,
        (entityId, message: CounterMsg, state) =>
          Effect.andThen(before(message, podId), counter.handle(entityId, message, state))
      )
    )
    return { sharding, membership: Context.get(context, Membership.Membership), handled }
  })

const counts = (sharding: Sharding.Sharding["Service"], n: number, tag: string) =>
  Effect.forEach(
    Array.from({ length: n }, (_, i) => `c-${i}`),
    (id) => sharding.messenger(PersistedCounter).send(id)(new GetCurrent({ messageId: `${tag}-${id}` })),
    { concurrency: "unbounded" }
  )

describe("entities on several pods of one process", () => {
  it.live("messages from every pod reach the owner; each pod runs its share of the counters", () =>
    Effect.gen(function* () {
      const cluster = yield* MemoryJournal.makeCluster
      const scope = yield* Scope.make()
      const a = yield* pod(cluster, "a", scope)
      const b = yield* pod(cluster, "b", scope)
      yield* waitUntil(
        () =>
          a.membership.pod!.ownedShards().length + b.membership.pod!.ownedShards().length === SHARDS &&
          b.membership.pod!.ownedShards().length > 0
      )
      const send = (from: Sharding.Sharding["Service"], i: number) =>
        from.messenger(PersistedCounter).sendDiscard(`c-${i % 10}`)(new Increment({ messageId: `m-${i}` }))
      yield* Effect.forEach(
        Array.from({ length: 200 }, (_, i) => i),
        (i) => send(i % 2 === 0 ? a.sharding : b.sharding, i),
        {
          concurrency: 20
        }
      )
      yield* waitUntil(() => a.handled.length + b.handled.length === 200)
      expect(yield* counts(a.sharding, 10, "a")).toEqual(Array(10).fill(20))
      expect(yield* counts(b.sharding, 10, "b")).toEqual(Array(10).fill(20))
      expect(a.sharding.activeEntities(PersistedCounter)).toBeGreaterThan(0)
      expect(b.sharding.activeEntities(PersistedCounter)).toBeGreaterThan(0)
      expect(new Set([...a.handled, ...b.handled]).size).toBe(200 + 20)
      yield* Scope.close(scope, Exit.void)
    })
  )

  it.live(
    "a volatile entity is reached from another pod through the store, and keeps its state in memory",
    () =>
      Effect.gen(function* () {
        const cluster = yield* MemoryJournal.makeCluster
        const scope = yield* Scope.make()
        const a = yield* pod(cluster, "a", scope)
        const b = yield* pod(cluster, "b", scope)
        for (const sharding of [a.sharding, b.sharding])
          yield* sharding.register(CounterEntity, counterBehaviour())
        yield* waitUntil(
          () => b.membership.pod!.ownedShards().length > 0 && a.membership.pod!.ownedShards().length > 0
        )
        // An id whose shard a owns, sent to from b: the message goes through the store.
        const id = Array.from({ length: 100 }, (_, i) => `v-${i}`).find((candidate) =>
          a.membership.pod!.ownedShards().includes(a.membership.shardOf(candidate))
        )!
        const fromB = b.sharding.messenger(CounterEntity)
        for (let i = 0; i < 3; i++) yield* fromB.send(id)(new Increment({ messageId: `inc-${i}` }))
        expect(yield* fromB.send(id)(new GetCurrent({ messageId: "get" }))).toBe(3)
        expect(a.sharding.activeEntities(CounterEntity)).toBe(1)
        expect(b.sharding.activeEntities(CounterEntity)).toBe(0)
        yield* Scope.close(scope, Exit.void)
      })
  )

  it.live(
    "a pod joining takes counters over while messages flow: every count exact, no message handled twice",
    () =>
      Effect.gen(function* () {
        const cluster = yield* MemoryJournal.makeCluster
        const scope = yield* Scope.make()
        const a = yield* pod(cluster, "a", scope)
        const sender = Effect.forEach(
          Array.from({ length: 600 }, (_, i) => i),
          (i) =>
            Effect.andThen(
              a.sharding.messenger(PersistedCounter).sendDiscard(`c-${i % 12}`)(
                new Increment({ messageId: `m-${i}` })
              ),
              Effect.sleep("1 millis")
            ),
          { concurrency: 4 }
        )
        const sending = yield* Effect.forkChild(sender)
        yield* Effect.sleep("100 millis")
        const b = yield* pod(cluster, "b", scope)
        yield* Fiber.join(sending)
        yield* waitUntil(() => b.membership.pod!.ownedShards().length > 0)
        yield* waitUntil(() => new Set([...a.handled, ...b.handled]).size === 600)
        expect(yield* counts(b.sharding, 12, "b")).toEqual(Array(12).fill(50))
        const all = [...a.handled, ...b.handled].filter((id) => id.startsWith("m-"))
        expect(all.length).toBe(600)
        expect(b.handled.filter((id) => id.startsWith("m-")).length).toBeGreaterThan(0)
        yield* Scope.close(scope, Exit.void)
      })
  )

  it.live(
    "a shard taken from a pod while its entity holds a message: the message is handled once, by the new owner",
    () =>
      Effect.gen(function* () {
        const cluster = yield* MemoryJournal.makeCluster
        const scope = yield* Scope.make()
        const gate = yield* Deferred.make<void>()
        const entered = yield* Deferred.make<void>()
        const a = yield* pod(cluster, "a", scope, (message, podId) =>
          message.messageId === "slow" && podId === "a"
            ? Effect.andThen(Deferred.succeed(entered, undefined), Deferred.await(gate))
            : Effect.void
        )
        yield* waitUntil(() => a.membership.pod!.ownedShards().length === SHARDS)
        const shard = a.membership.shardOf("c-0")
        // The first run of "slow" waits (in a's handler) until after the shard has moved.
        const asking = yield* Effect.forkChild(
          a.sharding.messenger(PersistedCounter).send("c-0")(new Increment({ messageId: "slow" }))
        )
        yield* Deferred.await(entered)
        const b = yield* pod(cluster, "b", scope)
        // The manager moves the shard: a loses it (epoch + 1) while its handler is inside "slow".
        yield* cluster.shards.assign([{ shard, from: "a", to: "b" }])
        yield* Deferred.succeed(gate, undefined)
        yield* Fiber.join(asking)
        yield* waitUntil(() => b.handled.includes("slow"))
        const value = yield* b.sharding.messenger(PersistedCounter).send("c-0")(
          new GetCurrent({ messageId: "g" })
        )
        expect(value).toBe(1)
        yield* Scope.close(scope, Exit.void)
      })
  )

  it.live(
    "a handler whose sleep ends after the process stalled past the pod's lease runs no further line; the message is handled later, once",
    () =>
      Effect.gen(function* () {
        const cluster = yield* MemoryJournal.makeCluster
        const scope = yield* Scope.make()
        const steps: Array<string> = []
        const a = yield* pod(cluster, "a", scope, (message) => {
          if (message.messageId !== "slow" || steps.length > 0) return Effect.void
          steps.push("stalling")
          return Effect.andThen(
            sleepThroughStall(1_000),
            Effect.sync(() => steps.push("after the stall"))
          )
        })
        yield* waitUntil(() => a.membership.pod!.ownedShards().length === SHARDS)
        const counter = a.sharding.messenger(PersistedCounter)
        yield* counter.sendDiscard("c-0")(new Increment({ messageId: "slow" }))
        yield* waitUntil(() => a.handled.includes("slow"), 20_000)
        expect(steps).toEqual(["stalling"])
        expect(yield* counter.send("c-0")(new GetCurrent({ messageId: "g" }))).toBe(1)
        yield* Scope.close(scope, Exit.void)
      }),
    30_000
  )
})

/**
 * A 5 ms sleep (what `Clock.sleep` does: a timer that resumes the fiber) whose timer fires right
 * after the process was blocked synchronously for `blockMillis`: the block is a timer armed just
 * before it with the same delay, and Node runs timers due together in the order they were armed.
 * A 1 s block outlasts the pod's own deadline (TTL 1 s - TTL/5), whenever it last renewed.
 */
const sleepThroughStall = (blockMillis: number) =>
  Effect.callback<void>((resume) => {
    setTimeout(() => {
      const until = performance.now() + blockMillis
      while (performance.now() < until) {
        // the whole process stalls: no timer fires, no renewal is sent
      }
    }, 5)
    const timer = setTimeout(() => resume(Effect.void), 5)
    return Effect.sync(() => clearTimeout(timer))
  })

const waitUntil = (check: () => boolean, timeoutMillis = 10_000) =>
  Effect.gen(function* () {
    const start = Date.now()
    while (!check()) {
      if (Date.now() - start > timeoutMillis) return yield* Effect.die(new Error("condition not met in time"))
      yield* Effect.sleep("10 millis")
    }
  })

describe("one pod per process", () => {
  it.live(
    "an engine beside the entities uses the process's Membership, and says so when given pod options",
    () =>
      Effect.gen(function* () {
        const lines: Array<string> = []
        const logger = Logger.make((options) => {
          lines.push(
            Array.isArray(options.message) ? options.message.map(String).join(" ") : String(options.message)
          )
        })
        const cluster = yield* MemoryJournal.makeCluster
        const storage = Layer.succeedContext(
          Context.make(ShardStore, cluster.shards)
            .pipe(Context.add(EntityStore, cluster.entities))
            .pipe(Context.add(DurableExecutionJournal.DurableExecutionJournal, cluster.journal))
        )
        const layer = Membership.layer({ podId: "shared", ...fast }).pipe(Layer.provideMerge(storage))
        yield* Effect.gen(function* () {
          const engine = yield* WorkflowEngine.makeScoped(Workflow.union(noop), { podId: "ignored" })
          expect(engine.podId()).toBe("shared")
          expect((yield* engine.pods()).map((pod) => pod.podId)).toEqual(["shared"])
        }).pipe(Effect.scoped, Effect.provide(layer), Effect.provide(Logger.layer([logger])))
        expect(
          lines.some((line) => line.includes("podId is ignored") && line.includes("Membership.layer"))
        ).toBe(true)
      })
  )
})

class Noop extends Workflow.TaggedRequest<Noop>()("Noop", {
  payload: { id: Schema.String },
  success: Schema.String,
  failure: Schema.Never
}) {}
const noop = Workflow.make(
  Noop,
  (request) => request.id,
  (request) => Effect.succeed(request.id)
)
