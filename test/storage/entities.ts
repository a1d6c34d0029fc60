/**
 * The entity store contract, run on every backend (memory with ownership, SQLite, PostgreSQL):
 * messages stored once per key (a retry gets the first outcome), the owner's completions with their
 * reply and the entity's state in one write, fencing by the shard's epoch (a stale item writes
 * nothing, and does not stop the others of its batch), dead letters and their replay, `pending`
 * paging, purging, persistence, and concurrent writers.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, type Scope } from "effect"
import type {
  Completion,
  DeadLetterWrite,
  EntityFence,
  MessageKey,
  NewMessage
} from "../../src/sharding/EntityStore.ts"
import type { Backend, Cluster, Storage } from "./backends.ts"
import { registerPod } from "./ownership.ts"

const key = (messageId: string, entityId = "cart-1", entityType = "Cart"): MessageKey => ({
  entityType,
  entityId,
  messageId
})

const message = (messageId: string, options: Partial<NewMessage> = {}): NewMessage => ({
  ...key(messageId),
  shard: 1,
  payload: JSON.stringify({ add: messageId }),
  now: 1_000,
  ...options
})

const completion = (messageId: string, options: Partial<Completion> = {}): Completion => ({
  ...key(messageId),
  fence: undefined,
  shard: 1,
  payload: JSON.stringify({ add: messageId }),
  reply: JSON.stringify({ ok: messageId }),
  state: undefined,
  now: 2_000,
  ...options
})

const deadLetter = (messageId: string, options: Partial<DeadLetterWrite> = {}): DeadLetterWrite => ({
  ...key(messageId),
  fence: undefined,
  shard: 1,
  payload: JSON.stringify({ add: messageId }),
  error: `handler failed on ${messageId}`,
  now: 3_000,
  ...options
})

const STORED = { _tag: "Stored" } as const
const WRITTEN = { _tag: "Written" } as const
const PENDING = { status: "pending" } as const

/** All pending messages of `shards`, by seq. */
const allPending = (entities: Cluster["entities"], shards: ReadonlyArray<number> = [1, 2, 3, 4]) =>
  entities.pending({ shards, afterSeq: 0, limit: 1_000 })

