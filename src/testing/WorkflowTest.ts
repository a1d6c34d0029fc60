/**
 * A test kit for your workflows, for `@effect/vitest`.
 *
 * `makeEngine` gives a test an engine on a fresh in-memory journal. Inside `it.effect` the clock is
 * effect's `TestClock`, so a workflow that sleeps 30 days, waits a week for a signal or retries
 * with backoff for an hour is tested in milliseconds: fork the call, `advance` the clock, join.
 * The engine's timer sleeps until the next known deadline (the memory journal announces every
 * park), so skipping a month costs one wake-up, not one per poll interval.
 *
 * `replay` replays an execution journal exported from a running system (`engine.exportJournal`)
 * against the current workflow code, without running any activity, and fails with the
 * `NonDeterminismError` (expected and actual step) when a change would break running executions.
 *
 * @example
 * ```ts
 * import { it, expect } from "@effect/vitest"
 * import { Effect, Fiber } from "effect"
 * import { WorkflowTest } from "effect-cluster"
 *
 * it.effect("reminds after 30 days", () =>
 *   Effect.gen(function* () {
 *     const engine = yield* WorkflowTest.makeEngine(reminder)
 *     const fiber = yield* Effect.forkChild(engine.send(new Remind({ id: "r-1" })))
 *     yield* WorkflowTest.advance("31 days")
 *     expect(yield* Fiber.join(fiber)).toBe("reminded")
 *   }).pipe(Effect.scoped)
 * )
 *
 * it.effect("running executions still replay", () =>
 *   WorkflowTest.replay(Workflow.union(processPayment), "test/journals/payment-v1.json")
 * )
 * ```
 */
import { type Duration, Effect, Fiber, type Scope } from "effect"
import { TestClock } from "effect/testing"
import * as MemoryJournal from "../storage/memory/MemoryJournal.ts"
import { DurableExecutionJournal } from "../workflow/DurableExecutionJournal.ts"
import * as JournalExport from "../workflow/JournalExport.ts"
import type { Any, Requirements, WorkflowUnion } from "../workflow/Workflow.ts"
import {
  type EngineOptions,
  type EngineStartError,
  makeScoped,
  type WorkflowEngine
} from "../workflow/WorkflowEngine.ts"
import type { InvalidJournalExportError } from "../workflow/WorkflowErrors.ts"
import * as WorkflowReplay from "../workflow/WorkflowReplay.ts"

/** An engine for a test, with the journal it writes to (to inspect or export). */
export interface TestEngine<W extends Any> extends WorkflowEngine<W> {
  readonly journal: DurableExecutionJournal["Service"]
}

/**
 * An engine for `workflows` on a fresh in-memory journal (or `options.journal`, to start a second
 * engine on the journal of the first: a restart), stopped when the scope closes.
 */
export const makeEngine = <W extends Any>(
  workflows: WorkflowUnion<W> | W,
  options?: EngineOptions & { readonly journal?: DurableExecutionJournal["Service"] | undefined }
): Effect.Effect<TestEngine<W>, EngineStartError, Scope.Scope | Requirements<W>> =>
  Effect.gen(function* () {
    const journal = options?.journal ?? (yield* MemoryJournal.make)
    const engine = yield* makeScoped(workflows, options).pipe(
      Effect.provideService(DurableExecutionJournal, journal)
    )
    return { ...engine, journal }
  })

/**
 * Moves the test clock forward by `duration`: durable sleeps, signal timeouts and retry backoffs
 * that fall due run in order, each as soon as its time comes. Use it inside `it.effect` (which
 * provides `TestClock`).
 */
export const advance = (duration: Duration.Input): Effect.Effect<void> =>
  settle.pipe(Effect.andThen(TestClock.adjust(duration)), Effect.andThen(settle))

/**
 * Lets every fiber that can make progress without the clock do so (runs started, executions
 * parked, backoff sleeps registered) before the clock moves: on the memory journal every step is
 * synchronous, so a few scheduler turns are enough. Without it, time could move before a
 * just-forked `send` recorded its deadline, which would then be counted from the later time.
 */
const settle: Effect.Effect<void> = Effect.suspend(() => {
  let turns = SETTLE_TURNS
  return Effect.whileLoop({
    while: () => turns-- > 0,
    body: () => Effect.yieldNow,
    step: () => {}
  })
})

const SETTLE_TURNS = 64

/**
 * Runs `effect` (a `send`, usually) in the background, moves the test clock forward by `duration`,
 * and returns the effect's result: a one-liner for a workflow that waits.
 *
 * @example
 * ```ts
 * const result = yield* WorkflowTest.within("31 days", engine.send(new Remind({ id: "r-1" })))
 * ```
 */
export const within = <A, E, R>(
  duration: Duration.Input,
  effect: Effect.Effect<A, E, R>
): Effect.Effect<A, E, R> =>
  Effect.gen(function* () {
    const fiber = yield* Effect.forkChild(effect)
    yield* advance(duration)
    return yield* Fiber.join(fiber)
  })

/**
 * Replays an exported execution journal (a file written with `JournalExport.writeFile`, or the
 * document itself) against the current code of `workflows`, without running any activity, and
 * fails with the `NonDeterminismError` (expected and actual step) — or the `JournalDecodeError` of
 * a changed schema — that the execution would be suspended with after a deploy of this code.
 *
 * @example
 * ```ts
 * it.effect("executions recorded by v1 still replay", () =>
 *   WorkflowTest.replay(Workflow.union(processPayment), "test/journals/payment-v1.json")
 * )
 * ```
 */
export const replay = <W extends Any>(
  workflows: WorkflowUnion<W> | W,
  journal: string | JournalExport.ExecutionJournal
): Effect.Effect<
  WorkflowReplay.ReplayReport,
  WorkflowReplay.ReplayError | InvalidJournalExportError,
  Requirements<W>
> =>
  Effect.gen(function* () {
    const document = typeof journal === "string" ? yield* JournalExport.readFile(journal) : journal
    const store = yield* MemoryJournal.fromExport(document)
    return yield* WorkflowReplay.replay(workflows, document.execution.executionId).pipe(
      Effect.provideService(DurableExecutionJournal, store)
    )
  })
