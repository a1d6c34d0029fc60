/**
 * `effect-cluster dead-letters list | replay KEY...`: messages that entities gave up on.
 */
import { Effect, Option } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import { compact, print, printJson, table, time } from "./internal/format.ts"
import { withAdmin } from "./internal/store.ts"
import { json } from "./root.ts"

const list = Command.make(
  "list",
  {
    entityType: Flag.String("type").pipe(
      Flag.withMetavar("TYPE"),
      Flag.withDescription("Only dead letters of this entity type."),
      Flag.optional
    ),
    limit: Flag.Int("limit").pipe(
      Flag.withMetavar("N"),
      Flag.withDescription("At most N (1 to 1000, default 50)."),
      Flag.optional
    ),
    cursor: Flag.String("cursor").pipe(
      Flag.withMetavar("C"),
      Flag.withDescription("The next page: the cursor the previous page printed."),
      Flag.optional
    ),
    json
  },
  (flags) =>
    withAdmin((admin) =>
      Effect.gen(function* () {
        const page = yield* admin.deadLetters({
          entityType: Option.getOrUndefined(flags.entityType),
          limit: Option.getOrUndefined(flags.limit),
          cursor: Option.getOrUndefined(flags.cursor)
        })
        if (flags.json)
          return yield* printJson({ deadLetters: page.deadLetters, next: Option.getOrNull(page.next) })
        if (page.deadLetters.length === 0) return yield* print("no dead letters")
        yield* print(
          table(
            ["KEY", "DEAD SINCE", "ERROR", "PAYLOAD"],
            page.deadLetters.map((d) => [d.key, time(d.deadAt), compact(d.error, 60), compact(d.payload, 50)])
          )
        )
        if (Option.isSome(page.next)) yield* print(`\nmore: --cursor ${page.next.value}`)
      })
    )
).pipe(Command.withDescription("List dead letters, oldest first (KEY is what `replay` takes)."))

const replay = Command.make(
  "replay",
  {
    keys: Argument.String("key").pipe(
      Argument.withMetavar("KEY"),
      Argument.withDescription("A dead letter's key, as `dead-letters list` prints it."),
      Argument.atLeast(1)
    ),
    json
  },
  ({ keys, json }) =>
    withAdmin((admin) =>
      Effect.gen(function* () {
        for (const key of keys) {
          yield* admin.replayDeadLetter(key)
          if (!json) yield* print(`replayed ${key}: pending again, its entity's owner processes it anew`)
        }
        if (json) yield* printJson({ replayed: keys })
      })
    )
).pipe(Command.withDescription("Make dead letters pending again, so their entities process them anew."))

/** `dead-letters`: list, replay. */
export const deadLetters = Command.make("dead-letters").pipe(
  Command.withDescription("List and replay dead letters of entities."),
  Command.withSubcommands([list, replay])
)
