/**
 * How the command-line tool prints: aligned tables for people, stable JSON for scripts, times in
 * UTC, durations in the largest sensible unit, payloads as compact JSON cut to a width.
 */
import { Console, type Effect } from "effect"

/** A table: a header row and rows of cells, columns padded to their widest cell. */
export const table = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => (row[column] ?? "").length))
  )
  const line = (cells: ReadonlyArray<string>) =>
    cells
      .map((cell, column) => (column === cells.length - 1 ? cell : cell.padEnd(widths[column] ?? 0)))
      .join("  ")
      .trimEnd()
  return [line(header), ...rows.map(line)].join("\n")
}

/** An epoch-ms time as `2026-12-02 08:26:49.123` (UTC), or `-`. */
export const time = (millis: number | null | undefined): string =>
  millis === null || millis === undefined
    ? "-"
    : new Date(millis).toISOString().replace("T", " ").replace("Z", "")

/** A duration in ms as `840 ms`, `12.3 s`, `4 min 05 s`, `2 h 03 min`, or `-`. */
export const duration = (millis: number | null | undefined): string => {
  if (millis === null || millis === undefined) return "-"
  if (millis < 1_000) return `${Math.round(millis)} ms`
  if (millis < 60_000) return `${(millis / 1_000).toFixed(1)} s`
  const seconds = Math.round(millis / 1_000)
  if (seconds < 3_600) return `${Math.floor(seconds / 60)} min ${String(seconds % 60).padStart(2, "0")} s`
  const minutes = Math.round(seconds / 60)
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, "0")} min`
}

/** A JSON value on one line, cut to `width` characters. */
export const compact = (value: unknown, width = 60): string => {
  if (value === null || value === undefined) return "-"
  const text = typeof value === "string" ? value : JSON.stringify(value)
  const oneLine = text.replace(/\s+/g, " ")
  return oneLine.length > width ? `${oneLine.slice(0, width - 1)}…` : oneLine
}

/** Prints `value` as pretty JSON (the `--json` output: one document per command). */
export const printJson = (value: unknown): Effect.Effect<void> => Console.log(JSON.stringify(value, null, 2))

/** Prints lines of text. */
export const print = (text: string): Effect.Effect<void> => Console.log(text)
