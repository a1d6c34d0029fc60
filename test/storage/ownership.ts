/**
 * The ownership contract, run on every backend (memory with ownership, SQLite, PostgreSQL): the
 * shard store (shard count, pods and their leases, the manager's lease, assignments with epochs)
 * and the journal's side of it (fenced writes and heartbeats, the inbox, paging by shard).
 *
 * Leases are judged by the store's clock (memory: the `Clock` of the fiber that made the cluster;
 * SQLite: the host's; PostgreSQL: the server's), never by the caller's, so these cases use real
 * time: a lease is made to end by renewing it for 1 ms.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Option, Scope } from "effect"
import { shardOf } from "../../src/sharding/ShardId.ts"
import {
  DuplicatePodError,
  ShardCountMismatchError,
  StaleEpochError
} from "../../src/sharding/ShardingErrors.ts"
import type { ShardRecord } from "../../src/sharding/ShardStore.ts"
import { migrate, migrations } from "../../src/storage/sql/Migrations.ts"
import type { JournalWrite } from "../../src/workflow/DurableExecutionJournal.ts"
import * as OffsetClock from "../support/OffsetClock.ts"
import type { Backend, Cluster, Storage } from "./backends.ts"

type ShardStore = Cluster["shards"]

/** A lease that does not end during a test. */
export const LONG = 600_000

/** The first `n` ids `prefix-i` whose shard among `count` is `shard`. */
export const idsInShard = (shard: number, count: number, n: number, prefix = "x"): Array<string> => {
  const ids: Array<string> = []
  for (let i = 0; ids.length < n; i++) {
    const id = `${prefix}-${i}`
    if (shardOf(id, count) === shard) ids.push(id)
  }
  return ids
}

const newExecution = (executionId: string, count: number, now = 1_000) => ({
  executionId,
  workflow: "Order",
  request: "{}",
  shard: shardOf(executionId, count),
  now
})

const attempt = (executionId: string, stepKey = "a", n = 1) => ({
  executionId,
  stepKey,
  activityId: stepKey,
  seq: 1,
  previous: null,
  attempt: n
})

/**
 * Registers `podId` in a scope of its own; `end` closes it, as if the pod's process ended without
 * unregistering. The scope also closes with the test's.
 */
export const registerPod = (shards: ShardStore, podId: string, ttlMillis = LONG) =>
  Effect.gen(function* () {
    const scope = yield* Scope.make()
    yield* Effect.addFinalizer(() => Scope.close(scope, Exit.void))
    const registeredAt = yield* shards.register(podId, ttlMillis).pipe(Scope.provide(scope))
    return { end: Scope.close(scope, Exit.void), registeredAt }
  })

const livenessOf = (shards: ShardStore, podId: string) =>
  Effect.map(shards.pods, (pods) => pods.find((pod) => pod.podId === podId)?.liveness)

/** Ends a pod's lease now (renewing it for 1 ms), and waits until it has passed. */
const expire = (shards: ShardStore, podId: string) =>
  Effect.andThen(shards.renew(podId, 1), Effect.sleep("30 millis"))

const shardAt = (shards: ShardStore, shard: number) =>
  Effect.map(shards.shards, (all) => all.find((record) => record.shard === shard))

const ownersAndEpochs = (records: ReadonlyArray<ShardRecord>) =>
  records.map((record) => [record.shard, record.owner, record.epoch, record.nextOwner])

