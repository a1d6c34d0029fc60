/**
 * A probe for tests only: called inside every ownership transaction of `SqlShardStore`, right
 * after the transaction holds the ownership lock (PostgreSQL: the advisory lock of the table
 * prefix; SQLite: the file's writer lock, taken by `BEGIN IMMEDIATE`).
 *
 * The multi-process tests provide it to freeze a pod (`SIGSTOP` to itself) exactly while it holds
 * that lock, the worst moment for a pod to pause. Programs never provide it: the default does
 * nothing. Not exported from the package.
 */
import { Context, Effect } from "effect"

/** Runs with the ownership lock held; `operation` is the `ShardStore` operation, e.g. `acquireManager`. */
export const OwnershipLocked = Context.Reference<(operation: string) => Effect.Effect<void>>(
  "effect-cluster/storage/sql/internal/OwnershipLocked",
  { defaultValue: () => () => Effect.void }
)
