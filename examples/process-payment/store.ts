/**
 * Where the demo keeps its journal: the embedded SQLite file by default, or a PostgreSQL database
 * given with `--postgres URL`. Each run starts from an empty journal.
 */
import { resolve } from "node:path"
import { parseArgs } from "node:util"
import { Schema } from "effect"
import { PostgresJournal } from "effect-cluster/postgres"
import { dropTables, resetSqlite } from "../shared/reset.ts"

/** The demo's tables in a PostgreSQL database: it resets only these. */
export const DEMO_TABLE_PREFIX = "process_payment_demo_"

const PostgresUrl = Schema.String.check(
  Schema.isPattern(/^postgres(ql)?:\/\/\S+$/, {
    message: "expected a PostgreSQL URL such as postgres://user:password@localhost:5432/database"
  })
)

/** An OpenTelemetry collector's OTLP/HTTP base URL (`--otlp`), e.g. http://localhost:4318. */
const OtlpUrl = Schema.String.check(
  Schema.isPattern(/^https?:\/\/\S+$/, {
    message: "expected the collector's OTLP/HTTP base URL such as http://localhost:4318"
  })
)

const Options = Schema.Struct({ postgres: Schema.optional(PostgresUrl), otlp: Schema.optional(OtlpUrl) })

const decodeArgs = (args: ReadonlyArray<string>) => {
  const { values } = parseArgs({
    args: [...args],
    options: { postgres: { type: "string" }, otlp: { type: "string" } },
    strict: true
  })
  return Schema.decodeUnknownSync(Options)(values)
}

/** The journal location from the command line: a file path, or a `postgres://` URL. */
export const storeFromArgs = (args: ReadonlyArray<string>): string =>
  decodeArgs(args).postgres ?? resolve(".data", "process-payment.db")

/** The collector to export traces and metrics to (`--otlp URL`), if any. */
export const otlpFromArgs = (args: ReadonlyArray<string>): string | undefined => decodeArgs(args).otlp

/** Empties the journal so the demo starts from scratch. */
export const resetStore = async (store: string): Promise<void> => {
  if (!store.startsWith("postgres")) return resetSqlite(store)
  await dropTables(store, DEMO_TABLE_PREFIX)
}

/** The store for messages: a PostgreSQL URL without its password. */
export const describeStore = (store: string): string => {
  if (!store.startsWith("postgres")) return store
  return `${PostgresJournal.redactUrl(store)} (tables ${DEMO_TABLE_PREFIX}*)`
}
