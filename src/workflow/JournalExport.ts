/**
 * One execution's journal as a JSON document: what `engine.exportJournal` returns and
 * `WorkflowTest.replay` reads. Check such files into your repository (a "golden journal") and
 * replay them in CI, so that a change to a workflow that would break executions already running
 * in production fails a test instead of suspending them after the deploy.
 *
 * @example
 * ```ts
 * const journal = yield* engine.exportJournal("ProcessPayment@order-1")
 * yield* JournalExport.writeFile("test/journals/payment-v1.json", journal)
 * ```
 */
import { readFileSync, writeFileSync } from "node:fs"
import { Effect, Result, Schema } from "effect"
import { AttemptRecord, ExecutionRecord, StepRecord } from "./DurableExecutionJournal.ts"
import { decodeJsonResult } from "./internal/codec.ts"
import { InvalidJournalExportError } from "./WorkflowErrors.ts"

/** The document: the execution row, its steps in order, and its failed (retried) attempts. */
export const ExecutionJournal = Schema.Struct({
  format: Schema.Literal("effect-cluster/execution-journal"),
  version: Schema.Literal(1),
  execution: ExecutionRecord,
  steps: Schema.Array(StepRecord),
  attempts: Schema.Array(AttemptRecord)
})

/** @see ExecutionJournal */
export type ExecutionJournal = typeof ExecutionJournal.Type

/** The document as pretty-printed JSON text (stable key order: diffs of golden files stay small). */
export const toJson = (journal: ExecutionJournal): string => `${JSON.stringify(journal, null, 2)}\n`

/** Decodes a document from JSON text; `source` names it in errors (a file name). */
export const fromJson = (
  text: string,
  source = "<text>"
): Effect.Effect<ExecutionJournal, InvalidJournalExportError> =>
  Effect.suspend(() => {
    const decoded = decodeJsonResult(ExecutionJournal, text)
    if (Result.isSuccess(decoded)) return Effect.succeed(decoded.success)
    const { path, message } = decoded.failure
    return Effect.fail(new InvalidJournalExportError({ source, path, detail: message }))
  })

/** Reads and decodes a document from a file. */
export const readFile = (file: string): Effect.Effect<ExecutionJournal, InvalidJournalExportError> =>
  Effect.try({
    try: () => readFileSync(file, "utf8"),
    catch: (error) =>
      new InvalidJournalExportError({
        source: file,
        path: "<file>",
        detail: `cannot read it: ${error instanceof Error ? error.message : String(error)}`
      })
  }).pipe(Effect.flatMap((text) => fromJson(text, file)))

/** Writes a document to a file, as `toJson` prints it. */
export const writeFile = (
  file: string,
  journal: ExecutionJournal
): Effect.Effect<void, InvalidJournalExportError> =>
  Effect.try({
    try: () => writeFileSync(file, toJson(journal)),
    catch: (error) =>
      new InvalidJournalExportError({
        source: file,
        path: "<file>",
        detail: `cannot write it: ${error instanceof Error ? error.message : String(error)}`
      })
  })
