/**
 * Durable sleep in `npm run bench`: 10,000 executions each sleeping 1 s then completing (wall time
 * to drain, peak memory), and the memory each parked execution costs the process (10,000
 * executions sleeping an hour, heap after a full GC, minus the heap before).
 */
import { Effect, type Layer, Schema } from "effect"
import { type DurableExecutionJournal, Workflow, WorkflowEngine } from "effect-cluster"

class Nap extends Workflow.TaggedRequest<Nap>()("Nap", {
  payload: { id: Schema.Number, millis: Schema.Number },
  success: Schema.Number,
  failure: Schema.Never
}) {}

const napper = Workflow.make(
  Nap,
  (r) => `nap-${r.millis}-${r.id}`,
  ({ id, millis }) => Effect.as(Workflow.sleep(millis), id)
)

/** A full GC, twice (the second collects what the first's finalizers released); needs --expose-gc. */
export const collect = () => {
  const gc = (globalThis as { gc?: () => void }).gc
  gc?.()
  gc?.()
}
const heapMiB = () => process.memoryUsage().heapUsed / 2 ** 20

/** Samples the RSS every 50 ms while `effect` runs; returns its result and the peak in MiB. */
const withPeakRss = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    let peak = process.memoryUsage().rss
    const timer = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss)
    }, 50)
    const result = yield* Effect.ensuring(
      effect,
      Effect.sync(() => clearInterval(timer))
    )
    return { result, peakMiB: Math.max(peak, process.memoryUsage().rss) / 2 ** 20 }
  })

export interface SleepRow {
  readonly backend: string
  readonly executions: number
  readonly drainSeconds: number
  readonly peakRssMiB: number
  readonly bytesPerParked: number
}

/** Runs both measurements on fresh journals from `journal` (a scoped layer per phase). */
export const sleepBench = (
  backend: string,
  journal: () => Layer.Layer<DurableExecutionJournal.DurableExecutionJournal, unknown>,
  executions: number
) =>
  Effect.gen(function* () {
    // Memory per parked execution: start them all (sleeping an hour), wait until none has a fiber.
    const bytesPerParked = yield* Effect.gen(function* () {
      const engine = yield* WorkflowEngine.makeScoped(napper)
      yield* Effect.sleep("100 millis")
      collect()
      const before = heapMiB()
      yield* Effect.forEach(
        Array.from({ length: executions }, (_, id) => id),
        (id) => engine.sendDiscard(new Nap({ id, millis: 3_600_000 })),
        { concurrency: 256, discard: true }
      )
      while (engine.runningCount() > 0) yield* Effect.sleep("20 millis")
      collect()
      return ((heapMiB() - before) * 2 ** 20) / executions
    }).pipe(Effect.scoped, Effect.provide(journal()))

    // Drain: every execution sleeps 1 s then completes; wall time from the first start to the last result.
    const drained = yield* withPeakRss(
      Effect.gen(function* () {
        const engine = yield* WorkflowEngine.makeScoped(napper)
        const started = performance.now()
        yield* Effect.forEach(
          Array.from({ length: executions }, (_, id) => id),
          (id) => engine.send(new Nap({ id, millis: 1_000 })),
          { concurrency: "unbounded", discard: true }
        )
        return (performance.now() - started) / 1000
      }).pipe(Effect.scoped, Effect.provide(journal()))
    )
    return {
      backend,
      executions,
      drainSeconds: drained.result,
      peakRssMiB: drained.peakMiB,
      bytesPerParked
    } satisfies SleepRow
  })

/** Prints the sleep table. */
export const printSleep = (rows: ReadonlyArray<SleepRow>) => {
  console.log(
    "\n| backend | executions (each sleeps 1 s) | wall time to drain | peak RSS | heap per parked execution |"
  )
  console.log("|---|---|---|---|---|")
  for (const row of rows) {
    console.log(
      `| ${row.backend} | ${row.executions} | ${row.drainSeconds.toFixed(2)} s | ${row.peakRssMiB.toFixed(0)} MiB | ${row.bytesPerParked.toFixed(0)} B |`
    )
  }
}