/** Declares the entity store cases for `backend`. */
export const entities = (backend: Backend) =>
  describe(`entity store conformance: ${backend.name}`, () => {
    /** Runs `f` with fresh storage and a journal, shard store and entity store open on it. */
    const withCluster = <A, E>(f: (cluster: Cluster, storage: Storage) => Effect.Effect<A, E, Scope.Scope>) =>
      Effect.scoped(
        Effect.gen(function* () {
          const storage = yield* backend.storage
          return yield* f(yield* storage.openCluster, storage)
        })
      )

    /** Four shards, all owned by pod "a" (epoch 1 each). */
    const owningAll = ({ shards }: Cluster) =>
      Effect.gen(function* () {
        yield* shards.init(4)
        yield* registerPod(shards, "a")
        yield* shards.assign([1, 2, 3, 4].map((shard) => ({ shard, from: null, to: "a" })))
      })

    describe("enqueue", () => {
      it.live("stores a message pending once; again, it is Known with its outcome so far", () =>
        withCluster(({ entities }) =>
          Effect.gen(function* () {
            expect(yield* entities.outcomes([key("m1")])).toEqual([undefined])
            expect(yield* entities.enqueue([message("m1")])).toEqual([STORED])
            expect(yield* entities.outcomes([key("m1")])).toEqual([PENDING])
            const [stored] = yield* allPending(entities)
            expect(stored).toMatchObject({
              ...key("m1"),
              shard: 1,
              payload: JSON.stringify({ add: "m1" }),
              createdAt: 1_000
            })
            // A retry, with another payload: nothing written.
            expect(yield* entities.enqueue([message("m1", { payload: "{}" })])).toEqual([
              { _tag: "Known", outcome: PENDING }
            ])
            expect(yield* allPending(entities)).toEqual([stored])
            yield* entities.complete([completion("m1")])
            expect(yield* entities.enqueue([message("m1")])).toEqual([
              { _tag: "Known", outcome: { status: "processed", reply: JSON.stringify({ ok: "m1" }) } }
            ])
            expect(yield* allPending(entities)).toEqual([])
          })
        )
      )

      it.live("one call: a result per message in order, a duplicate in the call is Known pending", () =>
        withCluster(({ entities }) =>
          Effect.gen(function* () {
            yield* entities.enqueue([message("m0")])
            expect(
              yield* entities.enqueue([message("m1"), message("m0"), message("m2"), message("m1")])
            ).toEqual([
              STORED,
              { _tag: "Known", outcome: PENDING },
              STORED,
              { _tag: "Known", outcome: PENDING }
            ])
            expect((yield* allPending(entities)).map((stored) => stored.messageId)).toEqual([
              "m0",
              "m1",
              "m2"
            ])
            expect(
              yield* entities.outcomes([key("m2"), key("nope"), key("m0"), key("m0", "cart-2")])
            ).toEqual([PENDING, undefined, PENDING, undefined])
            expect(yield* entities.outcomes([])).toEqual([])
            expect(yield* entities.enqueue([])).toEqual([])
          })
        )
      )

      it.live("payloads, replies and states are kept as given (unicode, quotes, backslashes, 100 kB)", () =>
        withCluster(({ entities }) =>
          Effect.gen(function* () {
            const odd = JSON.stringify({
              text: 'é漢字🙂 "quoted" \\ back\\slash \n line',
              big: "x".repeat(100_000)
            })
            yield* entities.enqueue([message("m1", { payload: odd })])
            expect((yield* allPending(entities))[0]?.payload).toBe(odd)
            yield* entities.complete([completion("m1", { reply: odd, state: odd })])
            expect(yield* entities.outcomes([key("m1")])).toEqual([{ status: "processed", reply: odd }])
            expect(yield* entities.state({ entityType: "Cart", entityId: "cart-1" })).toBe(odd)
          })
        )
      )
    })

    describe("complete", () => {
      it.live("marks a pending message processed with its reply and writes the entity's state", () =>
        withCluster(({ entities }) =>
          Effect.gen(function* () {
            const cart = { entityType: "Cart", entityId: "cart-1" }
            expect(yield* entities.state(cart)).toBeUndefined()
            yield* entities.enqueue([message("m1"), message("m2")])
            expect(yield* entities.complete([completion("m1", { state: '{"items":1}' })])).toEqual([WRITTEN])
            expect(yield* entities.state(cart)).toBe('{"items":1}')
            expect(yield* entities.state({ entityType: "Cart", entityId: "cart-2" })).toBeUndefined()
            expect(yield* entities.state({ entityType: "Wishlist", entityId: "cart-1" })).toBeUndefined()
            // No state: the stored one stays; a null reply is kept as null.
            expect(yield* entities.complete([completion("m2", { reply: null })])).toEqual([WRITTEN])
            expect(yield* entities.state(cart)).toBe('{"items":1}')
            expect(yield* entities.outcomes([key("m1"), key("m2")])).toEqual([
              { status: "processed", reply: JSON.stringify({ ok: "m1" }) },
              { status: "processed", reply: null }
            ])
            expect(yield* allPending(entities)).toEqual([])
          })
        )
      )

      it.live("a message with no row is inserted processed", () =>
        withCluster(({ entities }) =>
          Effect.gen(function* () {
            expect(yield* entities.complete([completion("direct", { state: "1" })])).toEqual([WRITTEN])
            expect(yield* entities.outcomes([key("direct")])).toEqual([
              { status: "processed", reply: JSON.stringify({ ok: "direct" }) }
            ])
            expect(yield* entities.state({ entityType: "Cart", entityId: "cart-1" })).toBe("1")
            expect(yield* allPending(entities)).toEqual([])
            expect(yield* entities.enqueue([message("direct")])).toEqual([
              { _tag: "Known", outcome: { status: "processed", reply: JSON.stringify({ ok: "direct" }) } }
            ])
          })
        )
      )

      it.live("a processed or dead message is AlreadyDone: nothing written, not even the state", () =>
        withCluster(({ entities }) =>
          Effect.gen(function* () {
            const cart = { entityType: "Cart", entityId: "cart-1" }
            yield* entities.enqueue([message("m1"), message("m2")])
            yield* entities.complete([completion("m1", { reply: '"first"', state: "first" })])
            yield* entities.deadLetter([deadLetter("m2")])
            expect(
              yield* entities.complete([
                completion("m1", { reply: '"second"', state: "second", now: 9_000 }),
                completion("m2", { state: "third" })
              ])
            ).toEqual([
              { _tag: "AlreadyDone", outcome: { status: "processed", reply: '"first"' } },
              { _tag: "AlreadyDone", outcome: { status: "dead", error: "handler failed on m2" } }
            ])
            expect(yield* entities.deadLetter([deadLetter("m1", { error: "late" })])).toEqual([
              { _tag: "AlreadyDone", outcome: { status: "processed", reply: '"first"' } }
            ])
            expect(yield* entities.state(cart)).toBe("first")
            expect(yield* entities.outcomes([key("m1"), key("m2")])).toEqual([
              { status: "processed", reply: '"first"' },
              { status: "dead", error: "handler failed on m2" }
            ])
            // Still processed at its first time: a purge at 5,000 takes it.
            expect(yield* entities.purge(5_000)).toBe(1)
          })
        )
      )

      it.live("several writes of one entity or one message in a call apply in order", () =>
        withCluster(({ entities }) =>
          Effect.gen(function* () {
            const cart = { entityType: "Cart", entityId: "cart-1" }
            yield* entities.enqueue([message("m1"), message("m2"), message("m3")])
            expect(
              yield* entities.complete([
                completion("m1", { state: "after m1" }),
                completion("m2", { state: "after m2" }),
                completion("m1", { reply: '"again"', state: "m1 again" }),
                completion("m3")
              ])
            ).toEqual([
              WRITTEN,
              WRITTEN,
              { _tag: "AlreadyDone", outcome: { status: "processed", reply: JSON.stringify({ ok: "m1" }) } },
              WRITTEN
            ])
            expect(yield* entities.state(cart)).toBe("after m2")
          })
        )
      )
    })

    describe("fencing", () => {
      it.live("a write at the shard's epoch passes; a stale one writes nothing and gets the epoch", () =>
        withCluster((cluster) =>
          Effect.gen(function* () {
            const { entities } = cluster
            yield* owningAll(cluster)
            const current: EntityFence = { shard: 1, epoch: 1 }
            const stale: EntityFence = { shard: 1, epoch: 0 }
            yield* entities.enqueue([message("m1"), message("m2")])
            expect(
              yield* entities.complete([
                completion("m1", { fence: stale, state: "stale" }),
                completion("m2", { fence: current, state: "current" })
              ])
            ).toEqual([{ _tag: "Stale", currentEpoch: 1 }, WRITTEN])
            expect(yield* entities.outcomes([key("m1"), key("m2")])).toEqual([
              PENDING,
              { status: "processed", reply: JSON.stringify({ ok: "m2" }) }
            ])
            expect(yield* entities.state({ entityType: "Cart", entityId: "cart-1" })).toBe("current")
            expect(yield* entities.deadLetter([deadLetter("m1", { fence: stale })])).toEqual([
              { _tag: "Stale", currentEpoch: 1 }
            ])
            // A stale write of a message with no row inserts nothing.
            expect(yield* entities.complete([completion("m9", { fence: stale })])).toEqual([
              { _tag: "Stale", currentEpoch: 1 }
            ])
            expect(yield* entities.outcomes([key("m1"), key("m9")])).toEqual([PENDING, undefined])
            // A shard with no row has no epoch.
            expect(yield* entities.complete([completion("m1", { fence: { shard: 99, epoch: 0 } })])).toEqual([
              { _tag: "Stale", currentEpoch: null }
            ])
          })
        )
      )

      it.live("concurrent writes: the stale one is refused, the others of its batch commit", () =>
        withCluster((cluster) =>
          Effect.gen(function* () {
            const { entities } = cluster
            yield* owningAll(cluster)
            const ids = Array.from({ length: 20 }, (_, i) => `m${i}`)
            yield* entities.enqueue(ids.map((id) => message(id, { ...key(id, `cart-${id}`) })))
            const results = yield* Effect.forEach(
              ids,
              (id, i) =>
                entities.complete([
                  completion(id, {
                    ...key(id, `cart-${id}`),
                    fence: { shard: 1, epoch: i === 7 ? 0 : 1 },
                    state: `state ${id}`
                  })
                ]),
              { concurrency: "unbounded" }
            )
            expect(results.flat()).toEqual(
              ids.map((_, i) => (i === 7 ? { _tag: "Stale", currentEpoch: 1 } : WRITTEN))
            )
            expect(yield* entities.outcomes(ids.map((id) => key(id, `cart-${id}`)))).toEqual(
              ids.map((id, i) =>
                i === 7 ? PENDING : { status: "processed", reply: JSON.stringify({ ok: id }) }
              )
            )
            expect(yield* entities.state({ entityType: "Cart", entityId: "cart-m7" })).toBeUndefined()
            expect(yield* entities.state({ entityType: "Cart", entityId: "cart-m8" })).toBe("state m8")
            if (entities.stats !== undefined) {
              // They shared transactions: the stale write did not fail its batch.
              expect(entities.stats.owner.transactions).toBeLessThan(ids.length)
            }
          })
        )
      )

      it.live("once the shard moved to another pod, the old epoch is refused and the new one passes", () =>
        withCluster((cluster) =>
          Effect.gen(function* () {
            const { entities, shards } = cluster
            yield* owningAll(cluster)
            yield* registerPod(shards, "b")
            yield* entities.enqueue([message("m1"), message("m2")])
            expect(yield* entities.complete([completion("m1", { fence: { shard: 1, epoch: 1 } })])).toEqual([
              WRITTEN
            ])
            expect(yield* shards.release("a", 1, 1)).toBe(true)
            yield* shards.assign([{ shard: 1, from: null, to: "b" }])
            const epoch = (yield* shards.shards).find((record) => record.shard === 1)!.epoch
            expect(epoch).toBe(3)
            expect(
              yield* entities.complete([
                completion("m2", { fence: { shard: 1, epoch: 1 }, state: "old owner" })
              ])
            ).toEqual([{ _tag: "Stale", currentEpoch: 3 }])
            expect(yield* entities.state({ entityType: "Cart", entityId: "cart-1" })).toBeUndefined()
            expect(
              yield* entities.complete([
                completion("m2", { fence: { shard: 1, epoch: 3 }, state: "new owner" })
              ])
            ).toEqual([WRITTEN])
            expect(yield* entities.state({ entityType: "Cart", entityId: "cart-1" })).toBe("new owner")
          })
        )
      )
    })

    describe("dead letters", () => {
      it.live(
        "deadLetter moves a message aside; replay makes it pending after everything; complete works",
        () =>
          withCluster(({ entities }) =>
            Effect.gen(function* () {
              yield* entities.enqueue([
                message("m1"),
                message("m2"),
                message("m3", { ...key("m3", "x", "Wishlist") })
              ])
              expect(yield* entities.deadLetter([deadLetter("m1")])).toEqual([WRITTEN])
              // A message with no row is inserted dead.
              expect(
                yield* entities.deadLetter([deadLetter("m4", { ...key("m4", "y", "Wishlist"), now: 4_000 })])
              ).toEqual([WRITTEN])
              expect(yield* entities.outcomes([key("m1")])).toEqual([
                { status: "dead", error: "handler failed on m1" }
              ])
              expect((yield* allPending(entities)).map((stored) => stored.messageId)).toEqual(["m2", "m3"])
              expect(yield* entities.deadLetters({ limit: 10 })).toEqual([
                {
                  ...key("m1"),
                  shard: 1,
                  payload: JSON.stringify({ add: "m1" }),
                  error: "handler failed on m1",
                  createdAt: 1_000,
                  deadAt: 3_000,
                  seq: expect.any(Number)
                },
                {
                  ...key("m4", "y", "Wishlist"),
                  shard: 1,
                  payload: JSON.stringify({ add: "m4" }),
                  error: "handler failed on m4",
                  createdAt: 4_000,
                  deadAt: 4_000,
                  seq: expect.any(Number)
                }
              ])
              // Pages: after the seq of the last one seen.
              const [first] = yield* entities.deadLetters({ limit: 1 })
              expect(
                (yield* entities.deadLetters({ afterSeq: first!.seq, limit: 10 })).map((d) => d.messageId)
              ).toEqual(["m4"])
              expect(
                yield* entities.deadLetters({ afterSeq: first!.seq, entityType: "Cart", limit: 10 })
              ).toEqual([])
              expect(
                (yield* entities.deadLetters({ entityType: "Wishlist", limit: 10 })).map((d) => d.messageId)
              ).toEqual(["m4"])
              expect((yield* entities.deadLetters({ limit: 1 })).map((d) => d.messageId)).toEqual(["m1"])
              // Not a dead letter: pending, processed, unknown.
              expect(yield* entities.replay(key("m2"), 5_000)).toBe(false)
              expect(yield* entities.replay(key("nope"), 5_000)).toBe(false)
              const before = yield* allPending(entities)
              expect(yield* entities.replay(key("m1"), 5_000)).toBe(true)
              expect(yield* entities.replay(key("m1"), 5_000)).toBe(false)
              const after = yield* allPending(entities)
              expect(after.map((stored) => stored.messageId)).toEqual(["m2", "m3", "m1"])
              const replayed = after[2]!
              expect(replayed.seq).toBeGreaterThan(Math.max(...before.map((stored) => stored.seq)))
              expect(replayed).toMatchObject({ payload: JSON.stringify({ add: "m1" }), createdAt: 1_000 })
              expect(yield* entities.outcomes([key("m1")])).toEqual([PENDING])
              expect((yield* entities.deadLetters({ limit: 10 })).map((d) => d.messageId)).toEqual(["m4"])
              // Paging from the last seq seen finds the replayed message.
              expect(
                (yield* entities.pending({ shards: [1], afterSeq: before.at(-1)!.seq, limit: 10 })).map(
                  (s) => s.messageId
                )
              ).toEqual(["m1"])
              expect(yield* entities.complete([completion("m1", { state: "done" })])).toEqual([WRITTEN])
              expect(yield* entities.outcomes([key("m1")])).toEqual([
                { status: "processed", reply: JSON.stringify({ ok: "m1" }) }
              ])
              // A message stored after the replay comes after it.
              yield* entities.enqueue([message("m5")])
              const last = (yield* allPending(entities)).at(-1)!
              expect(last.messageId).toBe("m5")
              expect(last.seq).toBeGreaterThan(replayed.seq)
            })
          )
      )
    })

    describe("pending", () => {
      it.live("by seq, of the shards asked for, after afterSeq, at most limit", () =>
        withCluster(({ entities }) =>
          Effect.gen(function* () {
            // Interleaved shards, several calls: arrival order is seq order.
            yield* entities.enqueue([message("a1", { shard: 1 }), message("b1", { shard: 2 })])
            yield* entities.enqueue([message("c1", { shard: 3 })])
            yield* entities.enqueue([message("a2", { shard: 1 }), message("b2", { shard: 2 })])
            yield* entities.enqueue([message("a3", { shard: 1 })])
            const all = yield* allPending(entities)
            expect(all.map((stored) => stored.messageId)).toEqual(["a1", "b1", "c1", "a2", "b2", "a3"])
            const seqs = all.map((stored) => stored.seq)
            expect([...seqs].sort((a, b) => a - b)).toEqual(seqs)
            expect(new Set(seqs).size).toBe(seqs.length)
            const ids = (query: { shards: ReadonlyArray<number>; afterSeq?: number; limit?: number }) =>
              Effect.map(
                entities.pending({
                  shards: query.shards,
                  afterSeq: query.afterSeq ?? 0,
                  limit: query.limit ?? 100
                }),
                (rows) => rows.map((stored) => stored.messageId)
              )
            expect(yield* ids({ shards: [1] })).toEqual(["a1", "a2", "a3"])
            expect(yield* ids({ shards: [2, 3] })).toEqual(["b1", "c1", "b2"])
            expect(yield* ids({ shards: [] })).toEqual([])
            expect(yield* ids({ shards: [4] })).toEqual([])
            expect(yield* ids({ shards: [1, 2], limit: 3 })).toEqual(["a1", "b1", "a2"])
            expect(yield* ids({ shards: [1, 2], afterSeq: all[2]!.seq })).toEqual(["a2", "b2", "a3"])
            expect(yield* ids({ shards: [1, 2], afterSeq: all[3]!.seq, limit: 1 })).toEqual(["b2"])
            // Processed and dead messages are not pending.
            yield* entities.complete([completion("a2", { ...key("a2"), shard: 1 })])
            yield* entities.deadLetter([deadLetter("b1", { shard: 2 })])
            expect(yield* ids({ shards: [1, 2, 3] })).toEqual(["a1", "c1", "b2", "a3"])
          })
        )
      )

      it.live(
        "a row edited by hand into something else is left out; the other messages of its shards are still read",
        () =>
          withCluster(({ entities }, storage) =>
            Effect.gen(function* () {
              const raw = storage.raw
              // Only SQLite's loose column types let a row hold what its schema refuses.
              if (raw?.dialect !== "sqlite") return
              yield* entities.enqueue([message("m1"), message("m2"), message("m3")])
              const table = `${raw.prefix}entity_messages`
              // A payload stored as bytes (read as UTF-8 text), and a key that is not text at all.
              yield* raw.sql.unsafe(`UPDATE ${table} SET payload = X'7B7D' WHERE message_id = 'm1'`)
              yield* raw.sql.unsafe(`UPDATE ${table} SET message_id = X'6D32' WHERE message_id = 'm2'`)
              const pending = yield* allPending(entities)
              expect(pending.map((stored) => [stored.messageId, stored.payload])).toEqual([
                ["m1", "{}"],
                ["m3", JSON.stringify({ add: "m3" })]
              ])
            })
          )
      )
    })

    describe("pendingOf", () => {
      it.live("the pending messages of one entity, by seq, at most limit", () =>
        withCluster(({ entities }) =>
          Effect.gen(function* () {
            yield* entities.enqueue([message("a1"), message("b1", { ...key("b1", "cart-2") })])
            yield* entities.enqueue([message("a2"), message("w1", { ...key("w1", "cart-1", "Wishlist") })])
            yield* entities.enqueue([message("a3"), message("a4")])
            yield* entities.complete([completion("a2")])
            yield* entities.deadLetter([deadLetter("a3")])
            const ids = (entityType: string, entityId: string, limit = 100) =>
              Effect.map(entities.pendingOf({ entityType, entityId }, limit), (rows) =>
                rows.map((m) => m.messageId)
              )
            expect(yield* ids("Cart", "cart-1")).toEqual(["a1", "a4"])
            expect(yield* ids("Cart", "cart-1", 1)).toEqual(["a1"])
            expect(yield* ids("Cart", "cart-2")).toEqual(["b1"])
            expect(yield* ids("Wishlist", "cart-1")).toEqual(["w1"])
            expect(yield* ids("Cart", "nobody")).toEqual([])
            const [first] = yield* entities.pendingOf({ entityType: "Cart", entityId: "cart-1" }, 1)
            expect(first).toMatchObject({
              ...key("a1"),
              shard: 1,
              payload: JSON.stringify({ add: "a1" }),
              createdAt: 1_000
            })
          })
        )
      )
    })

    describe("outcomesAhead", () => {
      it.live(
        "each key's outcome and its entity's pending messages stored before it, by seq, at most limit",
        () =>
          withCluster(({ entities }) =>
            Effect.gen(function* () {
              yield* entities.enqueue([message("a1"), message("b1", { ...key("b1", "cart-2"), shard: 2 })])
              yield* entities.enqueue([message("a2"), message("w1", { ...key("w1", "cart-1", "Wishlist") })])
              yield* entities.enqueue([message("a3"), message("a4")])
              yield* entities.enqueue([message("a5", { now: 1_500 })])
              yield* entities.complete([completion("a3")])
              yield* entities.deadLetter([deadLetter("a4")])
              const ahead = (keys: ReadonlyArray<MessageKey>, limit = 100) =>
                Effect.map(entities.outcomesAhead(keys, limit), (results) =>
                  results.map((result) => ({
                    outcome: result.outcome,
                    ahead: result.ahead.map((stored) => stored.messageId)
                  }))
                )
              expect(
                yield* ahead([
                  key("a5"),
                  key("a1"),
                  key("new"),
                  key("a3"),
                  key("a4"),
                  key("x", "cart-2"),
                  key("x", "cart-3"),
                  key("x", "cart-1", "Wishlist")
                ])
              ).toEqual([
                // Pending: the entity's pending messages with a lower seq (not a processed or dead one).
                { outcome: PENDING, ahead: ["a1", "a2"] },
                { outcome: PENDING, ahead: [] },
                // Not stored: every pending message of the entity.
                { outcome: undefined, ahead: ["a1", "a2", "a5"] },
                // Done: nothing to handle before it.
                { outcome: { status: "processed", reply: JSON.stringify({ ok: "a3" }) }, ahead: [] },
                { outcome: { status: "dead", error: "handler failed on a4" }, ahead: [] },
                { outcome: undefined, ahead: ["b1"] },
                { outcome: undefined, ahead: [] },
                { outcome: undefined, ahead: ["w1"] }
              ])
              expect(yield* ahead([key("new"), key("a5")], 2)).toEqual([
                { outcome: undefined, ahead: ["a1", "a2"] },
                { outcome: PENDING, ahead: ["a1", "a2"] }
              ])
              expect(yield* entities.outcomesAhead([], 100)).toEqual([])
              const [{ ahead: stored } = { ahead: [] }] = yield* entities.outcomesAhead([key("new")], 100)
              expect(stored[2]).toMatchObject({
                ...key("a5"),
                shard: 1,
                payload: JSON.stringify({ add: "a5" }),
                createdAt: 1_500
              })
              const pending = yield* allPending(entities)
              expect(stored.map((m) => m.seq)).toEqual(
                ["a1", "a2", "a5"].map((id) => pending.find((m) => m.messageId === id)!.seq)
              )
              // A replayed dead letter goes behind every message stored so far; a completed one leaves.
              expect(yield* entities.replay(key("a4"), 5_000)).toBe(true)
              yield* entities.complete([completion("a1")])
              expect(yield* ahead([key("new"), key("a4"), key("a2")])).toEqual([
                { outcome: undefined, ahead: ["a2", "a5", "a4"] },
                { outcome: PENDING, ahead: ["a2", "a5"] },
                { outcome: PENDING, ahead: [] }
              ])
            })
          )
      )

      it.live("a message stored after another's enqueue returned is behind it, with concurrent senders", () =>
        withCluster(({ entities }) =>
          Effect.gen(function* () {
            // 20 senders to one entity, each storing its messages one after the other.
            const senders = Array.from({ length: 20 }, (_, s) => s)
            yield* Effect.forEach(
              senders,
              (s) =>
                Effect.forEach([0, 1, 2], (n) => entities.enqueue([message(`s${s}-${n}`)]), {
                  discard: true
                }),
              { concurrency: "unbounded", discard: true }
            )
            const ids = senders.flatMap((s) => [0, 1, 2].map((n) => `s${s}-${n}`))
            const results = yield* entities.outcomesAhead(
              ids.map((id) => key(id)),
              100
            )
            results.forEach((result, index) => {
              const [s, n] = ids[index]!.slice(1).split("-").map(Number)
              const before = new Set(result.ahead.map((stored) => stored.messageId))
              // Its sender's earlier messages are ahead of it, its later ones are not.
              for (let earlier = 0; earlier < n!; earlier++) expect(before.has(`s${s}-${earlier}`)).toBe(true)
              for (let later = n! + 1; later < 3; later++) expect(before.has(`s${s}-${later}`)).toBe(false)
            })
            // And all of them agree with one order: the one `pending` returns.
            const order = (yield* allPending(entities)).map((stored) => stored.messageId)
            results.forEach((result, index) => {
              expect(result.ahead.map((stored) => stored.messageId)).toEqual(
                order.slice(0, order.indexOf(ids[index]!))
              )
            })
          })
        )
      )
    })

    describe("purge", () => {
      it.live(
        "deletes processed messages done before the cutoff, keeps the rest; a purged key is new again",
        () =>
          withCluster(({ entities }) =>
            Effect.gen(function* () {
              yield* entities.enqueue([
                message("old"),
                message("recent"),
                message("waiting"),
                message("dead")
              ])
              yield* entities.complete([completion("old", { now: 1_500, state: "kept" })])
              yield* entities.complete([completion("recent", { now: 2_500 })])
              yield* entities.complete([completion("direct", { now: 1_200 })])
              yield* entities.deadLetter([deadLetter("dead", { now: 1_100 })])
              expect(yield* entities.purge(1_000)).toBe(0)
              expect(yield* entities.purge(2_000)).toBe(2)
              expect(
                yield* entities.outcomes([
                  key("old"),
                  key("direct"),
                  key("recent"),
                  key("waiting"),
                  key("dead")
                ])
              ).toEqual([
                undefined,
                undefined,
                { status: "processed", reply: JSON.stringify({ ok: "recent" }) },
                PENDING,
                { status: "dead", error: "handler failed on dead" }
              ])
              expect(yield* entities.state({ entityType: "Cart", entityId: "cart-1" })).toBe("kept")
              expect(yield* entities.purge(2_000)).toBe(0)
              expect(yield* entities.enqueue([message("old")])).toEqual([STORED])
              expect((yield* allPending(entities)).map((stored) => stored.messageId)).toEqual([
                "waiting",
                "old"
              ])
            })
          )
      )
    })

    describe("durability and concurrency", () => {
      it.live("everything written is there after the store is closed and opened again", () =>
        Effect.scoped(
          Effect.gen(function* () {
            const storage = yield* backend.storage
            yield* Effect.scoped(
              Effect.gen(function* () {
                const { entities } = yield* storage.openCluster
                yield* entities.enqueue([message("m1"), message("m2"), message("m3")])
                yield* entities.complete([completion("m1", { state: "s1" })])
                yield* entities.deadLetter([deadLetter("m2")])
              })
            )
            const { entities } = yield* storage.openCluster
            expect(yield* entities.outcomes([key("m1"), key("m2"), key("m3")])).toEqual([
              { status: "processed", reply: JSON.stringify({ ok: "m1" }) },
              { status: "dead", error: "handler failed on m2" },
              PENDING
            ])
            expect(yield* entities.state({ entityType: "Cart", entityId: "cart-1" })).toBe("s1")
            const [pending] = yield* allPending(entities)
            expect(pending?.messageId).toBe("m3")
            // Sequence numbers go on after the reopen.
            yield* entities.enqueue([message("m4")])
            expect(yield* entities.replay(key("m2"), 5_000)).toBe(true)
            const after = yield* allPending(entities)
            expect(after.map((stored) => stored.messageId)).toEqual(["m3", "m4", "m2"])
            expect(after[1]!.seq).toBeGreaterThan(pending!.seq)
          })
        )
      )

      it.live("200 concurrent senders and completions all land, in shared transactions", () =>
        withCluster((cluster) =>
          Effect.gen(function* () {
            const { entities } = cluster
            yield* owningAll(cluster)
            const ids = Array.from({ length: 200 }, (_, i) => `m${i}`)
            const of = (id: string) => key(id, `cart-${Number(id.slice(1)) % 50}`)
            const shardOf = (id: string) => (Number(id.slice(1)) % 4) + 1
            const stored = yield* Effect.forEach(
              ids,
              (id) => entities.enqueue([message(id, { ...of(id), shard: shardOf(id) })]),
              { concurrency: "unbounded" }
            )
            expect(stored.flat()).toEqual(ids.map(() => STORED))
            expect(yield* allPending(entities)).toHaveLength(200)
            const completed = yield* Effect.forEach(
              ids,
              (id) =>
                entities.complete([
                  completion(id, { ...of(id), shard: shardOf(id), fence: { shard: shardOf(id), epoch: 1 } })
                ]),
              { concurrency: "unbounded" }
            )
            expect(completed.flat()).toEqual(ids.map(() => WRITTEN))
            expect(yield* allPending(entities)).toEqual([])
            const outcomes = yield* entities.outcomes(ids.map(of))
            expect(outcomes).toEqual(
              ids.map((id) => ({ status: "processed", reply: JSON.stringify({ ok: id }) }))
            )
            if (entities.stats !== undefined) {
              expect(entities.stats.enqueue.items).toBeGreaterThanOrEqual(200)
              expect(entities.stats.enqueue.transactions).toBeLessThan(100)
              expect(entities.stats.owner.transactions).toBeLessThan(100)
            }
          })
        )
      )
    })
  })
