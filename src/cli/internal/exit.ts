/**
 * How a run of the tool ends: the exit code and, for a failure, the ONE line printed on stderr.
 *
 * - 0: done (or help was printed);
 * - 1: the command could not do what was asked: an unknown id, a malformed payload or cursor, a
 *   store that does not exist or does not answer (the typed errors of `AdminErrors`, the journal's);
 * - 2: the command line itself is wrong (an unknown flag, a missing argument, a bad flag value);
 * - 70: a bug (a defect): the line says so; set `EFFECT_CLUSTER_DEBUG=1` for the full cause;
 * - 130: interrupted (Ctrl-C).
 */
import { Cause, Exit } from "effect"
import * as CliError from "effect/cli/CliError"

/** The outcome of a run, for the process. */
export interface Ending {
  readonly code: number
  /** The line for stderr; undefined when there is nothing to say. */
  readonly line: string | undefined
  /** The full cause, for `EFFECT_CLUSTER_DEBUG`. */
  readonly cause: string | undefined
}

const oneLine = (text: string): string =>
  text
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "")
    .join(" ")

const messageOf = (error: unknown): string =>
  typeof error === "object" && error !== null && "message" in error && typeof error.message === "string"
    ? error.message
    : String(error)

/** The exit code and stderr line of a run that ended with `exit`. */
export const ending = (exit: Exit.Exit<unknown, unknown>): Ending => {
  if (Exit.isSuccess(exit)) return { code: 0, line: undefined, cause: undefined }
  const cause = exit.cause
  const failure = cause.reasons.find(Cause.isFailReason)
  if (failure !== undefined) {
    const error = failure.error
    if (CliError.isCliError(error)) {
      if (error._tag === "ShowHelp") {
        const first = error.errors[0]
        return first === undefined
          ? { code: 0, line: undefined, cause: undefined }
          : {
              code: 2,
              line: `effect-cluster: ${oneLine(first.message)} (see ${error.commandPath.join(" ")} --help)`,
              cause: undefined
            }
      }
      return { code: 2, line: `effect-cluster: ${oneLine(error.message)}`, cause: undefined }
    }
    return { code: 1, line: `effect-cluster: ${oneLine(messageOf(error))}`, cause: Cause.pretty(cause) }
  }
  if (Cause.hasInterruptsOnly(cause))
    return { code: 130, line: "effect-cluster: interrupted", cause: undefined }
  const defect = cause.reasons.find(Cause.isDieReason)
  return {
    code: 70,
    line: `effect-cluster: internal error: ${oneLine(messageOf(defect?.defect))} (a bug: set EFFECT_CLUSTER_DEBUG=1 for details and report it)`,
    cause: Cause.pretty(cause)
  }
}
