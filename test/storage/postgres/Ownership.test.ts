/**
 * What only PostgreSQL's ownership has: inbox arrivals pushed with LISTEN/NOTIFY; pods whose
 * session ended (process killed, `pg_terminate_backend`) judged suspect until their lease has
 * passed (the process may run on), then gone, a stopped process by its lease; fencing under
 * concurrency: journal writes and entity completions racing an epoch bump; and bounded waits for
 * the ownership lock.
 */
import { describe, expect, it } from "@effect/vitest"
import {
  Context,
  Deferred,
  Effect,
  Exit,
  Fiber,
  Layer,
  Logger,
  Option,
  References,
  Schema,
  Stream
} from "effect"
import { SqlClient } from "effect/sql/SqlClient"
import type * as Statement from "effect/sql/Statement"
import { inject } from "vitest"
import { Workflow, WorkflowEngine } from "../../../src/index.ts"
import { PostgresJournal } from "../../../src/postgres.ts"
import { shardOf } from "../../../src/sharding/ShardId.ts"
import { advisoryLockKey } from "../../../src/storage/sql/Migrations.ts"
import { postgres } from "../backends.ts"
import { idsInShard } from "../ownership.ts"
import { spawnPod } from "../support/podProcess.ts"

const LONG = 600_000

const newExecution = (executionId: string, notify = false) => ({
  executionId,
  workflow: "W",
  request: "{}",
  shard: shardOf(executionId, 4),
  notify,
  now: 1
})

/** Polls `effect` every 50 ms until it returns `expected` (at most 10 s); returns what it last saw. */
const eventually = <A, E>(effect: Effect.Effect<A, E>, expected: A) =>
  Effect.gen(function* () {
    let seen = yield* effect
    for (let i = 0; i < 200 && seen !== expected; i++) {
      yield* Effect.sleep("50 millis")
      seen = yield* effect
    }
    return seen
  })

/** Makes each row `events` writes into `table` (`steps`, `entity_messages`) take `seconds` more. */
const slowRows = (sql: SqlClient, prefix: string, table: string, seconds: number, events = "INSERT") =>
  Effect.andThen(
    sql.unsafe(`CREATE FUNCTION ${prefix}slow() RETURNS trigger LANGUAGE plpgsql
      AS $$ BEGIN PERFORM pg_sleep(${seconds}); RETURN NEW; END $$`),
    sql.unsafe(`CREATE TRIGGER ${prefix}slow BEFORE ${events} ON ${prefix}${table}
      FOR EACH ROW EXECUTE FUNCTION ${prefix}slow()`)
  )

/** An attempt marker of step `s<seq>` of `executionId`, written with the fence of shard 1 at epoch 1. */
const markerAtEpoch1 = (executionId: string, seq: number) => ({
  executionId,
  outcomes: [],
  attempt: { executionId, stepKey: `s${seq}`, activityId: "s", seq, previous: null, attempt: 1 },
  fence: { shard: 1, epoch: 1 },
  now: seq
})

/**
 * Fresh storage with two pods' stores and a manager's: 4 shards, shard 1 given to pod "a" (epoch
 * 1). `managerTtl`: the manager registers with it (its bumps' lock waits end after a tenth).
 */
const shardOneOwned = (managerTtl?: number) =>
  Effect.gen(function* () {
    const storage = yield* postgres.storage
    const { sql, prefix } = storage.raw!
    const pods = [yield* storage.openCluster, yield* storage.openCluster]
    const manager = yield* storage.openCluster
    yield* manager.shards.init(4)
    if (managerTtl !== undefined) yield* manager.shards.register("manager", managerTtl)
    yield* manager.shards.assign([{ shard: 1, from: null, to: "a" }])
    return { sql, prefix, pods, manager }
  })

