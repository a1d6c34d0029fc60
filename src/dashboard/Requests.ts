/**
 * The schemas of what the dashboard's API reads: query parameters and JSON bodies. Every one is
 * decoded before use; what does not decode is answered 400 with the schema's message.
 */
import { Schema } from "effect"
import { ExecutionStatus } from "../workflow/DurableExecutionJournal.ts"

const Text = Schema.String.check(Schema.isNonEmpty(), Schema.isMaxLength(1024))

/** A time: an ISO date or date-time (`2026-01-31`, `2026-01-31T10:00:00Z`) or epoch milliseconds. */
export const Instant = Schema.String.check(
  Schema.makeFilter((text: string) =>
    /^\d{1,16}$/.test(text) || (/^\d{4}-\d{2}-\d{2}/.test(text) && Number.isFinite(Date.parse(text)))
      ? undefined
      : "expected an ISO date or date-time (2026-01-31T10:00:00Z) or epoch milliseconds"
  )
)

/** Epoch milliseconds of an `Instant`. */
export const instantMillis = (text: string): number => (/^\d+$/.test(text) ? Number(text) : Date.parse(text))

const Limit = Schema.NumberFromString.check(Schema.isInt(), Schema.isBetween({ minimum: 1, maximum: 1000 }))

/** `GET /api/executions`. */
export const ExecutionsQuery = Schema.Struct({
  workflow: Schema.optional(Text),
  status: Schema.optional(ExecutionStatus),
  since: Schema.optional(Instant),
  limit: Schema.optional(Limit),
  cursor: Schema.optional(Text)
})

/** `GET /api/execution`. */
export const ExecutionQuery = Schema.Struct({ id: Text })

/** `POST /api/execution/resume` and `/interrupt`. */
export const ExecutionBody = Schema.Struct({ id: Text })

/** `POST /api/execution/signal`: `payload` is JSON text, stored as the signal's encoded value. */
export const SignalBody = Schema.Struct({
  id: Text,
  name: Text,
  payload: Schema.String.check(Schema.isMaxLength(1_000_000))
})

/** `GET /api/entity`. */
export const EntityQuery = Schema.Struct({ type: Text, id: Text })

/** `GET /api/dead-letters`. */
export const DeadLettersQuery = Schema.Struct({
  type: Schema.optional(Text),
  limit: Schema.optional(Limit),
  cursor: Schema.optional(Text)
})

/** `POST /api/dead-letters/replay`. */
export const ReplayBody = Schema.Struct({ key: Text })
