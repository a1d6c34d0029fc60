/**
 * `npm run bench -- --only entities --baseline DIR`: the persisted counter of `bench/entities.ts`
 * on this tree and on the effect-cluster sources in `DIR` (a checkout of an earlier commit, whose
 * `src/index.ts` and `src/postgres.ts` are imported; its `node_modules` must resolve to this
 * tree's `effect`), in alternating rounds in one process, on the memory store, SQLite and
 * PostgreSQL: ask at concurrency 100 and 1, tell at concurrency 100. Each figure is the median of
 * the rounds, with this process's CPU time per message beside it (less disturbed than the wall
 * clock by other work on a shared machine); the ratios are this tree ÷ the baseline, what a change
 * to the entity path costs.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { type Context, Effect, Layer } from "effect"
import * as Current from "../src/index.ts"
import * as CurrentPostgres from "../src/postgres.ts"
import { PersistedCounter } from "../test/sharding/fixtures/counter.ts"
import { asks, fmt, type Measured, ourCounter, summarize, tells } from "./entities.ts"
import { serverUrl } from "./postgres.ts"

type Lib = typeof Current
type PostgresLib = typeof CurrentPostgres

interface System {
  readonly name: "baseline" | "this tree"
  readonly lib: Lib
  readonly postgres: PostgresLib
}

type Store = "memory" | "sqlite" | "postgres"

/** The persisted counter of `system` on `store`, a pod owning every shard, until the scope closes. */
const counterOn = (system: System, store: Store, dir: string, url: string) =>
  Effect.gen(function* () {
    const { lib } = system
    const tag = system.name === "baseline" ? "b" : "t"
    const journal =
      store === "memory"
        ? Layer.sync(lib.EntityStore.EntityStore, () => lib.MemoryEntityStore.make())
        : store === "sqlite"
          ? lib.SqliteJournal.layer({ filename: join(dir, `counter-${tag}.db`) })
          : system.postgres.PostgresJournal.layer({ url, tablePrefix: `bench_order_${tag}_${Date.now()}_` })
    const context = yield* Layer.build(
      lib.Sharding.layer().pipe(
        Layer.provideMerge(lib.Membership.layer()),
        Layer.provideMerge(journal as Layer.Layer<Current.EntityStore.EntityStore, unknown>)
      )
    )
    // The baseline's Sharding is keyed like this tree's: the messenger functions find it.
    return yield* Effect.provideContext(
      ourCounter(PersistedCounter),
      context as unknown as Context.Context<Current.Sharding.Sharding>
    )
  })

const kinds = [
  { mode: "ask", concurrency: 100, messages: 10_000 },
  { mode: "tell", concurrency: 100, messages: 10_000 },
  { mode: "ask", concurrency: 1, messages: 600 }
] as const

/** Runs the comparison and prints one table per store. */
export const entitiesBaselineBench = (scale: number, givenUrl: string | undefined, baselineDir: string) =>
  Effect.gen(function* () {
    const baseline: System = {
      name: "baseline",
      lib: (yield* Effect.promise(() => import(join(baselineDir, "src", "index.ts")))) as Lib,
      postgres: (yield* Effect.promise(() => import(join(baselineDir, "src", "postgres.ts")))) as PostgresLib
    }
    const current: System = { name: "this tree", lib: Current, postgres: CurrentPostgres }
    const rounds = scale < 1 ? 2 : 7
    const url = yield* serverUrl(givenUrl)
    const dir = mkdtempSync(join(tmpdir(), "effect-cluster-entities-baseline-"))
    yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
    for (const store of ["memory", "sqlite", "postgres"] as const) {
      yield* Effect.scoped(
        Effect.gen(function* () {
          const clients = [
            yield* counterOn(baseline, store, dir, url),
            yield* counterOn(current, store, dir, url)
          ]
          const count = (n: number, concurrency: number) => Math.max(concurrency * 2, Math.ceil(n * scale))
          // Warm-up of both: the statements, the JIT.
          for (const client of clients) {
            yield* asks(client, count(5_000, 100), 100)
            yield* tells(client, count(2_500, 100), 100)
          }
          console.log(
            `\nThe persisted counter on ${store}: this tree against the baseline (${baselineDir}), ${rounds} alternating rounds\n`
          )
          console.log(
            "| mode | concurrency | baseline messages/s (runs) | this tree messages/s (runs) | this ÷ baseline, messages/s | baseline CPU µs / message | this tree CPU µs / message | this ÷ baseline, CPU / message |"
          )
          console.log("|---|---|---|---|---|---|---|---|")
          for (const kind of kinds) {
            const runs: Array<Array<Measured>> = [[], []]
            for (let round = 0; round < rounds; round++) {
              for (let k = 0; k < 2; k++) {
                const which = (round + k) % 2
                const client = clients[which]!
                const messages = count(kind.messages, kind.concurrency)
                runs[which]!.push(
                  kind.mode === "ask"
                    ? yield* asks(client, messages, kind.concurrency)
                    : yield* tells(client, messages, kind.concurrency)
                )
              }
            }
            const [before, after] = runs.map(summarize)
            console.log(
              `| ${kind.mode} | ${kind.concurrency} | ${fmt(before!.perSecond)} (${before!.runs.map((r) => fmt(r)).join(", ")}) | ${fmt(after!.perSecond)} (${after!.runs.map((r) => fmt(r)).join(", ")}) | ${fmt(after!.perSecond / before!.perSecond, 2)} | ${fmt(before!.cpuMicros, 1)} | ${fmt(after!.cpuMicros, 1)} | ${fmt(after!.cpuMicros / before!.cpuMicros, 2)} |`
            )
          }
        })
      )
    }
  }).pipe(Effect.scoped)