/** Declares the ownership cases for `backend`. */
export const ownership = (backend: Backend) =>
  describe(`ownership conformance: ${backend.name}`, () => {
    /** Runs `f` with fresh storage and a journal and shard store open on it. */
    const withCluster = <A, E>(f: (cluster: Cluster, storage: Storage) => Effect.Effect<A, E, Scope.Scope>) =>
      Effect.scoped(
        Effect.gen(function* () {
          const storage = yield* backend.storage
          return yield* f(yield* storage.openCluster, storage)
        })
      )

    describe("shard count", () => {
      it.live(
        "init creates the shards unowned at epoch 0; again is a no-op; another count writes nothing",
        () =>
          withCluster(({ shards }, storage) =>
            Effect.gen(function* () {
              expect(yield* shards.shards).toEqual([])
              yield* shards.init(4)
              const created = yield* shards.shards
              expect(ownersAndEpochs(created)).toEqual([
                [1, null, 0, null],
                [2, null, 0, null],
                [3, null, 0, null],
                [4, null, 0, null]
              ])
              yield* shards.init(4)
              yield* registerPod(shards, "a")
              yield* shards.assign([{ shard: 2, from: null, to: "a" }])
              const before = yield* shards.shards
              // Another process configured with another count.
              const other = yield* storage.openCluster
              const error = yield* Effect.flip(other.shards.init(5))
              expect(error).toBeInstanceOf(ShardCountMismatchError)
              expect(error).toMatchObject({ configured: 5, recorded: 4 })
              expect(yield* Effect.flip(shards.init(3))).toMatchObject({ configured: 3, recorded: 4 })
              expect(yield* shards.shards).toEqual(before)
              expect(yield* other.shards.shards).toEqual(before)
            })
          )
      )
    })

    describe("pods", () => {
      it.live("register: a live pod's id is refused; another id is welcome", () =>
        withCluster(({ shards }, storage) =>
          Effect.gen(function* () {
            yield* registerPod(shards, "a")
            const [a] = yield* shards.pods
            expect(a).toMatchObject({ podId: "a", liveness: "live" })
            expect(a!.leaseUntil).toBeGreaterThanOrEqual(a!.registeredAt + LONG)
            expect(a!.renewedAt).toBe(a!.registeredAt)
            const other = yield* storage.openCluster
            const error = yield* Effect.flip(registerPod(other.shards, "a"))
            expect(error).toBeInstanceOf(DuplicatePodError)
            expect(error).toMatchObject({ podId: "a", leaseUntil: a!.leaseUntil })
            // The refused registration wrote nothing.
            expect(yield* shards.pods).toEqual([a])
            yield* registerPod(other.shards, "b")
            expect((yield* shards.pods).map((pod) => [pod.podId, pod.liveness])).toEqual([
              ["a", "live"],
              ["b", "live"]
            ])
          })
        )
      )

      it.live(
        "a pod whose process ended is gone at once; its id is taken again and its shards released",
        () =>
          withCluster(({ shards }) =>
            Effect.gen(function* () {
              yield* shards.init(4)
              const a = yield* registerPod(shards, "a")
              yield* registerPod(shards, "b")
              yield* shards.assign([
                { shard: 1, from: null, to: "a" },
                { shard: 2, from: null, to: "a" },
                { shard: 3, from: null, to: "b" }
              ])
              yield* shards.requestHandover([{ shard: 3, from: "b", to: "a" }])
              yield* a.end
              // The lease is still current, but the process is provably gone.
              expect(yield* livenessOf(shards, "a")).toBe("gone")
              expect(yield* livenessOf(shards, "b")).toBe("live")
              yield* registerPod(shards, "a")
              expect(yield* livenessOf(shards, "a")).toBe("live")
              expect(ownersAndEpochs(yield* shards.shards)).toEqual([
                [1, null, 2, null],
                [2, null, 2, null],
                [3, "b", 1, null],
                [4, null, 0, null]
              ])
            })
          )
      )

      it.live(
        "evict removes the registration it names once it is not live, releasing its shards; never a live pod",
        () =>
          withCluster(({ shards }) =>
            Effect.gen(function* () {
              yield* shards.init(2)
              const a = yield* registerPod(shards, "a")
              const b = yield* registerPod(shards, "b")
              yield* shards.assign([
                { shard: 1, from: null, to: "a" },
                { shard: 2, from: null, to: "b" }
              ])
              expect(yield* shards.acquireManager("a", LONG)).toBe(true)
              // Live: never evicted.
              expect(yield* shards.evict("b", b.registeredAt)).toBe(false)
              yield* a.end
              // Another registration than the one named: left alone.
              expect(yield* shards.evict("a", a.registeredAt + 1)).toBe(false)
              expect(yield* shards.evict("a", a.registeredAt)).toBe(true)
              expect((yield* shards.pods).map((pod) => pod.podId)).toEqual(["b"])
              expect(yield* shardAt(shards, 1)).toMatchObject({ owner: null, epoch: 2 })
              expect(yield* shardAt(shards, 2)).toMatchObject({ owner: "b", epoch: 1 })
              expect(yield* shards.manager).toBeUndefined()
              expect(yield* shards.evict("a", a.registeredAt)).toBe(false)
            })
          )
      )

      it.live("a lease that passed is expired, and its id can be registered again", () =>
        withCluster(({ shards }) =>
          Effect.gen(function* () {
            yield* shards.init(2)
            yield* registerPod(shards, "a")
            yield* shards.assign([{ shard: 1, from: null, to: "a" }])
            yield* expire(shards, "a")
            expect(yield* livenessOf(shards, "a")).toBe("expired")
            yield* registerPod(shards, "a")
            expect(yield* livenessOf(shards, "a")).toBe("live")
            expect(yield* shardAt(shards, 1)).toMatchObject({ owner: null, epoch: 2 })
          })
        )
      )

      it.live("leases are judged by the store's clock, not by the clock of the pod that asks", () =>
        withCluster(({ shards }, storage) =>
          Effect.gen(function* () {
            const ttl = 2_000
            // One pod's clock is a lease behind the host's, another's a lease ahead.
            const slow = Effect.provide(OffsetClock.layer(-ttl))
            const fast = Effect.provide(OffsetClock.layer(ttl))
            const other = yield* storage.openCluster
            yield* slow(registerPod(shards, "slow", ttl))
            expect(yield* slow(shards.acquireManager("slow", ttl))).toBe(true)
            // The fast pod sees the slow one's leases as they are: current.
            expect(yield* fast(livenessOf(other.shards, "slow"))).toBe("live")
            yield* fast(registerPod(other.shards, "fast", ttl))
            expect(yield* fast(other.shards.acquireManager("fast", ttl))).toBe(false)
            // And the slow pod sees the fast one's lease end when it ends, not a lease later.
            yield* fast(expire(other.shards, "fast"))
            expect(yield* slow(livenessOf(shards, "fast"))).toBe("expired")
          })
        )
      )

      it.live(
        "an earlier incarnation of a pod id (a process paused past its lease) cannot renew the newer one",
        () =>
          withCluster(({ shards }, storage) =>
            Effect.gen(function* () {
              // Another process on the same store (a memory store has one per process: nothing to check).
              const other = yield* storage.openCluster
              if (other.shards === shards) return
              yield* shards.init(2)
              yield* registerPod(shards, "a")
              yield* expire(shards, "a")
              // A new process takes the id over while the old one is paused.
              yield* registerPod(other.shards, "a", 60_000)
              const [newer] = yield* other.shards.pods
              // The old process wakes up and renews: refused, so it stops all its work.
              expect(yield* shards.renew("a", LONG)).toBe(false)
              expect((yield* other.shards.pods)[0]!.leaseUntil).toBe(newer!.leaseUntil)
              expect(yield* other.shards.renew("a", LONG)).toBe(true)
            })
          )
      )

      it.live("renew extends the lease of a registered pod, even an expired one; false once removed", () =>
        withCluster(({ shards }) =>
          Effect.gen(function* () {
            expect(yield* shards.renew("nobody", LONG)).toBe(false)
            yield* registerPod(shards, "a", 60_000)
            const [before] = yield* shards.pods
            yield* Effect.sleep("5 millis")
            expect(yield* shards.renew("a", LONG)).toBe(true)
            const [after] = yield* shards.pods
            expect(after!.leaseUntil).toBeGreaterThan(before!.leaseUntil)
            expect(after!.renewedAt).toBeGreaterThanOrEqual(before!.renewedAt)
            expect(after!.renewedAt).toBeLessThan(after!.leaseUntil)
            yield* expire(shards, "a")
            expect(yield* livenessOf(shards, "a")).toBe("expired")
            expect(yield* shards.renew("a", LONG)).toBe(true)
            expect(yield* livenessOf(shards, "a")).toBe("live")
            // A live pod is not removed; an expired one is, and renew tells it to stop.
            yield* shards.removePod("a")
            expect(yield* livenessOf(shards, "a")).toBe("live")
            yield* expire(shards, "a")
            yield* shards.removePod("a")
            expect(yield* shards.pods).toEqual([])
            expect(yield* shards.renew("a", LONG)).toBe(false)
          })
        )
      )

      it.live("removePod releases what a dead pod still owned (epoch + 1)", () =>
        withCluster(({ shards }) =>
          Effect.gen(function* () {
            yield* shards.init(3)
            const a = yield* registerPod(shards, "a")
            yield* registerPod(shards, "b")
            yield* shards.assign([
              { shard: 1, from: null, to: "a" },
              { shard: 2, from: null, to: "b" }
            ])
            yield* shards.requestHandover([{ shard: 2, from: "b", to: "a" }])
            yield* a.end
            yield* shards.removePod("a")
            expect((yield* shards.pods).map((pod) => pod.podId)).toEqual(["b"])
            expect(ownersAndEpochs(yield* shards.shards)).toEqual([
              [1, null, 2, null],
              [2, "b", 1, null],
              [3, null, 0, null]
            ])
          })
        )
      )

      it.live(
        "unregister hands each shard to its next owner or leaves it unowned, and frees the manager",
        () =>
          withCluster(({ shards }) =>
            Effect.gen(function* () {
              yield* shards.init(3)
              yield* registerPod(shards, "a")
              yield* registerPod(shards, "b")
              yield* shards.assign([
                { shard: 1, from: null, to: "a" },
                { shard: 2, from: null, to: "a" },
                { shard: 3, from: null, to: "b" }
              ])
              yield* shards.requestHandover([
                { shard: 2, from: "a", to: "b" },
                { shard: 3, from: "b", to: "a" }
              ])
              expect(yield* shards.acquireManager("a", LONG)).toBe(true)
              yield* shards.unregister("a")
              expect((yield* shards.pods).map((pod) => pod.podId)).toEqual(["b"])
              expect(ownersAndEpochs(yield* shards.shards)).toEqual([
                [1, null, 2, null],
                [2, "b", 2, null],
                [3, "b", 1, null]
              ])
              expect(yield* shards.manager).toBeUndefined()
              expect(yield* shards.shardsOf("a")).toEqual([])
              expect((yield* shards.shardsOf("b")).map((record) => record.shard)).toEqual([2, 3])
            })
          )
      )
    })

    describe("the manager's lease", () => {
      it.live("free → taken; refused while its holder lives; renewed by its holder", () =>
        withCluster(({ shards }, storage) =>
          Effect.gen(function* () {
            expect(yield* shards.manager).toBeUndefined()
            yield* registerPod(shards, "a")
            const other = yield* storage.openCluster
            yield* registerPod(other.shards, "b")
            expect(yield* shards.acquireManager("a", 60_000)).toBe(true)
            const first = yield* shards.manager
            expect(first?.podId).toBe("a")
            expect(yield* other.shards.acquireManager("b", LONG)).toBe(false)
            expect(yield* other.shards.manager).toEqual(first)
            yield* Effect.sleep("5 millis")
            expect(yield* shards.acquireManager("a", LONG)).toBe(true)
            expect((yield* shards.manager)!.leaseUntil).toBeGreaterThan(first!.leaseUntil)
          })
        )
      )

      it.live("taken over when the lease expired, or its holder is gone or unregistered", () =>
        withCluster(({ shards }) =>
          Effect.gen(function* () {
            const a = yield* registerPod(shards, "a")
            yield* registerPod(shards, "b")
            yield* registerPod(shards, "c")
            // Expired lease (the holder itself still lives).
            expect(yield* shards.acquireManager("a", 1)).toBe(true)
            yield* Effect.sleep("30 millis")
            expect(yield* shards.acquireManager("b", LONG)).toBe(true)
            expect((yield* shards.manager)?.podId).toBe("b")
            // Holder unregistered: its lease goes with it.
            yield* shards.unregister("b")
            expect(yield* shards.manager).toBeUndefined()
            expect(yield* shards.acquireManager("a", LONG)).toBe(true)
            // Holder gone: its lease is current, yet another pod takes over.
            yield* a.end
            expect(yield* shards.acquireManager("c", LONG)).toBe(true)
            expect((yield* shards.manager)?.podId).toBe("c")
            // Holder removed (no longer registered) while its lease runs.
            yield* expire(shards, "c")
            yield* shards.removePod("c")
            yield* registerPod(shards, "d")
            expect(yield* shards.acquireManager("d", LONG)).toBe(true)
          })
        )
      )
    })

    describe("assignments", () => {
      it.live("assign is compare-and-set on the owner; every change of owner raises the epoch", () =>
        withCluster(({ shards }) =>
          Effect.gen(function* () {
            yield* shards.init(4)
            yield* registerPod(shards, "a")
            yield* registerPod(shards, "b")
            expect(
              yield* shards.assign([
                { shard: 1, from: null, to: "a" },
                { shard: 2, from: null, to: "a" },
                { shard: 3, from: "b", to: "a" }
              ])
            ).toEqual([1, 2])
            // A stale view of the owner moves nothing.
            expect(yield* shards.assign([{ shard: 1, from: null, to: "b" }])).toEqual([])
            expect(yield* shards.assign([{ shard: 1, from: "a", to: "b" }])).toEqual([1])
            expect(yield* shards.assign([{ shard: 99, from: null, to: "b" }])).toEqual([])
            const records = yield* shards.shards
            expect(ownersAndEpochs(records)).toEqual([
              [1, "b", 2, null],
              [2, "a", 1, null],
              [3, null, 0, null],
              [4, null, 0, null]
            ])
            expect((yield* shards.shardsOf("a")).map((r) => [r.shard, r.epoch])).toEqual([[2, 1]])
            // Back and forth: the epoch never returns to an earlier value.
            const epochs: Array<number> = []
            let owner = "b"
            for (const to of ["a", "b", "a"]) {
              yield* shards.assign([{ shard: 1, from: owner, to }])
              owner = to
              epochs.push((yield* shardAt(shards, 1))!.epoch)
            }
            expect(epochs).toEqual([3, 4, 5])
          })
        )
      )

      it.live("requestHandover marks the next owner; release hands over at the owner's epoch only", () =>
        withCluster(({ shards }) =>
          Effect.gen(function* () {
            yield* shards.init(3)
            yield* registerPod(shards, "a")
            yield* registerPod(shards, "b")
            yield* shards.assign([
              { shard: 1, from: null, to: "a" },
              { shard: 2, from: null, to: "a" }
            ])
            expect(
              yield* shards.requestHandover([
                { shard: 1, from: "a", to: "b" },
                { shard: 2, from: "b", to: "a" },
                { shard: 3, from: null, to: "b" }
              ])
            ).toEqual([1])
            expect(yield* shardAt(shards, 1)).toMatchObject({ owner: "a", nextOwner: "b", epoch: 1 })
            // Not the owner, or not at the current epoch: nothing happens.
            expect(yield* shards.release("b", 1, 1)).toBe(false)
            expect(yield* shards.release("a", 1, 0)).toBe(false)
            expect(yield* shardAt(shards, 1)).toMatchObject({ owner: "a", nextOwner: "b", epoch: 1 })
            expect(yield* shards.release("a", 1, 1)).toBe(true)
            expect(yield* shardAt(shards, 1)).toMatchObject({ owner: "b", nextOwner: null, epoch: 2 })
            expect(yield* shards.release("a", 1, 1)).toBe(false)
            // Without a next owner, a release leaves the shard unowned.
            expect(yield* shards.release("a", 2, 1)).toBe(true)
            expect(yield* shardAt(shards, 2)).toMatchObject({ owner: null, nextOwner: null, epoch: 2 })
          })
        )
      )
    })

    describe("fencing", () => {
      it.live("a write with a stale epoch changes nothing and fails with StaleEpochError", () =>
        withCluster(({ journal, shards }) =>
          Effect.gen(function* () {
            yield* shards.init(4)
            const [id] = idsInShard(2, 4, 1)
            yield* journal.start(newExecution(id!, 4))
            yield* registerPod(shards, "a")
            yield* registerPod(shards, "b")
            yield* shards.assign([{ shard: 2, from: null, to: "a" }])
            yield* journal.write({
              executionId: id!,
              outcomes: [],
              attempt: attempt(id!),
              fence: { shard: 2, epoch: 1 },
              now: 2_000
            })
            const stepsBefore = yield* journal.steps(id!)
            const rowBefore = yield* journal.get(id!)
            yield* shards.assign([{ shard: 2, from: "a", to: "b" }])
            const stale: JournalWrite = {
              executionId: id!,
              outcomes: [{ ...attempt(id!), outcome: '"x"' }],
              attempt: attempt(id!, "b"),
              status: { _tag: "Complete", status: "succeeded", result: '"x"' },
              failedAttempts: [
                {
                  executionId: id!,
                  stepKey: "a",
                  attempt: 1,
                  startedAt: 2_000,
                  endedAt: 2_500,
                  outcome: "{}"
                }
              ],
              fence: { shard: 2, epoch: 1 },
              notify: 2,
              now: 3_000
            }
            const error = yield* Effect.flip(journal.write(stale))
            expect(error).toBeInstanceOf(StaleEpochError)
            expect(error).toMatchObject({ executionId: id, shard: 2, epoch: 1, currentEpoch: 2 })
            expect(yield* journal.steps(id!)).toEqual(stepsBefore)
            expect(yield* journal.get(id!)).toEqual(rowBefore)
            expect(yield* journal.attempts(id!)).toEqual([])
            expect(yield* journal.takeInbox([1, 2, 3, 4], 10)).toEqual([])
            // The new owner's epoch passes.
            yield* journal.write({ ...stale, fence: { shard: 2, epoch: 2 } })
            expect(Option.getOrThrow(yield* journal.get(id!)).status).toBe("succeeded")
            expect(yield* journal.takeInbox([2], 10)).toEqual([{ executionId: id, shard: 2 }])
          })
        )
      )

      it.live(
        "a write of one step or one status change (one statement on SQLite) is fenced the same; one with nothing to change is no refusal",
        () =>
          withCluster(({ journal, shards }) =>
            Effect.gen(function* () {
              yield* shards.init(4)
              const [id] = idsInShard(2, 4, 1)
              yield* journal.start(newExecution(id!, 4))
              yield* registerPod(shards, "a")
              yield* registerPod(shards, "b")
              yield* shards.assign([{ shard: 2, from: null, to: "a" }])
              const fence = { shard: 2, epoch: 1 }
              const outcome = { ...attempt(id!), outcome: '"x"' }
              yield* journal.write({ executionId: id!, outcomes: [outcome], fence, now: 2_000 })
              // The same outcome again changes nothing (a recorded outcome is never replaced): no refusal.
              yield* journal.write({
                executionId: id!,
                outcomes: [{ ...outcome, outcome: '"y"' }],
                fence,
                now: 2_100
              })
              expect((yield* journal.steps(id!)).map((step) => step.outcome)).toEqual(['"x"'])
              // A status change that does not apply (the execution is not sleeping): no refusal either.
              yield* journal.write({
                executionId: id!,
                outcomes: [],
                status: { _tag: "Wake" },
                fence,
                now: 2_200
              })
              const rowBefore = yield* journal.get(id!)
              yield* shards.assign([{ shard: 2, from: "a", to: "b" }])
              const stale = [
                { executionId: id!, outcomes: [], attempt: attempt(id!, "b"), fence, now: 3_000 },
                {
                  executionId: id!,
                  outcomes: [],
                  status: { _tag: "Complete" as const, status: "succeeded" as const, result: '"x"' },
                  fence,
                  now: 3_000
                }
              ]
              for (const write of stale) {
                const error = yield* Effect.flip(journal.write(write))
                expect(error).toMatchObject({ _tag: "StaleEpochError", shard: 2, epoch: 1, currentEpoch: 2 })
              }
              expect((yield* journal.steps(id!)).map((step) => step.stepKey)).toEqual([outcome.stepKey])
              expect(yield* journal.get(id!)).toEqual(rowBefore)
              // The current epoch passes.
              yield* journal.write({ ...stale[1]!, fence: { shard: 2, epoch: 2 } })
              expect(Option.getOrThrow(yield* journal.get(id!)).status).toBe("succeeded")
            })
          )
      )

      it.live("a fence on a shard the store does not have (no shard count recorded) is refused", () =>
        withCluster(({ journal }) =>
          Effect.gen(function* () {
            yield* journal.start(newExecution("e", 4))
            const error = yield* Effect.flip(
              journal.write({
                executionId: "e",
                outcomes: [],
                attempt: attempt("e"),
                fence: { shard: shardOf("e", 4), epoch: 0 },
                now: 2
              })
            )
            expect(error).toMatchObject({ _tag: "StaleEpochError", currentEpoch: null, epoch: 0 })
            expect(yield* journal.steps("e")).toEqual([])
          })
        )
      )

      const mixedBatch = (sameExecutionTwice: boolean) =>
        withCluster(({ journal, shards }) =>
          Effect.gen(function* () {
            yield* shards.init(4)
            yield* registerPod(shards, "a")
            yield* registerPod(shards, "b")
            yield* shards.assign([
              { shard: 1, from: null, to: "a" },
              { shard: 2, from: null, to: "a" }
            ])
            yield* shards.assign([{ shard: 1, from: "a", to: "b" }])
            // Shard 1 is at epoch 2 now: pod a's epoch 1 is stale. Shard 2 is a's at epoch 1.
            const stale = idsInShard(1, 4, 8, "s")
            const current = idsInShard(2, 4, 8, "c")
            const unfenced = idsInShard(3, 4, 4, "u")
            for (const id of [...stale, ...current, ...unfenced]) yield* journal.start(newExecution(id, 4))
            const complete = (id: string, shard: number, epoch: number | undefined): JournalWrite => ({
              executionId: id,
              outcomes: [{ ...attempt(id), outcome: `"${id}"` }],
              status: { _tag: "Complete", status: "succeeded", result: `"${id}"` },
              ...(epoch === undefined ? {} : { fence: { shard, epoch } }),
              now: 5_000
            })
            const writes: Array<JournalWrite> = []
            for (let i = 0; i < 8; i++) {
              writes.push(complete(stale[i]!, 1, 1), complete(current[i]!, 2, 1))
              if (i < 4) writes.push(complete(unfenced[i]!, 3, undefined))
            }
            if (sameExecutionTwice) {
              // Two status changes of one execution in a batch: PostgreSQL's sequential path.
              const [id] = current
              writes.splice(writes.length - 2, 0, {
                executionId: id!,
                outcomes: [],
                status: { _tag: "RequestInterrupt" },
                fence: { shard: 2, epoch: 1 },
                now: 4_000
              })
            }
            const exits = yield* Effect.forEach(writes, (write) => Effect.exit(journal.write(write)), {
              concurrency: "unbounded"
            })
            writes.forEach((write, index) => {
              const exit = exits[index]!
              if (write.fence?.shard === 1) {
                expect(
                  Exit.isFailure(exit) && Option.getOrUndefined(Exit.findErrorOption(exit))
                ).toMatchObject({
                  _tag: "StaleEpochError",
                  executionId: write.executionId,
                  shard: 1,
                  epoch: 1,
                  currentEpoch: 2
                })
              } else {
                expect(exit).toEqual(Exit.void)
              }
            })
            const rows = yield* journal.getMany([...stale, ...current, ...unfenced])
            const statusOf = new Map(rows.map((row) => [row.executionId, row.status]))
            for (const id of stale) expect([id, statusOf.get(id)]).toEqual([id, "running"])
            for (const id of [...current, ...unfenced])
              expect([id, statusOf.get(id)]).toEqual([id, "succeeded"])
            for (const id of stale) expect(yield* journal.steps(id)).toEqual([])
            for (const id of current) expect((yield* journal.steps(id))[0]?.outcome).toBe(`"${id}"`)
          })
        )

      it.live("in a batch mixing stale and current writes, the current ones commit", () => mixedBatch(false))

      it.live("the same with two status changes of one execution in the batch", () => mixedBatch(true))

      it.live("a heartbeat with a stale epoch is silently not recorded", () =>
        withCluster(({ journal, shards }) =>
          Effect.gen(function* () {
            yield* shards.init(2)
            const [id] = idsInShard(1, 2, 1)
            yield* journal.start(newExecution(id!, 2))
            yield* registerPod(shards, "a")
            yield* shards.assign([{ shard: 1, from: null, to: "a" }])
            yield* journal.write({ executionId: id!, outcomes: [], attempt: attempt(id!), now: 2 })
            const beat = (details: string, epoch: number) =>
              journal.heartbeat({
                executionId: id!,
                stepKey: "a",
                details,
                fence: { shard: 1, epoch },
                now: 3
              })
            yield* beat('"current"', 1)
            expect((yield* journal.steps(id!))[0]?.heartbeat).toBe('"current"')
            yield* beat('"stale"', 0)
            yield* beat('"future"', 2)
            expect((yield* journal.steps(id!))[0]?.heartbeat).toBe('"current"')
          })
        )
      )
    })

    describe("inbox and paging by shard", () => {
      it.live("start, write and signal leave inbox entries for the owner; takeInbox removes them", () =>
        withCluster(({ journal, shards }, storage) =>
          Effect.gen(function* () {
            yield* shards.init(4)
            const [a1, a2] = idsInShard(1, 4, 2, "a")
            const [b1] = idsInShard(2, 4, 1, "b")
            const created = yield* journal.start({ ...newExecution(a1!, 4), notify: true })
            expect(created.created).toBe(true)
            yield* journal.start({ ...newExecution(b1!, 4), notify: true })
            yield* journal.start(newExecution(a2!, 4))
            // An existing execution: nothing new for its owner.
            yield* journal.start({ ...newExecution(a1!, 4), notify: true })
            yield* journal.write({
              executionId: a2!,
              outcomes: [],
              status: { _tag: "RequestInterrupt" },
              notify: 1,
              now: 2
            })
            expect(
              yield* journal.signal({ executionId: b1!, name: "go", payload: "1", notify: 2, now: 3 })
            ).toBe(true)
            // Another pod takes its own shards' entries, oldest first, and they are gone.
            const other = yield* storage.openCluster
            expect(yield* other.journal.takeInbox([1], 1)).toEqual([{ executionId: a1, shard: 1 }])
            expect(yield* other.journal.takeInbox([1, 3], 10)).toEqual([{ executionId: a2, shard: 1 }])
            expect(yield* journal.takeInbox([1], 10)).toEqual([])
            expect(yield* journal.takeInbox([2], 10)).toEqual([
              { executionId: b1, shard: 2 },
              { executionId: b1, shard: 2 }
            ])
            expect(yield* journal.takeInbox([1, 2, 3, 4], 10)).toEqual([])
          })
        )
      )

      it.live("two pods taking the same shards' inbox never get the same entry", () =>
        withCluster(({ journal, shards }, storage) =>
          Effect.gen(function* () {
            yield* shards.init(2)
            const ids = idsInShard(1, 2, 60, "i")
            for (const id of ids) yield* journal.start({ ...newExecution(id, 2), notify: true })
            const other = yield* storage.openCluster
            const takeAll = (j: Cluster["journal"]) =>
              Effect.gen(function* () {
                const taken: Array<string> = []
                while (true) {
                  const batch = yield* j.takeInbox([1], 7)
                  if (batch.length === 0) return taken
                  taken.push(...batch.map((entry) => entry.executionId))
                }
              })
            const [mine, theirs] = yield* Effect.all([takeAll(journal), takeAll(other.journal)], {
              concurrency: 2
            })
            expect([...mine, ...theirs].sort()).toEqual([...ids].sort())
          })
        )
      )

      it.live("listUnfinished pages the running executions of one shard by id", () =>
        withCluster(({ journal, shards }) =>
          Effect.gen(function* () {
            yield* shards.init(3)
            const mine = idsInShard(2, 3, 7, "p").sort()
            const others = idsInShard(1, 3, 3, "p")
            for (const id of [...others, ...mine]) yield* journal.start(newExecution(id, 3))
            const finished = mine[3]!
            yield* journal.write({
              executionId: finished,
              outcomes: [],
              status: { _tag: "Complete", status: "succeeded", result: "1" },
              now: 2
            })
            const sleeping = mine[5]!
            yield* journal.write({
              executionId: sleeping,
              outcomes: [],
              status: { _tag: "Sleep", wakeAt: 9 },
              now: 2
            })
            const page = (after?: string) => journal.listUnfinished({ shard: 2, after, limit: 2 })
            const pages: Array<Array<string>> = []
            let after: string | undefined
            while (true) {
              const rows = yield* page(after)
              if (rows.length === 0) break
              pages.push(rows.map((row) => row.executionId))
              after = rows[rows.length - 1]!.executionId
            }
            const expected = mine.filter((id) => id !== finished && id !== sleeping)
            expect(pages.flat()).toEqual(expected)
            expect(pages.map((p) => p.length)).toEqual([2, 2, 1])
            expect(yield* journal.listUnfinished({ shard: 3, limit: 10 })).toEqual([])
          })
        )
      )

      it.live("listDue with shards: only those shards' sleepers, and their earliest deadline", () =>
        withCluster(({ journal, shards }) =>
          Effect.gen(function* () {
            yield* shards.init(3)
            const [a, b] = idsInShard(1, 3, 2, "d")
            const [c] = idsInShard(2, 3, 1, "d")
            const [d] = idsInShard(3, 3, 1, "d")
            const sleep = (id: string, wakeAt: number) =>
              journal.write({ executionId: id, outcomes: [], status: { _tag: "Sleep", wakeAt }, now: 1 })
            for (const id of [a!, b!, c!, d!]) yield* journal.start(newExecution(id, 3))
            yield* sleep(a!, 300)
            yield* sleep(b!, 900)
            yield* sleep(c!, 100)
            yield* sleep(d!, 200)
            const due = yield* journal.listDue(500, 10, [1, 3])
            expect(due.due.map((row) => row.executionId)).toEqual([d, a])
            expect(due.nextWakeAt).toBe(200)
            expect(yield* journal.listDue(50, 10, [1])).toEqual({ due: [], nextWakeAt: 300 })
            expect(yield* journal.listDue(500, 10, [])).toEqual({ due: [], nextWakeAt: null })
            expect((yield* journal.listDue(500, 10)).due.map((row) => row.executionId)).toEqual([c, d, a])
          })
        )
      )

      it.live("getMany returns the rows that exist", () =>
        withCluster(({ journal }) =>
          Effect.gen(function* () {
            yield* journal.start(newExecution("one", 4))
            yield* journal.start(newExecution("two", 4))
            expect(yield* journal.getMany([])).toEqual([])
            const rows = yield* journal.getMany(["two", "missing", "one"])
            expect(rows.map((row) => row.executionId).sort()).toEqual(["one", "two"])
            expect(rows.find((row) => row.executionId === "one")).toEqual(
              Option.getOrThrow(yield* journal.get("one"))
            )
          })
        )
      )
    })

    if (backend.name !== "memory") {
      describe("migration", () => {
        it.live("executions stored before the shard column get their shard when init records the count", () =>
          Effect.scoped(
            Effect.gen(function* () {
              const storage = yield* backend.storage
              const { sql, prefix, dialect } = storage.raw!
              yield* migrate(sql, prefix, dialect, migrations.slice(0, 6))
              const ids = Array.from({ length: 2_100 }, (_, i) => `old-${i}`)
              const rows = ids.map((id, i) => ({
                execution_id: id,
                workflow: "Old",
                request: "{}",
                status: i % 10 === 9 ? "succeeded" : "running",
                interrupt_requested: 0,
                created_at: i,
                updated_at: i
              }))
              for (let i = 0; i < rows.length; i += 500) {
                const [first, ...others] = rows.slice(i, i + 500)
                yield* sql`INSERT INTO ${sql(`${prefix}executions`)} ${sql.insert([first!, ...others])}`
              }
              const { journal, shards } = yield* storage.openCluster
              // Another count is refused before anything is backfilled.
              yield* shards.init(7)
              expect(yield* Effect.flip(shards.init(8))).toBeInstanceOf(ShardCountMismatchError)
              for (let shard = 1; shard <= 7; shard++) {
                const found: Array<string> = []
                let after: string | undefined
                while (true) {
                  const page = yield* journal.listUnfinished({ shard, after, limit: 500 })
                  if (page.length === 0) break
                  found.push(...page.map((row) => row.executionId))
                  after = page[page.length - 1]!.executionId
                }
                const expected = ids.filter((id, i) => i % 10 !== 9 && shardOf(id, 7) === shard)
                expect(found.sort()).toEqual(expected.sort())
              }
            })
          )
        )
      })
    }
  })
