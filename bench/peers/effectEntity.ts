/**
 * The entities benchmark's peer: effect 4.1's own entities (`effect/cluster`'s `Entity`), with the
 * behaviour of our counter (`bench/entities.ts`): `Increment` adds one to the entity's count and
 * replies with nothing, `GetCurrent` replies with the count. The count lives in a `Ref` made when
 * the entity starts (effect's entities are volatile unless their RPCs are `Persisted`).
 *
 * Two ways to run them in one process, both from effect's own test kit, every setting at its
 * default:
 * - `TestRunner.layer`: effect's `Sharding` with its in-memory message and runner storage and no
 *   transport, the runner owning every shard; a client's call goes through `Sharding` to the
 *   entity's mailbox, like a local send in a real cluster (the path our messenger takes);
 * - `Entity.makeTestClient`: an RPC client wired straight to a server per entity, without
 *   `Sharding` (no routing, no shard lookup): a floor under what effect's entities cost.
 *
 * It uses the repository's own copy of effect (4.1.0): nothing to install.
 */
import { Effect, Layer, Ref, Schema, type Scope } from "effect"
import * as Entity from "effect/cluster/Entity"
import * as ShardingConfig from "effect/cluster/ShardingConfig"
import * as TestRunner from "effect/cluster/TestRunner"
import * as Rpc from "effect/rpc/Rpc"

const Increment = Rpc.make("Increment", { payload: { messageId: Schema.String } })
const GetCurrent = Rpc.make("GetCurrent", { payload: { messageId: Schema.String }, success: Schema.Number })

const Counter = Entity.make("Counter", [Increment, GetCurrent])

/** The counter's handlers: a `Ref` per entity, made when the entity starts. */
const CounterLayer = Counter.toLayer(
  Effect.gen(function* () {
    const count = yield* Ref.make(0)
    return Counter.of({
      Increment: () => Ref.update(count, (n) => n + 1),
      GetCurrent: () => Ref.get(count)
    })
  })
)

/** How the bench talks to a counter: ask, fire-and-forget, read. */
export interface CounterClient {
  readonly send: (entityId: string, messageId: string) => Effect.Effect<void>
  readonly sendDiscard: (entityId: string, messageId: string) => Effect.Effect<void>
  readonly get: (entityId: string, messageId: string) => Effect.Effect<number>
}

/** effect's entities on `TestRunner.layer` (effect's `Sharding`, in-memory storage), until the scope closes. */
export const viaSharding: Effect.Effect<CounterClient, never, Scope.Scope> = Effect.gen(function* () {
  const context = yield* Layer.build(CounterLayer.pipe(Layer.provideMerge(TestRunner.layer)))
  const makeClient = yield* Effect.provideContext(Counter.client, context)
  return {
    send: (entityId, messageId) => Effect.orDie(makeClient(entityId).Increment({ messageId })),
    sendDiscard: (entityId, messageId) =>
      Effect.orDie(makeClient(entityId).Increment({ messageId }, { discard: true })),
    get: (entityId, messageId) => Effect.orDie(makeClient(entityId).GetCurrent({ messageId }))
  }
})

/** effect's `Entity.makeTestClient`: a client per entity wired to its handlers, without `Sharding`. */
export const viaTestClient: Effect.Effect<CounterClient, never, Scope.Scope> = Effect.gen(function* () {
  const config = yield* Layer.build(ShardingConfig.layer())
  const makeClient = yield* Effect.provideContext(Entity.makeTestClient(Counter, CounterLayer), config)
  // A client per entity, made once (makeTestClient keeps them; this skips its lookup per call).
  const clients = new Map<string, Effect.Success<ReturnType<typeof makeClient>>>()
  const clientOf = (entityId: string) =>
    Effect.suspend(() => {
      const known = clients.get(entityId)
      if (known !== undefined) return Effect.succeed(known)
      return Effect.tap(makeClient(entityId), (client) => Effect.sync(() => clients.set(entityId, client)))
    })
  return {
    send: (entityId, messageId) =>
      Effect.flatMap(clientOf(entityId), (client) => Effect.orDie(client.Increment({ messageId }))),
    sendDiscard: (entityId, messageId) =>
      Effect.flatMap(clientOf(entityId), (client) =>
        Effect.orDie(client.Increment({ messageId }, { discard: true }))
      ),
    get: (entityId, messageId) =>
      Effect.flatMap(clientOf(entityId), (client) => Effect.orDie(client.GetCurrent({ messageId })))
  }
})
