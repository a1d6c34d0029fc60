/**
 * The store a command works on: `--file PATH` (SQLite), else `--postgres URL`, else the
 * `DATABASE_URL` variable; the `Admin` service on it. PostgreSQL support is loaded only when asked
 * for, so the tool works without `@effect/sql-pg` on embedded stores.
 */
import { Config, Effect, type Layer, Option } from "effect"
import * as Admin from "../../admin/Admin.ts"
import {
  InvalidArgumentError,
  type InvalidStoreUrlError,
  NoStoreError,
  type StoreNotFoundError,
  StoreUnavailableError
} from "../../admin/AdminErrors.ts"
import type { SchemaVersionError } from "../../workflow/WorkflowErrors.ts"
import { root } from "../root.ts"

/** Why the store could not be opened. */
type AdminStoreError = StoreNotFoundError | StoreUnavailableError | InvalidStoreUrlError | SchemaVersionError

const loadPostgres = Effect.tryPromise({
  try: () => import("../../admin/AdminPostgres.ts"),
  catch: (error) =>
    new StoreUnavailableError({
      store: "PostgreSQL",
      detail: `its driver cannot be loaded (install @effect/sql-pg next to effect-cluster): ${error instanceof Error ? error.message : String(error)}`
    })
})

/** Runs `f` with the operator API on the store the shared flags name. */
export const withAdmin = <A, E, R>(f: (admin: Admin.Admin["Service"]) => Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const flags = yield* root
    const options = { tablePrefix: Option.getOrUndefined(flags.tablePrefix), migrate: flags.migrate }
    if (Option.isSome(flags.file) && Option.isSome(flags.postgres)) {
      return yield* new InvalidArgumentError({
        argument: "store",
        value: "--file and --postgres",
        expected: "one store: --file PATH or --postgres URL, not both"
      })
    }
    const url = Option.isSome(flags.postgres)
      ? flags.postgres
      : Option.isSome(flags.file)
        ? Option.none<string>()
        : yield* Config.option(Config.String("DATABASE_URL"))
    const layer: Layer.Layer<Admin.Admin, AdminStoreError> | undefined = Option.isSome(flags.file)
      ? Admin.layerFile(flags.file.value, options)
      : Option.isSome(url)
        ? (yield* loadPostgres).layer(url.value, options)
        : undefined
    if (layer === undefined) return yield* new NoStoreError()
    return yield* Effect.flatMap(Admin.Admin, f).pipe(Effect.provide(layer))
  })
