/**
 * Time skipping in `npm run bench -- --only skip`: the real time a user's test spends on a workflow
 * that waits — a 30-day durable sleep, a signal with a 7-day timeout, an hour of retry backoff —
 * with `WorkflowTest` on `TestClock`, next to the same engine running a workflow that does not
 * wait (the baseline, measured in the same run), and next to a timer that polls every second (the
 * behaviour before the memory journal announced its wake-ups) over one skipped day.
 */
import { type Duration, Effect, Layer, Option, Schema } from "effect"
import { TestClock } from "effect/testing"
import { Activity, Signal, Workflow, type WorkflowContext, WorkflowTest } from "effect-cluster"
import { median } from "./workload.ts"

class Job extends Workflow.TaggedRequest<Job>()("Job", {
  payload: { id: Schema.Number },
  success: Schema.String,
  failure: Schema.Never
}) {}

class Down extends Schema.TaggedError<Down>()("Down", {}) {}

const approval = Signal.make("approval", Schema.String)

const step = Effect.succeed("done").pipe(Activity.make("step", Schema.String, Schema.Never))

interface Case {
  readonly name: string
  readonly skip: Duration.Input
  readonly workflow: () => Bench
  readonly timerPollInterval?: Duration.Input
}

const cases: ReadonlyArray<Case> = [
  { name: "no wait (baseline)", skip: "1 millis", workflow: () => make(() => step) },
  {
    name: "Workflow.sleep 30 days",
    skip: "31 days",
    workflow: () => make(() => Effect.andThen(Workflow.sleep("30 days"), step))
  },
  {
    name: "Signal.receive, 7-day timeout",
    skip: "8 days",
    workflow: () =>
      make(() =>
        Effect.map(
          Signal.receive(approval, { timeout: "7 days" }),
          Option.getOrElse(() => "late")
        )
      )
  },
  {
    name: "retry with backoff for an hour",
    skip: "2 hours",
    workflow: () => {
      let attempts = 0
      const flaky = Effect.suspend(() => (++attempts < 10 ? Effect.fail(new Down()) : Effect.succeed("ok")))
      return make(() => Effect.orDie(flaky.pipe(Activity.make("flaky", Schema.String, Down))))
    }
  },
  {
    name: "Workflow.sleep 1 day, timer polling every second (before)",
    skip: "25 hours",
    workflow: () => make(() => Effect.andThen(Workflow.sleep("1 day"), step)),
    timerPollInterval: "1 second"
  }
]

type Bench = Workflow.Workflow<typeof Job, WorkflowContext.WorkflowContext>

const make = (body: () => Effect.Effect<string, never, WorkflowContext.WorkflowContext>): Bench =>
  Workflow.make(Job, (r) => `job-${r.id}`, body)

/** Real milliseconds for one test: a fresh engine, one execution sent, the clock skipped. */
const once = (testCase: Case) =>
  Effect.gen(function* () {
    const started = performance.now()
    yield* Effect.scoped(
      Effect.gen(function* () {
        const engine = yield* WorkflowTest.makeEngine(testCase.workflow(), {
          retry: { initialDelay: "1 minute", maxDelay: "10 minutes", maxAttempts: 20 },
          timerPollInterval: testCase.timerPollInterval
        })
        yield* WorkflowTest.within(testCase.skip, engine.send(new Job({ id: 1 })))
      })
    )
    return performance.now() - started
  }).pipe(Effect.provide(Layer.fresh(TestClock.layer())))

/** Runs every case `rounds` times, interleaved, and prints real ms per test and the ratio. */
export const timeSkipBench = (rounds: number) =>
  Effect.gen(function* () {
    const samples = new Map<string, Array<number>>(cases.map((c) => [c.name, []]))
    for (let round = 0; round < rounds; round++) {
      for (const testCase of cases) {
        // The polling case takes seconds: a few rounds are enough.
        if (testCase.timerPollInterval !== undefined && round >= 2) continue
        samples.get(testCase.name)!.push(yield* once(testCase))
      }
    }
    const baseline = median(samples.get(cases[0]!.name)!)
    console.log("\n| WorkflowTest on TestClock | time skipped | real ms per test (median) | ÷ baseline |")
    console.log("|---|---|---|---|")
    for (const testCase of cases) {
      const ms = median(samples.get(testCase.name)!)
      console.log(
        `| ${testCase.name} | ${String(testCase.skip)} | ${ms.toFixed(1)} | ${(ms / baseline).toFixed(1)} |`
      )
    }
  })
