/**
 * `effect-cluster signal ID NAME --json PAYLOAD`: completes a signal of an execution. The payload
 * is JSON text, stored as the signal's encoded value (the workflow decodes it with the signal's
 * schema when it receives it).
 */
import { Effect } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import { print } from "./internal/format.ts"
import { withAdmin } from "./internal/store.ts"

/** `signal ID NAME --json PAYLOAD`. */
export const signal = Command.make(
  "signal",
  {
    id: Argument.String("id").pipe(Argument.withMetavar("ID"), Argument.withDescription("The execution id.")),
    name: Argument.String("name").pipe(
      Argument.withMetavar("NAME"),
      Argument.withDescription("The signal's name (as in Signal.make).")
    ),
    payload: Flag.String("json").pipe(
      Flag.withMetavar("PAYLOAD"),
      Flag.withDescription(
        "The signal's value as JSON text (its schema's encoded form), e.g. '{\"approved\":true}'."
      )
    )
  },
  ({ id, name, payload }) =>
    withAdmin((admin) =>
      Effect.flatMap(admin.signal(id, name, payload), (result) =>
        print(
          result._tag === "Completed"
            ? `completed signal ${JSON.stringify(name)} of ${id} (it is ${result.status}; an execution waiting for it wakes now)`
            : `already-completed: signal ${JSON.stringify(name)} of ${id} had a value already, which stays`
        )
      )
    )
).pipe(
  Command.withDescription(
    "Complete a signal of an execution with a JSON payload. Prints `completed ...` or `already-completed ...` (the first value wins)."
  )
)
