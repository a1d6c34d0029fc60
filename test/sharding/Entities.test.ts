/**
 * Entities in one process (every shard here): the talk's counter, persisted state across
 * passivation and restarts, exactly-once by message id, ordering, dead letters, bad input.
 * Entities across real processes, with SIGKILL and rebalancing, are in `test/cluster/`.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Layer, Logger, Option, Ref, Schema, Scope } from "effect"
import * as EntityErrors from "../../src/sharding/EntityErrors.ts"
import type { EntityStore } from "../../src/sharding/EntityStore.ts"
import * as Message from "../../src/sharding/Message.ts"
import * as MessageState from "../../src/sharding/MessageState.ts"
import * as RecipientBehaviour from "../../src/sharding/RecipientBehaviour.ts"
import * as RecipientType from "../../src/sharding/RecipientType.ts"
import * as ShardId from "../../src/sharding/ShardId.ts"
import * as Sharding from "../../src/sharding/Sharding.ts"
import * as MemoryEntityStore from "../../src/storage/memory/MemoryEntityStore.ts"
import {
  CounterEntity,
  counterBehaviour,
  Decrement,
  GetCurrent,
  Increment,
  PersistedCounter,
  singleProcess
} from "./fixtures/counter.ts"

/** Runs `program` with a sharding on `store` whose lifetime is the program's. */
const withSharding = <A, E>(
  program: Effect.Effect<A, E, Sharding.Sharding>,
  store: EntityStore["Service"] = MemoryEntityStore.make(),
  options?: Sharding.ShardingOptions
) => Effect.provide(program, singleProcess(store, options))

describe("the talk's counter", () => {
  it.live("counts increments and decrements per entity, and GetCurrent replies with the count", () =>
    withSharding(
      Effect.gen(function* () {
        yield* Sharding.registerEntity(CounterEntity)(counterBehaviour())
        const counter = yield* Sharding.messenger(CounterEntity)
        for (let i = 0; i < 5; i++)
          yield* counter.sendDiscard("a")(new Increment({ messageId: `a-inc-${i}` }))
        yield* counter.sendDiscard("a")(new Decrement({ messageId: "a-dec" }))
        yield* counter.sendDiscard("b")(new Decrement({ messageId: "b-dec" }))
        const a: number = yield* counter.send("a")(new GetCurrent({ messageId: "a-get" }))
        const b = yield* counter.send("b")(new GetCurrent({ messageId: "b-get" }))
        expect([a, b]).toEqual([4, -1])
      })
    )
  )

  it.live("handles different entities concurrently, one message at a time per entity, in arrival order", () =>
    withSharding(
      Effect.gen(function* () {
        const gate = yield* Deferred.make<void>()
        const entered = yield* Deferred.make<void>()
        const seen: Array<string> = []
        let inside = 0
        let maxInside = 0
        const Ordered = RecipientType.makeEntityType(
          "Ordered",
          Schema.Struct({ id: Schema.String, wait: Schema.Boolean }),
          (_) => _.id
        )
        yield* Sharding.registerEntity(Ordered)(
          RecipientBehaviour.fromFunctionEffect((entityId, message) =>
            Effect.gen(function* () {
              inside++
              maxInside = Math.max(maxInside, inside)
              if (message.wait) {
                yield* Deferred.succeed(entered, undefined)
                yield* Deferred.await(gate)
              }
              seen.push(`${entityId}:${message.id}`)
              inside--
              return MessageState.Processed(Option.none())
            })
          )
        )
        const ordered = yield* Sharding.messenger(Ordered)
        // x is blocked on its first message; its next 20 wait behind it, while y goes on.
        const blocked = yield* Effect.forkChild(ordered.send("x")({ id: "x-0", wait: true }))
        yield* Deferred.await(entered)
        for (let i = 1; i <= 20; i++) yield* ordered.sendDiscard("x")({ id: `x-${i}`, wait: false })
        yield* ordered.send("y")({ id: "y-0", wait: false })
        expect(seen).toEqual(["y:y-0"])
        yield* Deferred.succeed(gate, undefined)
        yield* Fiber.join(blocked)
        yield* ordered.send("x")({ id: "x-last", wait: false })
        expect(seen.filter((s) => s.startsWith("x:"))).toEqual([
          ...Array.from({ length: 21 }, (_, i) => `x:x-${i}`),
          "x:x-last"
        ])
        expect(maxInside).toBe(2)
      })
    )
  )
})

