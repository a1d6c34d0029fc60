/**
 * What telemetry costs the engine's hot path: the workload of `workload.ts` (three activities per
 * execution, `concurrency` at a time) with telemetry off (the default) and on (`Telemetry.enabled`
 * with effect's native tracer: every span and metric made, nothing exported, so what is measured
 * is the instrumentation, not an exporter) and sampled (on, with one execution in ten traced:
 * `Telemetry.sampling(0.1)`), in alternating rounds of one process; medians, and the
 * ratios to "off". Rates are per CPU second of this process (`process.cpuUsage`), not per second of
 * wall time: on a machine shared with other work, what other processes take does not count.
 *
 * `--baseline DIR`: also runs the same workload on the effect-cluster sources in `DIR` (a checkout
 * of the commit before the instrumentation, `DIR/src/index.ts`) in the same process and rounds:
 * the off ÷ baseline ratio is what the instrumentation costs a program that does not turn it on.
 */
import { join } from "node:path"
import { Effect, Layer, Schema } from "effect"
import * as Cluster from "effect-cluster"
import * as SqliteClient from "../src/storage/sqlite/SqliteClient.ts"
import { median } from "./workload.ts"

type Lib = typeof Cluster
type Mode = "baseline" | "off" | "on" | "sampled"

/** The workload of `workload.ts`, built with one copy of the library. */
const workloadOf = (lib: Lib) => {
  class Bench extends lib.Workflow.TaggedRequest<Bench>()("Bench", {
    payload: { id: Schema.Number },
    success: Schema.Number,
    failure: Schema.Never
  }) {}
  const step = (id: string, value: number) =>
    Effect.succeed(value).pipe(lib.Activity.make(id, Schema.Number, Schema.Never))
  const workflow = lib.Workflow.make(
    Bench,
    (r) => `bench-${r.id}`,
    ({ id }) =>
      Effect.gen(function* () {
        const a = yield* step("a", id)
        const b = yield* step("b", a + 1)
        return yield* step("c", b + 1)
      })
  )
  /** Executions per CPU second of this process (user + system) of `executions` sends, `concurrency` at a time. */
  const run = (executions: number, concurrency: number) =>
    Effect.gen(function* () {
      const engine = yield* lib.WorkflowEngine.makeScoped(workflow)
      const cpu = process.cpuUsage()
      yield* Effect.forEach(
        Array.from({ length: executions }, (_, i) => i),
        (id) => engine.send(new Bench({ id })),
        { concurrency, discard: true }
      )
      const used = process.cpuUsage(cpu)
      return executions / ((used.user + used.system) / 1e6)
    }).pipe(Effect.scoped)
  const onMemory = (executions: number, concurrency: number) =>
    run(executions, concurrency).pipe(Effect.provide(lib.MemoryJournal.layer), Effect.orDie)
  /** As `run.ts`: the journal on a fresh SQLite file, no shard store (group commit on the path). */
  const onSqlite = (file: string, executions: number, concurrency: number) =>
    Effect.gen(function* () {
      const journal = yield* lib.SqliteJournal.make()
      return yield* run(executions, concurrency).pipe(
        Effect.provide(Layer.succeed(lib.DurableExecutionJournal.DurableExecutionJournal, journal))
      )
    }).pipe(Effect.scoped, Effect.provide(SqliteClient.layer({ filename: file })), Effect.orDie)
  return { onMemory, onSqlite }
}

/** A full collection before a run, so that one mode's garbage is not collected in another's time. */
const collect = Effect.sync(() => (globalThis as { gc?: () => void }).gc?.())

export const telemetryBench = (
  scale: number,
  dir: string,
  baselineDir: string | undefined,
  rounds = 7,
  only?: ReadonlyArray<Mode>,
  onlyCases?: ReadonlyArray<string>
) =>
  Effect.gen(function* () {
    const current = workloadOf(Cluster)
    const baseline =
      baselineDir === undefined
        ? undefined
        : workloadOf((yield* Effect.promise(() => import(join(baselineDir, "src", "index.ts")))) as Lib)
    const modes: ReadonlyArray<Mode> = (
      baseline === undefined ? ["off", "on", "sampled"] : ["baseline", "off", "on", "sampled"]
    ).filter((mode) => only === undefined || only.includes(mode as Mode)) as ReadonlyArray<Mode>
    const libOf = (mode: Mode) => (mode === "baseline" && baseline !== undefined ? baseline : current)
    const withMode =
      (mode: Mode) =>
      <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
        mode === "on"
          ? Effect.provide(self, Cluster.Telemetry.enabled)
          : mode === "sampled"
            ? Effect.provide(self, Layer.merge(Cluster.Telemetry.enabled, Cluster.Telemetry.sampling(0.1)))
            : self
    const cases = [
      {
        name: "memory, concurrency 1",
        run: (mode: Mode) =>
          libOf(mode)
            .onMemory(Math.ceil(2000 * scale), 1)
            .pipe(withMode(mode))
      },
      {
        name: "memory, concurrency 100",
        run: (mode: Mode) =>
          libOf(mode)
            .onMemory(Math.ceil(20000 * scale), 100)
            .pipe(withMode(mode))
      },
      {
        name: "sqlite, concurrency 100",
        run: (mode: Mode, round: number) =>
          libOf(mode)
            .onSqlite(join(dir, `telemetry-${mode}-${round}.db`), Math.ceil(10000 * scale), 100)
            .pipe(withMode(mode))
      }
    ]
    console.log(
      `telemetry ${modes.join(" / ")} (on: native tracer, nothing exported); executions per CPU second, medians of ${rounds} alternating rounds\n`
    )
    console.log(
      `| workload | ${modes.join(" | ")} |${baseline === undefined ? "" : " off ÷ baseline |"} on ÷ off | sampled ÷ off |`
    )
    console.log(`|---|${modes.map(() => "---|").join("")}${baseline === undefined ? "" : "---|"}---|---|`)
    for (const { name, run } of cases.filter((c) => onlyCases === undefined || onlyCases.includes(c.name))) {
      for (const mode of modes) yield* run(mode, -1) // warm-up
      const rates = new Map<Mode, Array<number>>(modes.map((mode) => [mode, []]))
      for (let round = 0; round < rounds; round++) {
        // The order of the modes rotates from round to round.
        for (let i = 0; i < modes.length; i++) {
          const mode = modes[(i + round) % modes.length] as Mode
          yield* collect
          rates.get(mode)?.push(yield* run(mode, round))
        }
      }
      const med = (mode: Mode) => median(rates.get(mode) ?? [])
      const cells = modes.map(
        (mode) => `${med(mode).toFixed(0)} (${(rates.get(mode) ?? []).map((r) => r.toFixed(0)).join(", ")})`
      )
      const vsBaseline = baseline === undefined ? "" : ` ${(med("off") / med("baseline")).toFixed(2)} |`
      const onVsOff = modes.includes("on") ? ` ${(med("on") / med("off")).toFixed(2)} |` : " – |"
      const sampledVsOff = modes.includes("sampled")
        ? ` ${(med("sampled") / med("off")).toFixed(2)} |`
        : " – |"
      console.log(`| ${name} | ${cells.join(" | ")} |${vsBaseline}${onVsOff}${sampledVsOff}`)
    }
  })
