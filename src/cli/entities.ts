/**
 * `effect-cluster entities show TYPE ID`: an entity's stored state and pending messages.
 */
import { Effect, Option } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import { compact, print, printJson, table, time } from "./internal/format.ts"
import { withAdmin } from "./internal/store.ts"
import { json } from "./root.ts"

const show = Command.make(
  "show",
  {
    entityType: Argument.String("type").pipe(
      Argument.withMetavar("TYPE"),
      Argument.withDescription("The entity type's name.")
    ),
    entityId: Argument.String("id").pipe(
      Argument.withMetavar("ID"),
      Argument.withDescription("The entity id.")
    ),
    limit: Flag.Int("limit").pipe(
      Flag.withMetavar("N"),
      Flag.withDescription("At most N pending messages (1 to 1000, default 50)."),
      Flag.optional
    ),
    json
  },
  ({ entityType, entityId, limit, json }) =>
    withAdmin((admin) =>
      Effect.gen(function* () {
        const entity = yield* admin.entity(entityType, entityId, { limit: Option.getOrUndefined(limit) })
        if (json) return yield* printJson(entity)
        const lines = [
          `entity   ${entityType} ${entityId}`,
          `state    ${entity.state === null ? "(none stored)" : JSON.stringify(entity.state)}`,
          ""
        ]
        lines.push(
          entity.pending.length === 0
            ? "no pending messages"
            : table(
                ["SEQ", "MESSAGE", "STORED", "PAYLOAD"],
                entity.pending.map((m) => [
                  String(m.seq),
                  m.messageId,
                  time(m.createdAt),
                  compact(m.payload, 80)
                ])
              )
        )
        yield* print(lines.join("\n"))
      })
    )
).pipe(Command.withDescription("Show an entity's stored state and its pending messages."))

/** `entities`: show. */
export const entities = Command.make("entities").pipe(
  Command.withDescription("Inspect sharded entities."),
  Command.withSubcommands([show])
)