describe("persisted entities", () => {
  it.live("keep their state across passivation and a restart of the sharding", () =>
    Effect.gen(function* () {
      const store = MemoryEntityStore.make()
      const session = (n: number) =>
        withSharding(
          Effect.gen(function* () {
            yield* Sharding.registerEntity(PersistedCounter, { passivateAfter: "20 millis" })(
              counterBehaviour()
            )
            const counter = yield* Sharding.messenger(PersistedCounter)
            for (let i = 0; i < 3; i++) {
              yield* counter.sendDiscard("p")(new Increment({ messageId: `s${n}-inc-${i}` }))
            }
            const before = yield* counter.send("p")(new GetCurrent({ messageId: `s${n}-get-1` }))
            // Passivated (idle), then started again by the next message: the state is loaded.
            yield* Effect.sleep("200 millis")
            const sharding = yield* Sharding.Sharding
            expect(sharding.activeEntities(PersistedCounter)).toBe(0)
            const after = yield* counter.send("p")(new GetCurrent({ messageId: `s${n}-get-2` }))
            return [before, after]
          }),
          store
        )
      expect(yield* session(1)).toEqual([3, 3])
      expect(yield* session(2)).toEqual([6, 6])
      expect(JSON.parse((yield* store.state({ entityType: "PersistedCounter", entityId: "p" }))!)).toBe(6)
    })
  )

  it.live("a resent message id returns the first reply without running the handler again", () =>
    Effect.gen(function* () {
      const store = MemoryEntityStore.make()
      let handled = 0
      const run = withSharding(
        Effect.gen(function* () {
          yield* Sharding.registerEntity(PersistedCounter)(counterBehaviour(() => handled++))
          const counter = yield* Sharding.messenger(PersistedCounter)
          yield* counter.sendDiscard("c")(new Increment({ messageId: "inc-1" }))
          yield* counter.sendDiscard("c")(new Increment({ messageId: "inc-1" }))
          const first = yield* counter.send("c")(new GetCurrent({ messageId: "get-1" }))
          yield* counter.sendDiscard("c")(new Increment({ messageId: "inc-2" }))
          const again = yield* counter.send("c")(new GetCurrent({ messageId: "get-1" }))
          return [first, again]
        }),
        store
      )
      expect(yield* run).toEqual([1, 1])
      expect(handled).toBe(3)
      // After a restart too: the stored reply, no handler run.
      const afterRestart = yield* withSharding(
        Effect.gen(function* () {
          yield* Sharding.registerEntity(PersistedCounter)(counterBehaviour(() => handled++))
          const counter = yield* Sharding.messenger(PersistedCounter)
          yield* counter.sendDiscard("c")(new Increment({ messageId: "inc-2" }))
          return yield* counter.send("c")(new GetCurrent({ messageId: "get-1" }))
        }),
        store
      )
      expect(afterRestart).toBe(1)
      expect(handled).toBe(3)
    })
  )
})

class Charge extends Message.TaggedRequest<Charge>()("Charge", {
  failure: Schema.String,
  success: Schema.Number,
  payload: { messageId: Schema.String, amount: Schema.Number.check(Schema.isGreaterThan(0)) }
}) {}
const Wallet = RecipientType.makeEntityType("Wallet", Charge, (_) => _.messageId, {
  state: Schema.Struct({ balance: Schema.Number }),
  maxMessageBytes: 200
})

