/**
 * PostgreSQL: the order of fenced writes and epoch bumps, beside the shard rows' locks.
 *
 * A fenced write share-locks its shards' rows (`FOR SHARE`) so that a bump (`UPDATE … epoch =
 * epoch + 1`) waits for the writes in flight. But a row lock lets a new share locker in past an
 * updater that waits: while the writes of busy pods overlap without a gap, the bump waits for as
 * long as they come (seen under load: 5 s, 15 s, and for good in a test that timed out), and with
 * it the handover of the shard. So both also take this advisory lock, a lock that queues: a write
 * shared, a bump exclusive. A bump waits only for the writes already in flight, and the writes
 * that come after it wait for its commit (then their fence check refuses them).
 *
 * One key per store, not per shard: a write takes one lock however many shards it names (a
 * batch at concurrency 256 names ~170). The price: a bump holds every fenced write of the store
 * back while it waits for the longest write in flight and commits (a few milliseconds; handovers'
 * releases take turns). Every bump's lock waits are bounded (TTL/10, as the ownership
 * transactions'), so a writer that hangs holding the gate fails the bump, retried at the next
 * round, rather than stalling the store behind it.
 */
import type { SqlClient } from "effect/sql/SqlClient"
import type * as Statement from "effect/sql/Statement"
import { advisoryLockKey } from "../Migrations.ts"
import { inIntegers } from "./lists.ts"

const keyOf = (prefix: string): number => advisoryLockKey(`${prefix}:epochs`)

/** A `FROM` item for a fenced write's statement: the gate taken shared, until the commit. */
export const sharedGate = (sql: SqlClient, prefix: string): Statement.Fragment =>
  sql`(SELECT pg_advisory_xact_lock_shared(${keyOf(prefix)})) AS epoch_gate`

/**
 * A fenced write's read of its shards' epochs (`shard_id`, `epoch`), behind the shared gate, the
 * rows share-locked in shard order until the commit (the order bumps lock them in).
 */
export const lockedEpochs = (sql: SqlClient, prefix: string, shardIds: ReadonlyArray<number>) => {
  const shards = sql(`${prefix}shards`)
  return sql<{ readonly shard_id: unknown; readonly epoch: unknown }>`SELECT shard_id, epoch
    FROM ${shards}, ${sharedGate(sql, prefix)}
    WHERE ${inIntegers(sql, "pg", "shard_id", shardIds)} ORDER BY shard_id FOR SHARE OF ${shards}`
}

/** What a bump runs before it locks the shard rows: the gate, exclusive (a `FROM` may follow). */
export const exclusiveGate = (sql: SqlClient, prefix: string) =>
  sql`SELECT pg_advisory_xact_lock(${keyOf(prefix)})`
