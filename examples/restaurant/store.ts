/**
 * Where the restaurant keeps its journal: the embedded SQLite file `<data>/restaurant.db` by
 * default, or a PostgreSQL database given with `--postgres URL` (tables `restaurant_demo_*`), and
 * where the waiters keep their ledger of every step they run (`<data>/restaurant-ledger.jsonl`)
 * and the plates they serve (`<data>/restaurant-pass/`). Each run of the demo starts from an empty
 * journal, ledger and pass.
 */
import { mkdirSync, rmSync, writeFileSync } from "node:fs"
import { dirname, join, resolve } from "node:path"
import { parseArgs } from "node:util"
import { type Layer, Schema } from "effect"
import type { DurableExecutionJournal, ShardStore } from "effect-cluster"
import { SqliteJournal, type WorkflowErrors } from "effect-cluster"
import { PostgresJournal } from "effect-cluster/postgres"
import { dropTables, resetSqlite } from "../shared/reset.ts"

/** The demo's tables in a PostgreSQL database: it resets only these. */
export const DEMO_TABLE_PREFIX = "restaurant_demo_"

/** Where one run of the demo keeps its state. */
export interface Store {
  /** The SQLite file, or the PostgreSQL URL. */
  readonly location: string
  /** The ledger file every waiter appends its steps to (one JSON line per attempt event). */
  readonly ledger: string
  /** The folder of the plates served (see `pass.ts`). */
  readonly pass: string
}

const PostgresUrl = Schema.String.check(
  Schema.isPattern(/^postgres(ql)?:\/\/\S+$/, {
    message: "expected a PostgreSQL URL such as postgres://user:password@localhost:5432/database"
  })
)

const Options = Schema.Struct({
  postgres: Schema.optional(PostgresUrl),
  data: Schema.optional(Schema.NonEmptyString)
})

/**
 * The store from the command line: `--postgres URL` for PostgreSQL, `--data DIR` for the folder of
 * the SQLite file, the ledger and the pass (default `.data`).
 */
export const storeFromArgs = (args: ReadonlyArray<string>): Store => {
  const { values } = parseArgs({
    args: [...args],
    options: { postgres: { type: "string" }, data: { type: "string" } },
    strict: true
  })
  const options = Schema.decodeUnknownSync(Options)(values)
  const data = resolve(options.data ?? ".data")
  return {
    location: options.postgres ?? join(data, "restaurant.db"),
    ledger: join(data, "restaurant-ledger.jsonl"),
    pass: join(data, "restaurant-pass")
  }
}

/** Whether the store is PostgreSQL (a URL) rather than a SQLite file. */
export const isPostgres = (location: string): boolean => location.startsWith("postgres")

/** The journal and the ownership tables on `location`, as every waiter (and the demo's reader) opens them. */
export const journalLayer = (
  location: string
): Layer.Layer<
  DurableExecutionJournal.DurableExecutionJournal | ShardStore.ShardStore,
  WorkflowErrors.JournalError
> =>
  isPostgres(location)
    ? PostgresJournal.layer({ url: location, tablePrefix: DEMO_TABLE_PREFIX })
    : SqliteJournal.layer({ filename: location })

/** Empties the journal, the ledger and the pass so the demo starts from scratch. */
export const resetStore = async (store: Store): Promise<void> => {
  mkdirSync(dirname(store.ledger), { recursive: true })
  writeFileSync(store.ledger, "")
  rmSync(store.pass, { force: true, recursive: true })
  mkdirSync(store.pass)
  if (!isPostgres(store.location)) return resetSqlite(store.location)
  await dropTables(store.location, DEMO_TABLE_PREFIX)
}

/** The store for messages: a PostgreSQL URL without its password. */
export const describeStore = (location: string): string =>
  isPostgres(location) ? `${PostgresJournal.redactUrl(location)} (tables ${DEMO_TABLE_PREFIX}*)` : location