describe("failures", () => {
  it.live(
    "a request's typed failure reaches the sender; a failing handler's message is dead-lettered and the entity goes on",
    () =>
      withSharding(
        Effect.gen(function* () {
          let broken = true
          let attempts = 0
          yield* Sharding.registerEntity(Wallet, { maxAttempts: 3, retryDelay: "1 millis" })(
            RecipientBehaviour.fromFunctionEffectStateful(
              () => Effect.succeed({ balance: 10 }),
              (_, charge, state) =>
                Effect.gen(function* () {
                  if (charge.amount === 13) {
                    attempts++
                    yield* Ref.update(state, (s) => ({ balance: s.balance - 13 }))
                    if (broken) return yield* Effect.fail("the bank is down")
                  }
                  const { balance } = yield* Ref.get(state)
                  if (charge.amount > balance)
                    return MessageState.Processed(Option.some(Exit.fail("insufficient funds")))
                  yield* Ref.set(state, { balance: balance - charge.amount })
                  return MessageState.Processed(Option.some(Exit.succeed(balance - charge.amount)))
                })
            )
          )
          const wallet = yield* Sharding.messenger(Wallet)
          expect(yield* wallet.send("w")(new Charge({ messageId: "c1", amount: 4 }))).toBe(6)
          const refused = yield* Effect.flip(wallet.send("w")(new Charge({ messageId: "c2", amount: 7 })))
          expect(refused).toBe("insufficient funds")
          const dead = yield* Effect.flip(wallet.send("w")(new Charge({ messageId: "c3", amount: 13 })))
          expect(dead).toBeInstanceOf(EntityErrors.MessageDeadLetteredError)
          expect(attempts).toBe(3)
          // The failed attempts left the balance as it was; the entity goes on.
          expect(yield* wallet.send("w")(new Charge({ messageId: "c4", amount: 1 }))).toBe(5)
          const sharding = yield* Sharding.Sharding
          const letters = yield* sharding.deadLetters({ entityType: "Wallet" })
          expect(letters.map((l) => [l.entityId, l.messageId])).toEqual([["w", "c3"]])
          expect(letters[0]!.error).toContain("the bank is down")
          // Fixed, then replayed: handled once more, and its reply is the stored one from then on.
          broken = false
          expect(
            yield* sharding.replayDeadLetter({ entityType: "Wallet", entityId: "w", messageId: "c3" })
          ).toBe(true)
          expect(yield* sharding.deadLetters({ entityType: "Wallet" })).toEqual([])
          yield* Effect.sleep("300 millis")
          expect(attempts).toBe(4)
          // c3 took 13 (the balance is -8 now): the next charge is refused.
          expect(yield* Effect.flip(wallet.send("w")(new Charge({ messageId: "c5", amount: 1 })))).toBe(
            "insufficient funds"
          )
        })
      )
  )

  it.live("a fresh entity's failing first message leaves the state it started with", () =>
    withSharding(
      Effect.gen(function* () {
        yield* Sharding.registerEntity(Wallet, { maxAttempts: 2, retryDelay: "1 millis" })(
          RecipientBehaviour.fromFunctionEffectStateful(
            () => Effect.succeed({ balance: 10 }),
            (_, charge, state) =>
              Effect.gen(function* () {
                const { balance } = yield* Ref.updateAndGet(state, (s) => ({
                  balance: s.balance - charge.amount
                }))
                if (charge.amount === 13) return yield* Effect.fail("the bank is down")
                return MessageState.Processed(Option.some(Exit.succeed(balance)))
              })
          )
        )
        const wallet = yield* Sharding.messenger(Wallet)
        const dead = yield* Effect.flip(wallet.send("fresh")(new Charge({ messageId: "c1", amount: 13 })))
        expect(dead).toBeInstanceOf(EntityErrors.MessageDeadLetteredError)
        expect(yield* wallet.send("fresh")(new Charge({ messageId: "c2", amount: 1 }))).toBe(9)
      })
    )
  )

  it.live("bad input: each a typed error naming the type, the id and the field; nothing stored", () =>
    Effect.gen(function* () {
      const store = MemoryEntityStore.make()
      yield* withSharding(
        Effect.gen(function* () {
          yield* Sharding.registerEntity(Wallet)(
            RecipientBehaviour.fromFunctionEffectStateful(
              () => Effect.succeed({ balance: 1 }),
              () => Effect.succeed(MessageState.Processed(Option.some(Exit.succeed(0))))
            )
          )
          const wallet = yield* Sharding.messenger(Wallet)
          const malformed = yield* Effect.flip(
            wallet.send("w")(new Charge({ messageId: "m", amount: -1 }, { disableChecks: true }))
          )
          expect(malformed).toBeInstanceOf(EntityErrors.MalformedMessageError)
          expect(malformed).toMatchObject({ entityType: "Wallet", entityId: "w", path: '["amount"]' })
          const large = yield* Effect.flip(
            wallet.send("w")(new Charge({ messageId: "x".repeat(300), amount: 1 }))
          )
          expect(large).toMatchObject({ _tag: "MessageTooLargeError", entityType: "Wallet", limit: 200 })
          const badId = yield* Effect.flip(wallet.send("")(new Charge({ messageId: "m", amount: 1 })))
          expect(badId).toMatchObject({ _tag: "InvalidEntityIdError", entityType: "Wallet" })
          const unknown = yield* Effect.flip(
            (yield* Sharding.messenger(CounterEntity)).send("a")(new GetCurrent({ messageId: "g" }))
          )
          expect(unknown).toMatchObject({ _tag: "UnknownEntityTypeError", entityType: "Counter" })
        }),
        store
      )
      expect(yield* store.outcomes([{ entityType: "Wallet", entityId: "w", messageId: "m" }])).toEqual([
        undefined
      ])
      expect(yield* store.outcomes([{ entityType: "Counter", entityId: "a", messageId: "g" }])).toEqual([
        undefined
      ])
    })
  )

  it.live("a stored state that no longer decodes stops only that entity, and is kept", () =>
    Effect.gen(function* () {
      const store = MemoryEntityStore.make()
      yield* store.complete([
        {
          entityType: "Wallet",
          entityId: "old",
          messageId: "seed",
          fence: undefined,
          shard: 1,
          payload: "{}",
          reply: null,
          state: JSON.stringify({ cents: 100 }),
          now: 0
        }
      ])
      yield* withSharding(
        Effect.gen(function* () {
          yield* Sharding.registerEntity(Wallet)(
            RecipientBehaviour.fromFunctionEffectStateful(
              () => Effect.succeed({ balance: 3 }),
              (_, _charge, state) =>
                Effect.map(Ref.get(state), (s) =>
                  MessageState.Processed(Option.some(Exit.succeed(s.balance)))
                )
            )
          )
          const wallet = yield* Sharding.messenger(Wallet)
          const error = yield* Effect.flip(wallet.send("old")(new Charge({ messageId: "q1", amount: 1 })))
          expect(error).toBeInstanceOf(EntityErrors.EntityStateDecodeError)
          expect(error).toMatchObject({ entityType: "Wallet", entityId: "old", path: '["balance"]' })
          expect(yield* wallet.send("new")(new Charge({ messageId: "q2", amount: 1 }))).toBe(3)
        }),
        store
      )
      expect(yield* store.state({ entityType: "Wallet", entityId: "old" })).toBe(
        JSON.stringify({ cents: 100 })
      )
    })
  )

  it.live(
    "a stored message that no longer decodes is dead-lettered with the reason, not deleted; the entity goes on",
    () =>
      Effect.gen(function* () {
        const store = MemoryEntityStore.make()
        // Stored by an older version of the type (no amount), for shard 1..16 of this process.
        yield* store.enqueue([
          {
            entityType: "Wallet",
            entityId: "w",
            messageId: "old-1",
            shard: ShardId.shardOf("w", 16),
            payload: JSON.stringify({ _tag: "Charge", messageId: "old-1", cents: 5 }),
            now: 0
          }
        ])
        yield* withSharding(
          Effect.gen(function* () {
            yield* Sharding.registerEntity(Wallet)(
              RecipientBehaviour.fromFunctionEffectStateful(
                () => Effect.succeed({ balance: 3 }),
                (_, charge, state) =>
                  Effect.map(
                    Ref.updateAndGet(state, (s) => ({ balance: s.balance - charge.amount })),
                    (s) => MessageState.Processed(Option.some(Exit.succeed(s.balance)))
                  )
              )
            )
            const sharding = yield* Sharding.Sharding
            let letters: ReadonlyArray<{
              readonly messageId: string
              readonly error: string
              readonly payload: string
            }> = []
            for (let i = 0; i < 50 && letters.length === 0; i++) {
              yield* Effect.sleep("20 millis")
              letters = yield* sharding.deadLetters({ entityType: "Wallet" })
            }
            expect(letters.map((l) => l.messageId)).toEqual(["old-1"])
            expect(letters[0]!.error).toContain('["amount"]')
            expect(JSON.parse(letters[0]!.payload)).toEqual({ _tag: "Charge", messageId: "old-1", cents: 5 })
            const wallet = yield* Sharding.messenger(Wallet)
            expect(yield* wallet.send("w")(new Charge({ messageId: "new-1", amount: 1 }))).toBe(2)
          }),
          store
        )
      })
  )

  it.live(
    "stored messages their entity must not see are dead-lettered with the reason: a bad id, too large, another message's id, the wrong shard",
    () =>
      Effect.gen(function* () {
        const store = MemoryEntityStore.make()
        const charge = (messageId: string, extra: Record<string, unknown> = {}) =>
          JSON.stringify({ _tag: "Charge", messageId, amount: 1, ...extra })
        const row = (
          entityId: string,
          messageId: string,
          payload: string,
          shard = ShardId.shardOf(entityId, 16)
        ) => ({
          entityType: "Wallet",
          entityId,
          messageId,
          shard,
          payload,
          now: 0
        })
        // What a hand edit, a buggy older version or a hostile writer of the store leaves.
        yield* store.enqueue([
          row("", "empty-id", charge("empty-id")),
          row("w", "too-large", charge("too-large", { junk: "j".repeat(300) })),
          row("w", "replayed", charge("c-1")),
          row("w", "wrong-shard", charge("wrong-shard"), (ShardId.shardOf("w", 16) % 16) + 1),
          row("w", "fine", charge("fine"))
        ])
        const letters = yield* withSharding(
          Effect.gen(function* () {
            yield* Sharding.registerEntity(Wallet)(
              RecipientBehaviour.fromFunctionEffectStateful(
                () => Effect.succeed({ balance: 10 }),
                (_, charge, state) =>
                  Effect.map(
                    Ref.updateAndGet(state, (s) => ({ balance: s.balance - charge.amount })),
                    (s) => MessageState.Processed(Option.some(Exit.succeed(s.balance)))
                  )
              )
            )
            const sharding = yield* Sharding.Sharding
            let letters: ReadonlyArray<{ readonly messageId: string; readonly error: string }> = []
            for (let i = 0; i < 100 && letters.length < 4; i++) {
              yield* Effect.sleep("20 millis")
              letters = yield* sharding.deadLetters({ entityType: "Wallet" })
            }
            // Only the well-formed one was processed: the balance went down once.
            const wallet = yield* Sharding.messenger(Wallet)
            expect(yield* wallet.send("w")(new Charge({ messageId: "after", amount: 1 }))).toBe(8)
            return letters
          }),
          store
        )
        const reasons = Object.fromEntries(letters.map((letter) => [letter.messageId, letter.error]))
        expect(Object.keys(reasons).sort()).toEqual(["empty-id", "replayed", "too-large", "wrong-shard"])
        expect(reasons["empty-id"]).toContain("is not an id of a Wallet entity")
        expect(reasons["too-large"]).toContain("over the type's limit of 200 (maxMessageBytes)")
        expect(reasons.replayed).toContain(`the message's own id is "c-1", but it came as message "replayed"`)
        expect(reasons["wrong-shard"]).toContain("is stored under shard")
      })
  )

  it.live(
    "send times out with a typed error while the handler answers Processing; a later delivery replies",
    () =>
      withSharding(
        Effect.gen(function* () {
          let ready = false
          let deliveries = 0
          const Slow = RecipientType.makeEntityType("Slow", GetCurrent, (_) => _.messageId, {
            persisted: true
          })
          yield* Sharding.registerEntity(Slow, { redeliverAfter: "20 millis" })(
            RecipientBehaviour.fromFunctionEffect(() =>
              Effect.sync(() => {
                deliveries++
                return ready ? MessageState.Processed(Option.some(Exit.succeed(42))) : MessageState.Processing
              })
            )
          )
          const slow = yield* Sharding.messenger(Slow, { timeout: "150 millis" })
          const timeout = yield* Effect.flip(slow.send("s")(new GetCurrent({ messageId: "g" })))
          expect(timeout).toMatchObject({ _tag: "MessageTimeoutError", entityType: "Slow", messageId: "g" })
          expect(deliveries).toBeGreaterThan(2)
          ready = true
          expect(yield* slow.send("s")(new GetCurrent({ messageId: "g" }))).toBe(42)
        })
      )
  )
})

