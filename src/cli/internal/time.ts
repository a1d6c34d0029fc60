/**
 * `--since` / `--until` values: an ISO date (`2026-12-02`, `2026-12-02T08:00:00Z`) or a duration
 * back from now (`90s`, `15m`, `1h`, `2d`, `1w`).
 */
import { Clock, Effect } from "effect"
import { InvalidArgumentError } from "../../admin/AdminErrors.ts"

const UNITS: Record<string, number> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000
}

/** The epoch ms `text` stands for; `flag` names it in the error. */
export const parseTime = (flag: string, text: string): Effect.Effect<number, InvalidArgumentError> =>
  Effect.gen(function* () {
    const relative = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)$/.exec(text.trim())
    if (relative !== null) {
      const now = yield* Clock.currentTimeMillis
      return now - Number(relative[1]) * UNITS[relative[2]!]!
    }
    // Only date-like text: Date.parse alone accepts oddities such as "1".
    const parsed = /^\d{4}-\d{2}-\d{2}/.test(text) ? Date.parse(text) : Number.NaN
    if (Number.isNaN(parsed)) {
      return yield* new InvalidArgumentError({
        argument: flag,
        value: text,
        expected:
          "an ISO date (2026-12-02 or 2026-12-02T08:00:00Z) or a duration back from now (30s, 15m, 1h, 2d, 1w)"
      })
    }
    return parsed
  })
