/**
 * The rule for identifiers the engine stores and looks up: execution ids, activity ids (step keys)
 * and signal names. Checked once at the engine's boundary, so that every backend sees the same
 * identifiers and a bad one gets the same typed error everywhere (PostgreSQL text rejects NUL and
 * its JSON rejects lone surrogates; SQLite stored them, altered; B-tree index entries have a size
 * limit on PostgreSQL).
 */

import { InvalidIdentifierError } from "../WorkflowErrors.ts"

/** The longest identifier, in UTF-16 code units (at most 3 UTF-8 bytes each: well inside index limits). */
export const MAX_IDENTIFIER_LENGTH = 256

const hex = (code: number) => `U+${code.toString(16).toUpperCase().padStart(4, "0")}`

/** NUL or any surrogate: the only characters worth a closer look (a pair is fine). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: NUL is what it looks for
const SUSPECT = /[\u0000\ud800-\udfff]/

/** What is wrong with `value` as an identifier, or undefined if nothing is. */
const identifierProblem = (value: string): string | undefined => {
  if (value.length === 0) return "is empty"
  if (value.length > MAX_IDENTIFIER_LENGTH) {
    return `is ${value.length} characters long (at most ${MAX_IDENTIFIER_LENGTH})`
  }
  // Every step asks this: a native scan, and the loop below only for text with surrogates.
  if (!SUSPECT.test(value)) return undefined
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i)
    if (code === 0) return `contains NUL (U+0000) at index ${i}`
    if (code >= 0xd800 && code <= 0xdbff) {
      const next = value.charCodeAt(i + 1)
      if (next >= 0xdc00 && next <= 0xdfff) {
        i++
        continue
      }
      return `contains a lone surrogate (${hex(code)}) at index ${i}`
    }
    if (code >= 0xdc00 && code <= 0xdfff) return `contains a lone surrogate (${hex(code)}) at index ${i}`
  }
  return undefined
}

/** `value` quoted for an error message: JSON escapes control characters and lone surrogates. */
const quoteIdentifier = (value: string): string =>
  JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value)

/**
 * The error for `value` as an identifier of `kind` (of `workflow`, when known), or undefined if it
 * is a valid one.
 */
export const invalidIdentifier = (
  kind: InvalidIdentifierError["kind"],
  value: string,
  workflow: string | null
): InvalidIdentifierError | undefined => {
  const problem = identifierProblem(value)
  return problem === undefined
    ? undefined
    : new InvalidIdentifierError({ kind, value: quoteIdentifier(value), workflow, detail: problem })
}
