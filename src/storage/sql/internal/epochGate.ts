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
 * One key per store, not per shard: a bump (rare) holds every write of the store back for the
 * milliseconds of its transaction, and a write takes one lock however many shards it names.
 */
import type { SqlClient } from "effect/sql/SqlClient"
import type * as Statement from "effect/sql/Statement"
import { advisoryLockKey } from "../Migrations.ts"

const keyOf = (prefix: string) => advisoryLockKey(`${prefix}:epochs`)

/** A `FROM` item for a fenced write's statement: the gate taken shared, until the commit. */
export const sharedGate = (sql: SqlClient, prefix: string): Statement.Fragment =>
  sql`(SELECT pg_advisory_xact_lock_shared(${keyOf(prefix)})) AS epoch_gate`

/** The statement a bump's transaction runs before it locks the shard rows: the gate, exclusive. */
export const exclusiveGate = (sql: SqlClient, prefix: string) =>
  sql`SELECT pg_advisory_xact_lock(${keyOf(prefix)})`
