/**
 * The opaque cursors of `Admin`'s pages: a position in a list, as base64url JSON behind a version
 * prefix. Decoded with a schema: a cursor edited by hand, cut short, or made for another order is an
 * `InvalidCursorError`, never a wrong page.
 */
import { Result, Schema } from "effect"
import type { ListPosition } from "../../workflow/DurableExecutionJournal.ts"
import { InvalidCursorError } from "../AdminErrors.ts"

const PREFIX = "c1."

const ExecutionCursor = Schema.Tuple([Schema.Literals(["newest", "oldest"]), Schema.Finite, Schema.String])

const DeadLetterCursor = Schema.Tuple([Schema.Literal("dead"), Schema.Int])

const encode = (value: unknown): string =>
  `${PREFIX}${Buffer.from(JSON.stringify(value)).toString("base64url")}`

const decode = <S extends Schema.Top & { readonly DecodingServices: never }>(
  schema: S,
  cursor: string
): Result.Result<S["Type"], InvalidCursorError> => {
  if (!cursor.startsWith(PREFIX)) {
    return Result.fail(new InvalidCursorError({ cursor, detail: `it does not start with "${PREFIX}"` }))
  }
  let json: unknown
  try {
    json = JSON.parse(Buffer.from(cursor.slice(PREFIX.length), "base64url").toString("utf8"))
  } catch {
    return Result.fail(new InvalidCursorError({ cursor, detail: "its body is not base64url JSON" }))
  }
  const decoded = Schema.decodeUnknownResult(schema)(json)
  return Result.isSuccess(decoded)
    ? Result.succeed(decoded.success)
    : Result.fail(new InvalidCursorError({ cursor, detail: "it is not a cursor of this list" }))
}

/** The cursor of the page after `position`, in `order`. */
export const encodeExecutions = (order: "newest" | "oldest", position: ListPosition): string =>
  encode([order, position.createdAt, position.executionId])

/** The position a cursor of `executions` stands for; it must have been made for `order`. */
export const decodeExecutions = (
  order: "newest" | "oldest",
  cursor: string
): Result.Result<ListPosition, InvalidCursorError> =>
  Result.flatMap(decode(ExecutionCursor, cursor), ([made, createdAt, executionId]) =>
    made === order
      ? Result.succeed({ createdAt, executionId })
      : Result.fail(
          new InvalidCursorError({ cursor, detail: `it was made for order "${made}", not "${order}"` })
        )
  )

/** The cursor of the dead letters after `seq`. */
export const encodeDeadLetters = (seq: number): string => encode(["dead", seq])

/** The `seq` a cursor of `deadLetters` stands for. */
export const decodeDeadLetters = (cursor: string): Result.Result<number, InvalidCursorError> =>
  Result.map(decode(DeadLetterCursor, cursor), ([, seq]) => seq)