describe("stopping", () => {
  it.live(
    "a handler that does not end when interrupted holds the sharding's stop back only until its shutdown timeout, and is named",
    () =>
      Effect.gen(function* () {
        const lines: Array<string> = []
        const logger = Logger.make(({ message }) => {
          lines.push(Array.isArray(message) ? message.map(String).join(" ") : String(message))
        })
        const Stubborn = RecipientType.makeEntityType(
          "Stubborn",
          Schema.Struct({ id: Schema.String }),
          (_) => _.id
        )
        const entered = yield* Deferred.make<void>()
        const scope = yield* Scope.make()
        const context = yield* Layer.buildWithScope(
          singleProcess(MemoryEntityStore.make(), { shutdownTimeout: "300 millis" }).pipe(
            Layer.provideMerge(Logger.layer([logger]))
          ),
          scope
        )
        yield* Effect.gen(function* () {
          yield* Sharding.registerEntity(Stubborn)(
            RecipientBehaviour.fromFunctionEffect(() =>
              Effect.andThen(
                Deferred.succeed(entered, undefined),
                Effect.uninterruptible(Effect.sleep("1 hour"))
              ).pipe(Effect.as(MessageState.Processed(Option.none())))
            )
          )
          const stubborn = yield* Sharding.messenger(Stubborn)
          yield* stubborn.sendDiscard("s")({ id: "m-1" })
        }).pipe(Effect.provide(context))
        yield* Deferred.await(entered)
        // Without the bound, closing waits for the hour (the test's own timeout fails first).
        yield* Scope.close(scope, Exit.void)
        expect(
          lines.some((line) => line.includes("entities of Stubborn had not stopped within 300 ms"))
        ).toBe(true)
      })
  )
})
