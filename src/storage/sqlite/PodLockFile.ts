/**
 * The liveness marker of a pod on the embedded store: an OS lock on a small SQLite database of the
 * pod's own, in a folder next to the journal file.
 *
 * Node has no `flock`, but SQLite's locks are OS (`fcntl`) locks, which the kernel releases when
 * the process that holds them dies, however it dies. The pod opens its lock database with
 * `locking_mode=EXCLUSIVE` and writes to it once: from then on its connection holds the exclusive
 * lock until it closes. Another process (or connection) that tries to read the file with a zero busy
 * timeout gets `SQLITE_BUSY` while the pod lives, and succeeds once it is gone. A stopped process
 * (SIGSTOP) still holds its lock: it is judged by its lease instead.
 *
 * The file's path is what the pod's row records. The file is deleted when the pod's scope closes,
 * and by whoever removes the pod after it died.
 */
import { mkdirSync, rmSync } from "node:fs"
import { basename, dirname, join } from "node:path"
import type { DatabaseSync } from "node:sqlite"
import { Effect, Random } from "effect"
import { ShardStoreError } from "../../sharding/ShardingErrors.ts"
import type { LivenessMarker } from "../sql/SqlShardStore.ts"

/** `node:sqlite`, loaded when a pod first needs it (importing it warns on Node 22). */
let sqlite: typeof import("node:sqlite") | undefined
const loadSqlite = Effect.promise(async () => {
  sqlite ??= await import("node:sqlite")
  return sqlite
})

/** SQLite's primary result codes that mean "another connection holds the lock". */
const BUSY = 5
const LOCKED = 6
/** SQLite's primary result code for "database or disk is full". */
const FULL = 13

/** Whether creating a lock file failed for want of room: the disk is full (it passes). */
const isDiskFull = (error: unknown): boolean =>
  errcode(error) === FULL ||
  (typeof error === "object" && error !== null && "code" in error && error.code === "ENOSPC")

const errcode = (error: unknown): number | undefined =>
  typeof error === "object" && error !== null && "errcode" in error && typeof error.errcode === "number"
    ? error.errcode & 0xff
    : undefined

/** The folder of the pods' lock files of the journal file `journalFile`. */
export const directoryOf = (journalFile: string): string =>
  join(dirname(journalFile), `${basename(journalFile)}-pods`)

/** Whether a live process holds the lock of `path`. A missing file is not held. */
const isHeld = (path: string, { DatabaseSync }: typeof import("node:sqlite")): boolean => {
  let db: DatabaseSync | undefined
  try {
    // Read-only: a checker never creates the file, nor takes a write lock.
    db = new DatabaseSync(path, { readOnly: true, timeout: 0 })
    db.prepare("SELECT count(*) FROM sqlite_master").get()
    return false
  } catch (error) {
    const code = errcode(error)
    if (code === BUSY || code === LOCKED) return true
    // The file vanished (its pod unregistered, or was removed): nothing holds it. Any other
    // failure proves nothing: the pod counts as held, and its lease decides.
    return !/unable to open|no such file/i.test(String(error))
  } finally {
    db?.close()
  }
}

/** Deletes a lock file and what SQLite may have left beside it. */
const remove = (path: string) => {
  for (const file of [path, `${path}-journal`]) rmSync(file, { force: true })
}

/** Lock files in `directory` (see the module comment). */
export const make = (directory: string): LivenessMarker => ({
  // The kernel releases an fcntl lock only when its process closes the file or dies: SQLite keeps
  // the locks of a file open in the process until its last connection to it closes, so a checker
  // of this process opening and closing the file does not release them.
  endsWithProcess: true,
  hold: (podId) =>
    Effect.acquireRelease(
      Effect.gen(function* () {
        const { DatabaseSync } = yield* loadSqlite
        const suffix = (yield* Random.nextIntBetween(0, 0x7fffffff)).toString(36)
        const name = `${podId.replace(/[^\w.-]/g, "_").slice(0, 40)}-${suffix}.lock`
        const path = join(directory, name)
        const db = yield* Effect.try({
          try: () => {
            mkdirSync(directory, { recursive: true })
            const opened = new DatabaseSync(path)
            try {
              opened.exec("PRAGMA locking_mode = EXCLUSIVE")
              opened.exec("PRAGMA journal_mode = DELETE")
              // The first write takes the exclusive lock, which EXCLUSIVE mode never releases.
              opened.exec("CREATE TABLE IF NOT EXISTS pod (id TEXT NOT NULL)")
              opened.prepare("INSERT INTO pod (id) VALUES (?)").run(podId)
              return opened
            } catch (error) {
              opened.close()
              remove(path)
              throw error
            }
          },
          catch: (error) =>
            isDiskFull(error)
              ? new ShardStoreError({
                  operation: "register",
                  detail: `cannot take the lock file ${path} of pod ${JSON.stringify(podId)}: the disk is full (${String(error)})`,
                  transient: true
                })
              : new ShardStoreError({
                  operation: "register",
                  detail: `cannot take the lock file ${path} of pod ${JSON.stringify(podId)}: ${String(error)}`,
                  transient: false
                })
        })
        return { db, path }
      }),
      ({ db, path }) =>
        Effect.sync(() => {
          db.close()
          remove(path)
        })
    ).pipe(Effect.map(({ path }) => path)),
  held: (markers) =>
    Effect.map(loadSqlite, (module) => new Set(markers.filter((marker) => isHeld(marker, module)))),
  forget: (marker) => Effect.sync(() => remove(marker))
})
