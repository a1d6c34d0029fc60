/**
 * effect-cluster's PostgreSQL storage, a subpath of its own so that the package root works without
 * the PostgreSQL driver: install `@effect/sql-pg` next to `effect-cluster` to use it.
 *
 * @example
 * ```ts
 * import { Effect, Redacted } from "effect"
 * import { PostgresJournal } from "effect-cluster/postgres"
 *
 * program.pipe(Effect.provide(PostgresJournal.layer({ url: Redacted.make("postgres://app@db/orders") })))
 * ```
 */

/** The operator API (`Admin`) on a PostgreSQL store: `AdminPostgres.layer(url)`. */
export * as AdminPostgres from "./admin/AdminPostgres.ts"
/** The production store: PostgreSQL through `@effect/sql-pg`. */
export * as PostgresJournal from "./storage/postgres/PostgresJournal.ts"
