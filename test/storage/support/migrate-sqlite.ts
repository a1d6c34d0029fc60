/**
 * Child process of the conformance suite: runs the journal migrations on a SQLite file and prints
 * the versions it applied as JSON. Usage: `migrate-sqlite.ts <file> <tablePrefix>`.
 */
import { Effect, Schema } from "effect"
import { migrate } from "../../../src/storage/sql/Migrations.ts"
import * as SqliteClient from "../../../src/storage/sqlite/SqliteClient.ts"

const [filename, prefix] = Schema.decodeUnknownSync(Schema.Tuple([Schema.String, Schema.String]))(
  process.argv.slice(2)
)

const applied = await Effect.runPromise(
  Effect.scoped(Effect.flatMap(SqliteClient.make({ filename }), (sql) => migrate(sql, prefix, "sqlite")))
)
process.stdout.write(JSON.stringify(applied))
