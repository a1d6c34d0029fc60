/**
 * Taking shards over: their `running` executions are read and each gets a run, a page at a time;
 * the next page is made once the runs of this one have loaded their journals (a shared limit
 * bounds how many load at once). It runs in the background: the engine accepts new work meanwhile.
 *
 * The shards taken over together (300 when a pod starts alone) are resumed as one, in the order of
 * their executions' ids: each shard's executions are read in id order, and a page takes the
 * smallest ids among them. Each shard alone is spread over the whole range of ids, so resuming
 * shard after shard wrote all over the journal's tables at once (each batch of a group commit
 * dirtied a page of the tables per execution); in id order a batch's writes fall on neighbouring
 * rows. Measured on SQLite: 2.5x less time in statements and commits per resumed execution.
 *
 * A shard's executions that cannot be read (the journal gave up: a statement timeout, a broken
 * table) are logged and read again after a pause, while the shard is still owned: its executions
 * are not left behind until the shard moves.
 */
import { Deferred, Effect, Schedule } from "effect"
import type { ExecutionRecord } from "../DurableExecutionJournal.ts"
import type { RunHandle } from "./ExecutionRunner.ts"
import type { RunJournal } from "./FencedJournal.ts"

/** Executions started per page (and read per query when one shard is resumed). */
export const PAGE = 256

/**
 * Rows read ahead for all the shards resumed together: each reads `READ_AHEAD / shards` at a time,
 * at least `MIN_CHUNK`. It bounds the rows held at once (with their requests): 4,800 for 300
 * shards, against 512 when two workers read a page each; smaller chunks cost more queries (~3,100
 * for 50,000 executions in 300 shards).
 */
const READ_AHEAD = 4_096
const MIN_CHUNK = 16

/** The pause before a failed read is tried again: 1 s doubling, at most 30 s apart. */
const relistBackoff = Schedule.min([Schedule.exponential(1_000), Schedule.spaced(30_000)])

/** How `resumeShards` reads the journal and starts runs. */
export interface ResumeOptions {
  readonly journal: RunJournal
  /** Whether this engine still runs `shard` (its executions are left alone once it moved). */
  readonly stillOwned: (shard: number) => boolean
  /** Gives a run (or none, for a row it suspends or another pod owns). */
  readonly start: (row: ExecutionRecord) => Effect.Effect<RunHandle | undefined, unknown>
}

/** One shard's executions, read in id order a chunk at a time. */
interface Cursor {
  readonly shard: number
  rows: ReadonlyArray<ExecutionRecord>
  next: number
  /** The last id read (the next chunk starts after it); undefined before the first. */
  after: string | undefined
}

/**
 * Resumes every `running` execution of `shards`, in the order of their ids, skipping the shards
 * that move meanwhile. Returns how many runs it started.
 */
export const resumeShards = (
  options: ResumeOptions,
  shards: ReadonlyArray<number>
): Effect.Effect<number, unknown> =>
  Effect.gen(function* () {
    const chunk = Math.min(PAGE, Math.max(MIN_CHUNK, Math.floor(READ_AHEAD / shards.length)))
    const heads = new Heads()
    for (const shard of shards) {
      const cursor: Cursor = { shard, rows: [], next: 0, after: undefined }
      if (yield* refill(options, cursor, chunk)) heads.push(cursor)
    }
    let resumed = 0
    while (heads.size > 0) {
      const page: Array<ExecutionRecord> = []
      while (page.length < PAGE && heads.size > 0) {
        const cursor = heads.pop()
        if (!options.stillOwned(cursor.shard)) continue
        page.push(cursor.rows[cursor.next++]!)
        if (cursor.next < cursor.rows.length || (yield* refill(options, cursor, chunk))) heads.push(cursor)
      }
      const handles = yield* Effect.forEach(page, options.start)
      for (const handle of handles) {
        if (handle === undefined) continue
        resumed++
        yield* Deferred.await(handle.state.loaded)
      }
    }
    return resumed
  })

/**
 * Reads the cursor's next chunk, until it is read or the shard moved; false when nothing is left
 * (the chunk came back empty: then the cursor is dropped) or the shard moved.
 */
const refill = (options: ResumeOptions, cursor: Cursor, limit: number): Effect.Effect<boolean> =>
  options.stillOwned(cursor.shard)
    ? // Asked again at each try (the journal's effect may be a value made once).
      Effect.suspend(() =>
        options.journal.listUnfinished({ shard: cursor.shard, after: cursor.after, limit })
      ).pipe(
        Effect.map((rows) => {
          cursor.rows = rows
          cursor.next = 0
          // Only an empty chunk ends the shard, not a short one: the journal leaves out a row that
          // does not decode (logged), and the shard's next rows are not to be left behind with it.
          if (rows.length > 0) cursor.after = rows[rows.length - 1]!.executionId
          return rows.length > 0
        }),
        Effect.tapError((error) =>
          Effect.logError(`the executions of shard ${cursor.shard} could not be listed; trying again`, error)
        ),
        Effect.retry({ while: () => options.stillOwned(cursor.shard), schedule: relistBackoff }),
        Effect.catch(() => Effect.succeed(false))
      )
    : Effect.succeed(false)

/** The cursors with rows left, smallest next id first (a binary heap). */
class Heads {
  private readonly heap: Array<Cursor> = []

  get size(): number {
    return this.heap.length
  }

  push(cursor: Cursor): void {
    const heap = this.heap
    heap.push(cursor)
    let i = heap.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (!before(heap[i]!, heap[parent]!)) break
      ;[heap[i], heap[parent]] = [heap[parent]!, heap[i]!]
      i = parent
    }
  }

  /** Removes and returns the cursor whose next id is the smallest; there must be one. */
  pop(): Cursor {
    const heap = this.heap
    const top = heap[0]!
    const last = heap.pop()!
    if (heap.length > 0) {
      heap[0] = last
      let i = 0
      while (true) {
        const left = 2 * i + 1
        const right = left + 1
        let smallest = i
        if (left < heap.length && before(heap[left]!, heap[smallest]!)) smallest = left
        if (right < heap.length && before(heap[right]!, heap[smallest]!)) smallest = right
        if (smallest === i) break
        ;[heap[i], heap[smallest]] = [heap[smallest]!, heap[i]!]
        i = smallest
      }
    }
    return top
  }
}

/**
 * Whether `a`'s next id comes before `b`'s. JavaScript compares UTF-16 code units, the journal
 * bytes: they differ only past U+D7FF, and then the order is only less tidy, never wrong, since
 * each cursor reads its own shard in the journal's order.
 */
const before = (a: Cursor, b: Cursor): boolean => a.rows[a.next]!.executionId < b.rows[b.next]!.executionId
