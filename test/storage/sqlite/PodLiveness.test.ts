/**
 * Liveness of pods on the embedded store, with real processes: a pod whose process died is gone at
 * once (the kernel released its lock file), whatever its lease says; a stopped process (SIGSTOP)
 * still holds its lock, so it is live until its lease ends, then expired — never gone.
 */
import { existsSync, readdirSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Clock, Effect } from "effect"
import { SqlClient } from "effect/sql/SqlClient"
import { DuplicatePodError } from "../../../src/sharding/ShardingErrors.ts"
import * as PodLockFile from "../../../src/storage/sqlite/PodLockFile.ts"
import * as SqliteClient from "../../../src/storage/sqlite/SqliteClient.ts"
import * as SqliteJournal from "../../../src/storage/sqlite/SqliteJournal.ts"
import { scopedTempDir } from "../../support/tempDir.ts"
import { spawnPod } from "../support/podProcess.ts"

const prefix = "effect_cluster_"

/** A journal file in a fresh folder, and the shard store of this process on it. */
const openStore = Effect.gen(function* () {
  const filename = join(yield* scopedTempDir("pod-liveness-"), "journal.db")
  const sql = yield* SqliteClient.make({ filename })
  const shards = yield* Effect.provideService(
    Effect.andThen(SqliteJournal.make(), SqliteJournal.makeShardStore()),
    SqlClient,
    sql
  )
  return { filename, shards }
})

const podOf = (shards: Effect.Success<typeof openStore>["shards"], podId: string) =>
  Effect.map(shards.pods, (pods) => pods.find((pod) => pod.podId === podId))

describe("pod liveness on SQLite, with real processes", () => {
  it.live("a SIGKILLed pod is gone at once, its lease still current; its id is taken again", () =>
    Effect.gen(function* () {
      const { filename, shards } = yield* openStore
      yield* shards.init(4)
      const child = yield* spawnPod(filename, prefix, "worker", 600_000)
      expect(yield* podOf(shards, "worker")).toMatchObject({ liveness: "live" })
      yield* shards.assign([{ shard: 3, from: null, to: "worker" }])
      expect(yield* Effect.flip(shards.register("worker", 60_000))).toBeInstanceOf(DuplicatePodError)
      const lockFiles = readdirSync(PodLockFile.directoryOf(filename)).filter((file) =>
        file.endsWith(".lock")
      )
      expect(lockFiles).toHaveLength(1)

      yield* child.kill
      const pod = yield* podOf(shards, "worker")
      expect(pod?.leaseUntil).toBeGreaterThan(yield* Clock.currentTimeMillis)
      expect(pod?.liveness).toBe("gone")
      // A new incarnation takes the id; the dead one's shard is released and its lock file removed.
      yield* shards.register("worker", 60_000)
      expect(yield* podOf(shards, "worker")).toMatchObject({ liveness: "live" })
      expect((yield* shards.shards)[2]).toMatchObject({ shard: 3, owner: null, epoch: 2 })
      expect(existsSync(join(PodLockFile.directoryOf(filename), lockFiles[0]!))).toBe(false)
    }).pipe(Effect.scoped)
  )

  it.live("a SIGSTOPped pod is live until its lease ends, then expired, not gone; gone once killed", () =>
    Effect.gen(function* () {
      const { filename, shards } = yield* openStore
      const ttl = 2_000
      const child = yield* spawnPod(filename, prefix, "sleeper", ttl)
      yield* child.signal("SIGSTOP")
      const pod = (yield* podOf(shards, "sleeper"))!
      const now = yield* Clock.currentTimeMillis
      expect(pod.leaseUntil).toBeGreaterThan(now)
      expect(pod.liveness).toBe("live")
      expect(yield* shards.acquireManager("sleeper", ttl)).toBe(true)
      // The manager's lease of a stopped but live pod is not taken over while it runs.
      yield* shards.register("other", 60_000)
      expect(yield* shards.acquireManager("other", 60_000)).toBe(false)
      yield* Effect.sleep(pod.leaseUntil - now + 100)
      expect((yield* podOf(shards, "sleeper"))?.liveness).toBe("expired")
      expect(yield* shards.acquireManager("other", 60_000)).toBe(true)
      yield* child.signal("SIGCONT")
      yield* child.kill
      expect((yield* podOf(shards, "sleeper"))?.liveness).toBe("gone")
      // Removing the dead pod deletes its lock file; the live pod's stays.
      yield* shards.removePod("sleeper")
      const left = readdirSync(PodLockFile.directoryOf(filename)).filter((file) => file.endsWith(".lock"))
      expect(left.map((file) => file.split("-")[0])).toEqual(["other"])
    }).pipe(Effect.scoped)
  )
})
