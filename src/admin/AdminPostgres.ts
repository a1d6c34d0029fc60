/**
 * The operator API (`Admin`) on a PostgreSQL store, in `effect-cluster/postgres` because it needs
 * `@effect/sql-pg`. A malformed URL is an `InvalidStoreUrlError` before anything connects; a
 * server that cannot be reached or refuses the login is a `StoreUnavailableError` after the
 * connect timeout (default 5 seconds), naming the URL without its password.
 *
 * @example
 * ```ts
 * import { Admin } from "effect-cluster"
 * import { AdminPostgres } from "effect-cluster/postgres"
 *
 * program.pipe(Effect.provide(AdminPostgres.layer("postgres://ops@db/orders")))
 * ```
 */
import { Duration, Effect, Layer, Redacted } from "effect"
import * as PostgresJournal from "../storage/postgres/PostgresJournal.ts"
import type { SchemaVersionError } from "../workflow/WorkflowErrors.ts"
import * as Admin from "./Admin.ts"
import { InvalidStoreUrlError, StoreUnavailableError } from "./AdminErrors.ts"

/** Options of `layer`. */
export interface AdminPostgresOptions extends Admin.StoreOptions {
  /** How long to wait for the server. Default 5 seconds. */
  readonly connectTimeout?: Duration.Input | undefined
}

/** Checks that `url` is a PostgreSQL URL (without connecting). */
export const checkUrl = (url: string): Effect.Effect<string, InvalidStoreUrlError> =>
  Effect.suspend(() => {
    let parsed: URL
    try {
      parsed = new URL(url)
    } catch {
      return Effect.fail(
        new InvalidStoreUrlError({ url: PostgresJournal.redactUrl(url), detail: "it is not a URL" })
      )
    }
    if (parsed.protocol !== "postgres:" && parsed.protocol !== "postgresql:") {
      return Effect.fail(
        new InvalidStoreUrlError({
          url: PostgresJournal.redactUrl(url),
          detail: `its scheme is "${parsed.protocol.replace(/:$/, "")}", not postgres`
        })
      )
    }
    if (parsed.hostname === "" && !parsed.searchParams.has("host")) {
      return Effect.fail(
        new InvalidStoreUrlError({ url: PostgresJournal.redactUrl(url), detail: "it names no host" })
      )
    }
    return Effect.succeed(url)
  })

/**
 * The operator API on the PostgreSQL store at `url`. Its schema is checked, not migrated, unless
 * `migrate: true`: a typo in the table prefix creates nothing.
 */
export const layer = (
  url: string | Redacted.Redacted,
  options: AdminPostgresOptions = {}
): Layer.Layer<Admin.Admin, InvalidStoreUrlError | StoreUnavailableError | SchemaVersionError> => {
  const text = typeof url === "string" ? url : Redacted.value(url)
  const store = PostgresJournal.redactUrl(text)
  return Layer.unwrap(
    Effect.map(checkUrl(text), () =>
      Admin.layer.pipe(
        Layer.provide(
          (options.migrate === true ? PostgresJournal.layer : PostgresJournal.layerExisting)({
            url: Redacted.make(text),
            tablePrefix: options.tablePrefix,
            maxConnections: 2,
            connectTimeout: options.connectTimeout ?? Duration.seconds(5)
          })
        ),
        Layer.catchTag("JournalError", (error) =>
          Layer.effect(Admin.Admin, Effect.fail(new StoreUnavailableError({ store, detail: error.message })))
        )
      )
    )
  )
}
