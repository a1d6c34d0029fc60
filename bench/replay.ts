/**
 * What replay costs: an execution of 100 recorded activity steps (one fiber), and one of 10
 * concurrent branches of 10 steps each, replayed against their workflow code with
 * `WorkflowReplay.replay` on the memory journal (the run of a resumed execution without the
 * store's I/O: load, decode, determinism and frontier checks, the workflow code itself). Replays
 * per CPU second of this process, median of alternating rounds.
 *
 * `--baseline DIR`: also replays with the effect-cluster sources in `DIR` (a checkout of an earlier
 * commit, `DIR/src/index.ts`) in the same process and rounds: current ÷ baseline is what a change
 * of the step runner costs replay.
 */
import { join } from "node:path"
import { Effect, Layer, Schema } from "effect"
import * as Cluster from "effect-cluster"
import { median } from "./workload.ts"

type Lib = typeof Cluster

/** The two recorded executions and their replay, built with one copy of the library. */
const replayOf = (lib: Lib) => {
  class Long extends lib.Workflow.TaggedRequest<Long>()("Long", {
    payload: { id: Schema.String, branches: Schema.Number },
    success: Schema.Number,
    failure: Schema.Never
  }) {}
  const go = lib.Signal.make("go", Schema.Void)
  const step = (id: string, value: number) =>
    Effect.succeed(value).pipe(lib.Activity.make(id, Schema.Number, Schema.Never))
  const branch = (name: string, steps: number) =>
    Effect.gen(function* () {
      let sum = 0
      for (let i = 0; i < steps; i++) sum += yield* step(`${name}-${i}`, i)
      return sum
    })
  const workflow = lib.Workflow.make(
    Long,
    (r) => `long-${r.id}`,
    ({ branches }) =>
      Effect.gen(function* () {
        const sums = yield* Effect.forEach(
          Array.from({ length: branches }, (_, i) => i),
          (i) => branch(`b${i}`, 100 / branches),
          { concurrency: "unbounded" }
        )
        // Parked here: the replay ends at the frontier, as a resumed execution's would.
        yield* lib.Signal.receive(go)
        return sums.reduce((a, b) => a + b, 0)
      })
  )
  return Effect.gen(function* () {
    const journal = yield* lib.MemoryJournal.make
    const layer = Layer.succeed(lib.DurableExecutionJournal.DurableExecutionJournal, journal)
    yield* Effect.gen(function* () {
      const engine = yield* lib.WorkflowEngine.makeScoped(workflow)
      yield* engine.sendDiscard(new Long({ id: "sequential", branches: 1 }))
      yield* engine.sendDiscard(new Long({ id: "concurrent", branches: 10 }))
      for (const id of ["long-sequential", "long-concurrent"]) {
        while ((yield* journal.steps(id)).length < 100) yield* Effect.sleep("5 millis")
      }
    }).pipe(Effect.scoped, Effect.provide(layer))
    /** Replays per CPU second of `times` replays of `executionId`. */
    return (executionId: string, times: number) =>
      Effect.gen(function* () {
        const cpu = process.cpuUsage()
        for (let i = 0; i < times; i++) {
          const report = yield* lib.WorkflowReplay.replay(workflow, executionId)
          if (report.recordedSteps !== 100 || report.ended !== "frontier") {
            return yield* Effect.die(new Error(`unexpected replay: ${JSON.stringify(report)}`))
          }
        }
        const used = process.cpuUsage(cpu)
        return times / ((used.user + used.system) / 1e6)
      }).pipe(Effect.provide(layer))
  })
}

export const replayBench = (scale: number, baselineDir: string | undefined, rounds = 7) =>
  Effect.gen(function* () {
    const libs: Array<{ readonly name: string; readonly lib: Lib }> = [{ name: "current", lib: Cluster }]
    if (baselineDir !== undefined) {
      const baseline = (yield* Effect.promise(() => import(join(baselineDir, "src", "index.ts")))) as Lib
      libs.unshift({ name: "baseline", lib: baseline })
    }
    const replays = yield* Effect.forEach(libs, ({ lib }) => replayOf(lib))
    const times = Math.max(20, Math.ceil(400 * scale))
    console.log(
      `\n## Replay of a 100-step execution (WorkflowReplay on memory; replays per CPU second, median of ${rounds} rounds of ${times})\n`
    )
    console.log(
      `| execution | ${libs.map((l) => l.name).join(" | ")} |${libs.length > 1 ? " current ÷ baseline |" : ""}`
    )
    console.log(`|---|${libs.map(() => "---|").join("")}${libs.length > 1 ? "---|" : ""}`)
    for (const [label, id] of [
      ["100 steps in one fiber", "long-sequential"],
      ["10 branches × 10 steps", "long-concurrent"]
    ] as const) {
      const samples = libs.map(() => [] as Array<number>)
      // Warm-up, then alternating rounds so that drift of the machine hits every library alike.
      for (const replay of replays) yield* replay(id, Math.ceil(times / 4))
      for (let round = 0; round < rounds; round++) {
        for (let i = 0; i < replays.length; i++) samples[i]!.push(yield* replays[i]!(id, times))
      }
      const medians = samples.map(median)
      const ratio = medians.length > 1 ? ` ${(medians[1]! / medians[0]!).toFixed(2)} |` : ""
      console.log(
        `| ${label} | ${medians.map((m) => Math.round(m).toLocaleString("en-US")).join(" | ")} |${ratio}`
      )
    }
  })
