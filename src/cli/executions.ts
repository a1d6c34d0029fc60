/**
 * `effect-cluster executions list | show | resume | interrupt | export`: the executions of a store.
 */
import { Effect, Option } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import type * as Admin from "../admin/Admin.ts"
import type { ExecutionTimeline, ExecutionView } from "../admin/ExecutionTimeline.ts"
import { ExecutionStatus } from "../workflow/DurableExecutionJournal.ts"
import * as JournalExport from "../workflow/JournalExport.ts"
import { compact, duration, print, printJson, table, time } from "./internal/format.ts"
import { withAdmin } from "./internal/store.ts"
import { parseTime } from "./internal/time.ts"
import { json } from "./root.ts"

const executionId = Argument.String("id").pipe(
  Argument.withMetavar("ID"),
  Argument.withDescription("The execution id (as `executions list` prints it).")
)

/** What a list row says beyond its status: why it is suspended, when it wakes, how it failed. */
const detailOf = (execution: ExecutionView): string => {
  const parts: Array<string> = []
  if (execution.suspension !== null) {
    // The row already names the execution and its workflow.
    const own = `execution ${execution.executionId} of workflow "${execution.workflow}" `
    parts.push(compact(execution.suspension.message.replace(own, ""), 70))
  }
  if (execution.status === "sleeping") {
    parts.push(execution.wakeAt === null ? "until a signal" : `wakes ${time(execution.wakeAt)}`)
  }
  if (execution.error !== null) parts.push(compact(execution.error.summary, 70))
  if (execution.interruptRequested && execution.status !== "interrupted") parts.push("interrupt requested")
  return parts.join("; ")
}

const list = Command.make(
  "list",
  {
    workflow: Flag.String("workflow").pipe(
      Flag.withMetavar("W"),
      Flag.withDescription("Only executions of this workflow (its request tag)."),
      Flag.optional
    ),
    status: Flag.Literals("status", ExecutionStatus.literals).pipe(
      Flag.withDescription("Only executions in this status."),
      Flag.optional
    ),
    since: Flag.String("since").pipe(
      Flag.withMetavar("T"),
      Flag.withDescription(
        "Only executions created since T: an ISO date or a duration back from now (1h, 2d)."
      ),
      Flag.optional
    ),
    until: Flag.String("until").pipe(
      Flag.withMetavar("T"),
      Flag.withDescription("Only executions created before T (same forms as --since)."),
      Flag.optional
    ),
    limit: Flag.Int("limit").pipe(
      Flag.withMetavar("N"),
      Flag.withDescription("At most N executions (1 to 1000, default 50)."),
      Flag.optional
    ),
    cursor: Flag.String("cursor").pipe(
      Flag.withMetavar("C"),
      Flag.withDescription("The next page: the cursor the previous page printed."),
      Flag.optional
    ),
    oldest: Flag.Boolean("oldest").pipe(
      Flag.withDescription("Oldest first (default: newest first)."),
      Flag.withDefault(false)
    ),
    json
  },
  (flags) =>
    withAdmin((admin) =>
      Effect.gen(function* () {
        const since = Option.isSome(flags.since) ? yield* parseTime("--since", flags.since.value) : undefined
        const until = Option.isSome(flags.until) ? yield* parseTime("--until", flags.until.value) : undefined
        const page = yield* admin.executions({
          workflow: Option.getOrUndefined(flags.workflow),
          status: Option.getOrUndefined(flags.status),
          since,
          until,
          order: flags.oldest ? "oldest" : "newest",
          limit: Option.getOrUndefined(flags.limit),
          cursor: Option.getOrUndefined(flags.cursor)
        })
        if (flags.json) {
          return yield* printJson({ executions: page.executions, next: Option.getOrNull(page.next) })
        }
        if (page.executions.length === 0) return yield* print("no executions match")
        yield* print(
          table(
            ["ID", "WORKFLOW", "STATUS", "CREATED", "UPDATED", "DETAIL"],
            page.executions.map((e) => [
              e.executionId,
              e.workflow,
              e.status,
              time(e.createdAt),
              time(e.updatedAt),
              detailOf(e)
            ])
          )
        )
        if (Option.isSome(page.next)) yield* print(`\nmore: --cursor ${page.next.value}`)
      })
    )
).pipe(Command.withDescription("List executions, newest first (times are UTC)."))

