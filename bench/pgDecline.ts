/**
 * Does the persisted counter on PostgreSQL slow down within a process? Asks at concurrency 1
 * (a fresh entity per round), round after round, and after each round the server's view of the
 * tables (`pg_stat_user_tables`: sequential and index scans, dead rows) and of the sessions that
 * hold back the xmin horizon. Run directly:
 * `node --no-warnings --conditions=@effect-cluster/source bench/pgDecline.ts [rounds] [asks per round]`
 * (`PG_URL=postgres://…` to use a running server instead of a throwaway one).
 */
import { Effect, Layer } from "effect"
import { PostgresJournal } from "effect-cluster/postgres"
import * as Membership from "../src/sharding/Membership.ts"
import * as Sharding from "../src/sharding/Sharding.ts"
import { PersistedCounter } from "../test/sharding/fixtures/counter.ts"
import { asks, ourCounter } from "./entities.ts"
import { client, serverUrl } from "./postgres.ts"

const prefix = `decline_${Date.now()}_`
const rounds = Number(process.argv[2] ?? 6)
const perRound = Number(process.argv[3] ?? 3000)
const program = Effect.gen(function* () {
  const url = yield* serverUrl(process.env.PG_URL)
  const sql = yield* client(url, 1)
  const context = yield* Layer.build(
    Sharding.layer().pipe(
      Layer.provideMerge(Membership.layer()),
      Layer.provideMerge(PostgresJournal.layer({ url, tablePrefix: prefix }))
    )
  )
  const counter = yield* Effect.provideContext(ourCounter(PersistedCounter), context)
  for (let round = 0; round < rounds; round++) {
    const measured = yield* asks(counter, perRound, 1)
    const stats =
      yield* sql.unsafe(`SELECT relname, n_live_tup, n_dead_tup, n_tup_upd, n_tup_hot_upd, seq_scan, idx_scan
      FROM pg_stat_user_tables WHERE relname LIKE '${prefix}%' AND (n_tup_upd > 0 OR seq_scan > 0) ORDER BY relname`)
    const horizon =
      yield* sql.unsafe(`SELECT count(*) AS n, min(age(backend_xmin)) AS youngest, max(age(backend_xmin)) AS oldest,
      string_agg(DISTINCT state, ',') AS states FROM pg_stat_activity WHERE backend_xmin IS NOT NULL`)
    console.log(
      `round ${round}: ${(measured.messages / measured.seconds).toFixed(0)}/s, CPU ${measured.cpuMicros.toFixed(0)} µs/message`
    )
    for (const row of stats as ReadonlyArray<Record<string, unknown>>)
      console.log(
        "   ",
        JSON.stringify(row, (_, v) => (typeof v === "bigint" ? Number(v) : v)).replaceAll(prefix, "")
      )
    console.log(
      "    xmin holders:",
      JSON.stringify(horizon, (_, v) => (typeof v === "bigint" ? Number(v) : v))
    )
  }
}).pipe(Effect.scoped)
Effect.runPromise(program).catch((error) => {
  console.error(error)
  process.exit(1)
})
