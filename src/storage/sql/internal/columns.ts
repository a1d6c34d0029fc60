/**
 * Column decoders shared by the SQL stores. Drivers return BIGINT as number (SQLite) or bigint or
 * text (PostgreSQL), booleans as 0/1 or true/false.
 */
import { Schema, SchemaTransformation } from "effect"

const NumberFromBigInt = Schema.BigInt.pipe(
  Schema.decodeTo(
    Schema.Number,
    SchemaTransformation.transform({ decode: (n: bigint) => Number(n), encode: (n: number) => BigInt(n) })
  )
)
/** A number column: millisecond times and counters, far inside the safe integer range. */
export const SqlNumber = Schema.Union([Schema.Number, Schema.NumberFromString, NumberFromBigInt])
/** A boolean column. */
export const SqlBoolean = Schema.Union([Schema.Boolean, Schema.Number])