/** The lines of an execution's header. */
const header = (execution: ExecutionView): Array<[string, string]> => {
  const lines: Array<[string, string]> = [
    ["execution", execution.executionId],
    ["workflow", execution.workflow],
    ["status", execution.status],
    ["created", time(execution.createdAt)],
    ["updated", time(execution.updatedAt)],
    ["request", compact(execution.request, 100)]
  ]
  if (execution.status === "succeeded") lines.push(["result", compact(execution.result, 100)])
  if (execution.error !== null) {
    lines.push(["error", execution.error.summary])
    lines.push(["cause", compact(execution.error.cause, 100)])
  }
  if (execution.suspension !== null) lines.push(["suspended", execution.suspension.message])
  if (execution.status === "sleeping") {
    lines.push(["wakes", execution.wakeAt === null ? "when a signal arrives" : time(execution.wakeAt)])
  }
  if (execution.interruptRequested) lines.push(["interrupt", "requested"])
  return lines
}

const OUTCOMES = {
  succeeded: "succeeded",
  failed: "failed",
  retried: "failed, retried",
  suspended: "suspended the execution",
  "cut-short": "cut short (crash, shutdown or suspension)",
  running: "running"
} as const

/** The timeline as text: the header, then one row per attempt of every step. */
export const renderTimeline = (timeline: ExecutionTimeline): string => {
  const width = Math.max(...header(timeline.execution).map(([label]) => label.length))
  const head = header(timeline.execution)
    .map(([label, value]) => `${label.padEnd(width)}  ${value}`)
    .join("\n")
  if (timeline.steps.length === 0) return `${head}\n\nno steps recorded`
  const rows = timeline.steps.flatMap((step) =>
    step.attempts.map((attempt, index) => {
      const detail =
        attempt.error !== null
          ? attempt.error.summary
          : attempt.outcome === "succeeded"
            ? compact(attempt.value, 50)
            : ""
      const heartbeat =
        index === step.attempts.length - 1 && step.heartbeat !== null
          ? ` [heartbeat ${compact(step.heartbeat, 40)}]`
          : ""
      return [
        index === 0 ? `${step.seq}` : "",
        index === 0 ? `${step.stepKey}${step.kind === "activity" ? "" : ` (${step.kind})`}` : "",
        `${attempt.attempt}`,
        time(attempt.startedAt),
        time(attempt.endedAt),
        duration(attempt.durationMillis),
        OUTCOMES[attempt.outcome],
        `${compact(detail, 70)}${heartbeat}`
      ]
    })
  )
  return `${head}\n\n${table(["#", "STEP", "ATTEMPT", "STARTED", "ENDED", "DURATION", "OUTCOME", "VALUE / ERROR"], rows)}`
}

const show = Command.make("show", { id: executionId, json }, ({ id, json }) =>
  withAdmin((admin) =>
    Effect.flatMap(admin.timeline(id), (timeline) =>
      json ? printJson(timeline) : print(renderTimeline(timeline))
    )
  )
).pipe(
  Command.withDescription(
    "Show an execution as a timeline: every attempt of every activity with start, end, duration, outcome or error, heartbeats; why it is suspended."
  )
)

const describeResume = (id: string, result: Admin.ResumeResult): string =>
  result._tag === "Resumed"
    ? `resumed ${id}: the engine that owns it runs it now (or the next engine to start)`
    : `${id} was not resumed: it is ${result.status}, not suspended`

const resume = Command.make("resume", { id: executionId, json }, ({ id, json }) =>
  withAdmin((admin) =>
    Effect.flatMap(admin.resume(id), (result) =>
      json
        ? printJson({ executionId: id, result: result._tag, ...result })
        : print(describeResume(id, result))
    )
  )
).pipe(Command.withDescription("Resume a suspended execution."))

const describeInterrupt = (id: string, result: Admin.InterruptResult): string =>
  result._tag === "InterruptRequested"
    ? `interruption of ${id} requested: the engine that runs it interrupts it (its compensations run), now or when it next starts`
    : `${id} is already ${result.status}: nothing to interrupt`

const interrupt = Command.make("interrupt", { id: executionId, json }, ({ id, json }) =>
  withAdmin((admin) =>
    Effect.flatMap(admin.interrupt(id), (result) =>
      json
        ? printJson({ executionId: id, result: result._tag, ...result })
        : print(describeInterrupt(id, result))
    )
  )
).pipe(
  Command.withDescription(
    "Interrupt an execution: its finalizers and compensations run, then it is interrupted."
  )
)

const exportJournal = Command.make("export", { id: executionId }, ({ id }) =>
  withAdmin((admin) =>
    Effect.flatMap(admin.exportJournal(id), (journal) =>
      // The document as JournalExport writes it (already JSON: `> journal.json` gives the file).
      print(JournalExport.toJson(journal).trimEnd())
    )
  )
).pipe(
  Command.withDescription(
    "Print an execution's journal as JSON (`> journal.json`: the file WorkflowTest.replay reads)."
  )
)

/** `executions`: list, show, resume, interrupt, export. */
export const executions = Command.make("executions").pipe(
  Command.withDescription("List, inspect and steer workflow executions."),
  Command.withSubcommands([list, show, resume, interrupt, exportJournal])
)