describe("PostgreSQL ownership", () => {
  it.live("inboxArrivals announces the shard of each entry when its transaction commits", () =>
    Effect.gen(function* () {
      const storage = yield* postgres.storage
      const owner = yield* storage.openCluster
      const other = yield* storage.openCluster
      yield* owner.shards.init(4)
      const [s1, s2, s3] = [
        idsInShard(1, 4, 1, "n")[0]!,
        idsInShard(2, 4, 1, "n")[0]!,
        idsInShard(3, 4, 1, "n")[0]!
      ]
      const arrivals = yield* owner.journal.inboxArrivals!.pipe(
        Stream.take(3),
        Stream.runCollect,
        Effect.forkScoped
      )
      // LISTEN is issued when the stream starts: give it a moment before notifying.
      yield* Effect.sleep("500 millis")
      yield* other.journal.start(newExecution(s1, true))
      yield* other.journal.start(newExecution(s2))
      yield* other.journal.write({
        executionId: s2,
        outcomes: [],
        status: { _tag: "RequestInterrupt" },
        notify: 2,
        now: 2
      })
      yield* other.journal.start(newExecution(s3))
      yield* other.journal.signal({ executionId: s3, name: "go", payload: "1", notify: 3, now: 3 })
      const received = yield* Fiber.join(arrivals).pipe(Effect.timeout("10 seconds"))
      expect([...received]).toEqual([1, 2, 3])
      expect((yield* owner.journal.takeInbox([1, 2, 3], 10)).map((entry) => entry.shard)).toEqual([1, 2, 3])
    }).pipe(Effect.scoped)
  )

  it.live(
    "a pod whose process is SIGKILLed is suspect once the server ends its session, gone when its lease passed",
    () =>
      Effect.gen(function* () {
        const storage = yield* postgres.storage
        const { shards } = yield* storage.openCluster
        const child = yield* spawnPod(inject("postgresUrl"), storage.raw!.prefix, "worker", 8_000)
        yield* shards.register("me", LONG)
        const worker = Effect.map(shards.pods, (pods) => pods.find((pod) => pod.podId === "worker"))
        expect((yield* worker)?.liveness).toBe("live")
        expect(yield* shards.acquireManager("worker", 8_000)).toBe(true)
        yield* child.kill
        // The server ended its session, but a session can also end while its process runs on: until
        // its lease has passed it keeps its manager's lease, its id, and (Rebalance) its shards.
        expect(
          yield* eventually(
            Effect.map(worker, (pod) => pod?.liveness),
            "suspect"
          )
        ).toBe("suspect")
        expect(yield* shards.acquireManager("me", LONG)).toBe(false)
        yield* shards.removePod("worker")
        expect((yield* worker)?.liveness).toBe("suspect")
        expect(
          yield* eventually(
            Effect.map(worker, (pod) => pod?.liveness),
            "gone"
          )
        ).toBe("gone")
        expect(yield* shards.acquireManager("me", LONG)).toBe(true)
      }).pipe(Effect.scoped)
  )

  it.live("a pod whose session is terminated (pg_terminate_backend) is suspect until its lease passed", () =>
    Effect.gen(function* () {
      const storage = yield* postgres.storage
      const { sql, prefix } = storage.raw!
      const pod = yield* storage.openCluster
      const observer = yield* storage.openCluster
      yield* pod.shards.register("doomed", 8_000)
      yield* pod.shards.register("bystander", LONG)
      const liveness = (podId: string) =>
        Effect.map(observer.shards.pods, (pods) => pods.find((p) => p.podId === podId)?.liveness)
      expect(yield* liveness("doomed")).toBe("live")
      const [row] = yield* sql<{ readonly session: string }>`SELECT session FROM ${sql(`${prefix}pods`)}
        WHERE pod_id = 'doomed'`
      const pid = Number(row!.session.split(":")[0])
      yield* sql`SELECT pg_terminate_backend(${pid})`
      expect(yield* eventually(liveness("doomed"), "suspect")).toBe("suspect")
      // Another process may not take its id while it may still be running: a busy, transient error.
      const taken = yield* Effect.exit(Effect.scoped(observer.shards.register("doomed", LONG)))
      expect(taken).toMatchObject({ _tag: "Failure" })
      expect(JSON.stringify(taken)).toContain("may still be running")
      expect(yield* liveness("bystander")).toBe("live")
      expect(yield* eventually(liveness("doomed"), "gone")).toBe("gone")
    }).pipe(Effect.scoped)
  )

  it.live("a SIGSTOPped pod keeps its session: live until its lease ends, then expired", () =>
    Effect.gen(function* () {
      const storage = yield* postgres.storage
      const { shards } = yield* storage.openCluster
      const child = yield* spawnPod(inject("postgresUrl"), storage.raw!.prefix, "sleeper", 2_000)
      yield* child.signal("SIGSTOP")
      const pod = Effect.map(shards.pods, (pods) => pods.find((p) => p.podId === "sleeper"))
      expect((yield* pod)?.liveness).toBe("live")
      expect(
        yield* eventually(
          Effect.map(pod, (p) => p?.liveness),
          "expired"
        )
      ).toBe("expired")
      yield* Effect.sleep("300 millis")
      expect((yield* pod)?.liveness).toBe("expired")
      yield* child.signal("SIGCONT")
      yield* child.kill
      expect(
        yield* eventually(
          Effect.map(pod, (p) => p?.liveness),
          "gone"
        )
      ).toBe("gone")
    }).pipe(Effect.scoped)
  )

  it.live("writes racing an epoch bump: once the bump has committed, no write with the old epoch lands", () =>
    Effect.gen(function* () {
      const { sql, prefix, pods, manager } = yield* shardOneOwned()
      const ids = idsInShard(1, 4, 8, "race")
      for (const id of ids) yield* pods[0]!.journal.start(newExecution(id))
      // Each step row takes 30 ms to insert, so a write's statement lasts long enough to straddle
      // the bump: without the lock on the shard row, a write that read epoch 1 before the bump
      // would commit after it.
      yield* slowRows(sql, prefix, "steps", 0.03)
      const acknowledged: Array<string> = []
      const refused: Array<string> = []
      /** Writes attempt markers with epoch 1 until one is refused. */
      const writer = (id: string, index: number) =>
        Effect.gen(function* () {
          const journal = pods[index % 2]!.journal
          for (let n = 1; ; n++) {
            const stepKey = `s${n}`
            const exit = yield* Effect.exit(journal.write(markerAtEpoch1(id, n)))
            if (Exit.isSuccess(exit)) {
              acknowledged.push(`${id}/${stepKey}`)
              continue
            }
            refused.push(`${id}/${stepKey}`)
            return Option.getOrUndefined(Exit.findErrorOption(exit))
          }
        })
      const writers = yield* Effect.forEach(ids, writer, { concurrency: "unbounded" }).pipe(Effect.forkScoped)
      yield* Effect.sleep("400 millis")
      yield* manager.shards.assign([{ shard: 1, from: "a", to: "b" }])
      const landed = sql<{ readonly key: string }>`SELECT execution_id || '/' || step_key AS key
        FROM ${sql(`${prefix}steps`)} ORDER BY 1`.pipe(Effect.map((rows) => rows.map((row) => row.key)))
      const atBump = yield* landed
      const errors = yield* Fiber.join(writers).pipe(Effect.timeout("30 seconds"))
      for (const error of errors)
        expect(error).toMatchObject({ _tag: "StaleEpochError", epoch: 1, currentEpoch: 2 })
      const atEnd = yield* landed
      expect(atBump.length).toBeGreaterThan(ids.length)
      expect(atEnd).toEqual(atBump)
      expect([...acknowledged].sort()).toEqual(atEnd)
      for (const key of refused) expect(atEnd).not.toContain(key)
    }).pipe(Effect.scoped)
  )

  it.live(
    "a write that comes while an epoch bump waits goes after it: writes that keep coming cannot starve it",
    () =>
      Effect.gen(function* () {
        // A long lease: the bump's lock waits are bounded by a tenth of it, and this one waits 3 s.
        const { sql, prefix, pods, manager } = yield* shardOneOwned(LONG)
        const [first, second] = idsInShard(1, 4, 2, "gate")
        for (const id of [first!, second!]) yield* pods[0]!.journal.start(newExecution(id))
        // A step row takes 3 s to insert: the first write holds the shard's row share-locked that long.
        yield* slowRows(sql, prefix, "steps", 3)
        const write = (pod: number, executionId: string) =>
          Effect.exit(pods[pod]!.journal.write(markerAtEpoch1(executionId, 1)))
        // Sessions are told apart by this test's tables (other files' tests share the server).
        const ours = `%${prefix}%`
        /** Polls `query` (pids) every 25 ms until it returns one; that pid. */
        const until = (what: string, query: Statement.Statement<{ readonly pid: unknown }>) =>
          Effect.gen(function* () {
            for (let i = 0; i < 400; i++) {
              const [row] = yield* query
              if (row !== undefined) return Number(row.pid)
              yield* Effect.sleep("25 millis")
            }
            return yield* Effect.die(new Error(`never seen: ${what}`))
          })
        const sessions = sql`SELECT pid FROM pg_stat_activity WHERE datname = current_database()
          AND pid <> pg_backend_pid() AND query LIKE ${ours}`
        const inFlight = yield* Effect.forkScoped(write(0, first!))
        const writing = yield* until(
          "the first write in its insert",
          sql`${sessions} AND wait_event = 'PgSleep'`
        )
        const bump = yield* Effect.forkScoped(manager.shards.assign([{ shard: 1, from: "a", to: "b" }]))
        const bumping = yield* until(
          "the bump waiting for the first write",
          sql`SELECT pid FROM pg_stat_activity WHERE ${writing} = ANY(pg_blocking_pids(pid))`
        )
        // A share lock on the row would let this write in past the waiting bump (and the next, and
        // the next: busy pods starved a bump for seconds, for good in a test that timed out).
        const late = yield* Effect.forkScoped(write(1, second!))
        yield* until(
          "the late write at its lock (waiting for the bump, or past it in its insert)",
          sql`${sessions} AND pid NOT IN (${writing}, ${bumping})
            AND (${bumping} = ANY(pg_blocking_pids(pid)) OR wait_event = 'PgSleep')`
        )
        // Seen while the first write still held its lock: the order this test is about.
        expect(inFlight.pollUnsafe(), "the first write was still in flight").toBeUndefined()
        expect(Exit.isSuccess(yield* Fiber.join(inFlight))).toBe(true)
        yield* Fiber.join(bump).pipe(Effect.timeout("20 seconds"))
        const lateExit = yield* Fiber.join(late).pipe(Effect.timeout("20 seconds"))
        expect(Option.getOrUndefined(Exit.findErrorOption(lateExit))).toMatchObject({
          _tag: "StaleEpochError",
          epoch: 1,
          currentEpoch: 2
        })
        const landed = yield* sql<{
          readonly execution_id: string
        }>`SELECT execution_id FROM ${sql(`${prefix}steps`)}`
        expect(landed.map((row) => row.execution_id)).toEqual([first])
      }).pipe(Effect.scoped)
  )

  it.live(
    "a release waits for the epoch gate a tenth of a lease at most: a writer holding it fails it, not the store",
    () =>
      Effect.gen(function* () {
        const storage = yield* postgres.storage
        const { sql, prefix } = storage.raw!
        const owner = yield* storage.openCluster
        const writer = yield* storage.openCluster
        yield* owner.shards.init(4)
        // A 2 s lease: the release's lock waits end after 200 ms.
        yield* owner.shards.register("a", 2_000)
        yield* owner.shards.assign([{ shard: 1, from: null, to: "a" }])
        const [id] = idsInShard(1, 4, 1, "held")
        yield* writer.journal.start(newExecution(id!))
        // A write that takes 3 s holds the gate shared (as one that hangs would, longer).
        yield* slowRows(sql, prefix, "steps", 3)
        const held = yield* Effect.forkScoped(writer.journal.write(markerAtEpoch1(id!, 1)))
        for (let i = 0; ; i++) {
          const rows = yield* sql`SELECT 1 FROM pg_stat_activity WHERE datname = current_database()
          AND query LIKE ${`%${prefix}%`} AND wait_event = 'PgSleep'`
          if (rows.length > 0) break
          if (i === 400) return yield* Effect.die(new Error("the write never reached its insert"))
          yield* Effect.sleep("25 millis")
        }
        const refused = yield* Effect.flip(owner.shards.release("a", 1, 1))
        expect(refused._tag).toBe("ShardStoreError")
        expect(refused.message).toContain("lock timeout")
        // It gave up while the write still held the gate: it did not wait for it.
        expect(held.pollUnsafe(), "the write was still in flight").toBeUndefined()
        yield* Fiber.join(held)
        // The next round's try goes through.
        expect(yield* owner.shards.release("a", 1, 1)).toBe(true)
      }).pipe(Effect.scoped)
  )

  it.live(
    "entity completions racing an epoch bump: once the bump has committed, none with the old epoch lands",
    () =>
      Effect.gen(function* () {
        const { sql, prefix, pods, manager } = yield* shardOneOwned()
        // As above: each message row takes 30 ms to write, so a batch straddles the bump.
        yield* slowRows(sql, prefix, "entity_messages", 0.03, "INSERT OR UPDATE")
        const acknowledged: Array<string> = []
        const refused: Array<string> = []
        /** Completes new messages of one entity with epoch 1 until one is refused. */
        const writer = (entityId: string, index: number) =>
          Effect.gen(function* () {
            const entities = pods[index % 2]!.entities
            for (let n = 1; ; n++) {
              const messageId = `m${n}`
              const [result] = yield* entities.complete([
                {
                  entityType: "Cart",
                  entityId,
                  messageId,
                  fence: { shard: 1, epoch: 1 },
                  shard: 1,
                  payload: "{}",
                  reply: null,
                  state: `"${messageId}"`,
                  now: n
                }
              ])
              if (result?._tag === "Written") {
                acknowledged.push(`${entityId}/${messageId}`)
                continue
              }
              refused.push(`${entityId}/${messageId}`)
              return result
            }
          })
        const ids = Array.from({ length: 8 }, (_, i) => `cart-${i}`)
        const writers = yield* Effect.forEach(ids, writer, { concurrency: "unbounded" }).pipe(
          Effect.forkScoped
        )
        yield* Effect.sleep("400 millis")
        yield* manager.shards.assign([{ shard: 1, from: "a", to: "b" }])
        const landed = sql<{ readonly key: string }>`SELECT entity_id || '/' || message_id AS key
        FROM ${sql(`${prefix}entity_messages`)} ORDER BY 1`.pipe(
          Effect.map((rows) => rows.map((row) => row.key))
        )
        const atBump = yield* landed
        const results = yield* Fiber.join(writers).pipe(Effect.timeout("30 seconds"))
        for (const result of results) expect(result).toEqual({ _tag: "Stale", currentEpoch: 2 })
        const atEnd = yield* landed
        expect(atBump.length).toBeGreaterThan(ids.length)
        expect(atEnd).toEqual(atBump)
        expect([...acknowledged].sort()).toEqual(atEnd)
        for (const key of refused) expect(atEnd).not.toContain(key)
        // Each entity's state is its last acknowledged message's.
        for (const entityId of ids) {
          const last = acknowledged
            .filter((key) => key.startsWith(`${entityId}/`))
            .at(-1)
            ?.split("/")[1]
          expect(yield* pods[0]!.entities.state({ entityType: "Cart", entityId })).toBe(
            last === undefined ? undefined : `"${last}"`
          )
        }
      }).pipe(Effect.scoped)
  )
  it.live(
    "a pod starting while another session holds the ownership lock waits for it in bounded tries (each one gives up, then tries again) instead of failing",
    () =>
      Effect.gen(function* () {
        const url = inject("postgresUrl")
        const tablePrefix = `lockwait_${Math.random().toString(36).slice(2, 8)}_`
        const other = Context.get(yield* Layer.build(PostgresJournal.clientLayer({ url })), SqlClient)
        const locked = yield* Deferred.make<void>()
        const release = yield* Deferred.make<void>()
        // A session holds the ownership lock, as a pod frozen inside an ownership transaction does.
        const holder = yield* Effect.forkChild(
          other.withTransaction(
            Effect.gen(function* () {
              yield* other`SELECT pg_advisory_xact_lock(${advisoryLockKey(`${tablePrefix}:ownership`)})`
              yield* Deferred.succeed(locked, undefined)
              yield* Deferred.await(release)
            })
          )
        )
        yield* Deferred.await(locked)
        const starting = yield* Effect.forkChild(
          Effect.scoped(
            Effect.map(
              WorkflowEngine.makeScoped(Workflow.union(noop), { podId: "waiting", leaseTtl: "1 second" }),
              (engine) => engine.podId()
            )
          ).pipe(Effect.provide(PostgresJournal.layer({ url, tablePrefix, maxConnections: 3 })))
        )
        // The pod's transactions wait for the lock (lock_timeout TTL/10), give up and try again:
        // two waits in two different transactions show a retry.
        const waits = new Set<string>()
        for (let i = 0; i < 300 && waits.size < 2; i++) {
          const rows = yield* other<{ readonly started: unknown }>`SELECT a.xact_start::text AS started
            FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
            WHERE l.locktype = 'advisory' AND NOT l.granted AND l.objsubid = 1
            AND l.objid = ${advisoryLockKey(`${tablePrefix}:ownership`)}`
          for (const row of rows) waits.add(String(row.started))
          if (waits.size < 2) yield* Effect.sleep("10 millis")
        }
        yield* Deferred.succeed(release, undefined)
        yield* Fiber.join(holder)
        expect(waits.size).toBe(2)
        expect(yield* Fiber.join(starting)).toBe("waiting")
      }).pipe(Effect.scoped)
  )
  it.live(
    "a running pod whose rounds find the ownership lock held skips them (logged at debug), keeps renewing and keeps its shards",
    () => {
      const lines: Array<{ readonly level: string; readonly text: string }> = []
      const logger = Logger.make((options) => {
        const message = options.message
        lines.push({
          level: options.logLevel,
          text: Array.isArray(message) ? message.map(String).join(" ") : String(message)
        })
      })
      const url = inject("postgresUrl")
      const tablePrefix = `lockskip_${Math.random().toString(36).slice(2, 8)}_`
      return Effect.gen(function* () {
        const engine = yield* WorkflowEngine.makeScoped(Workflow.union(noop), {
          podId: "busy",
          leaseTtl: "1 second",
          shardCount: 8
        })
        const before = (yield* engine.shards()).map((shard) => `${shard.shard}:${shard.owner}@${shard.epoch}`)
        expect(before.every((shard) => shard.includes(":busy@"))).toBe(true)
        const other = Context.get(yield* Layer.build(PostgresJournal.clientLayer({ url })), SqlClient)
        const locked = yield* Deferred.make<void>()
        const release = yield* Deferred.make<void>()
        const holder = yield* Effect.forkChild(
          other.withTransaction(
            Effect.gen(function* () {
              yield* other`SELECT pg_advisory_xact_lock(${advisoryLockKey(`${tablePrefix}:ownership`)})`
              yield* Deferred.succeed(locked, undefined)
              yield* Deferred.await(release)
            })
          )
        )
        yield* Deferred.await(locked)
        // Twelve rounds that each waited (at most TTL/10) in a transaction of their own: more than
        // a TTL with the lock held.
        const waits = new Set<string>()
        for (let i = 0; i < 400 && waits.size < 12; i++) {
          const rows = yield* other<{ readonly started: unknown }>`SELECT a.xact_start::text AS started
            FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
            WHERE l.locktype = 'advisory' AND NOT l.granted AND l.objsubid = 1
            AND l.objid = ${advisoryLockKey(`${tablePrefix}:ownership`)}`
          for (const row of rows) waits.add(String(row.started))
          if (waits.size < 12) yield* Effect.sleep("10 millis")
        }
        yield* Deferred.succeed(release, undefined)
        yield* Fiber.join(holder)
        expect(waits.size).toBe(12)
        const [pod] = yield* engine.pods()
        expect(pod?.liveness).toBe("live")
        expect(
          (yield* engine.shards()).map((shard) => `${shard.shard}:${shard.owner}@${shard.epoch}`)
        ).toEqual(before)
        expect(lines.filter((line) => line.level === "Warn" || line.level === "Error")).toEqual([])
        expect(
          lines.some((line) => line.level === "Debug" && line.text.includes("ownership round skipped"))
        ).toBe(true)
      }).pipe(
        Effect.scoped,
        Effect.provide(PostgresJournal.layer({ url, tablePrefix, maxConnections: 3 })),
        Effect.provide(Logger.layer([logger])),
        Effect.provideService(References.MinimumLogLevel, "Debug")
      )
    }
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
