/**
 * `effect-cluster dashboard [--host H] [--port N] [--token T] [--allowed-host NAME]`: serves the
 * web dashboard (`src/dashboard/`) on the store the shared flags name, until Ctrl-C. It binds
 * 127.0.0.1 unless told otherwise; the token may also come from `EFFECT_CLUSTER_DASHBOARD_TOKEN`
 * (so that it does not show in the process list).
 */
import { Config, Console, Context, Effect, Layer, Option } from "effect"
import { Command, Flag } from "effect/cli"
import { Admin } from "../admin/Admin.ts"
import { InvalidArgumentError } from "../admin/AdminErrors.ts"
import { print } from "./internal/format.ts"
import { withAdmin } from "./internal/store.ts"

const LOOPBACK = ["127.0.0.1", "localhost", "::1"]

/** `dashboard`. */
export const dashboard = Command.make(
  "dashboard",
  {
    host: Flag.String("host").pipe(
      Flag.withMetavar("HOST"),
      Flag.withDescription("The address to listen on (default 127.0.0.1: this machine only)."),
      Flag.withDefault("127.0.0.1")
    ),
    port: Flag.Int("port").pipe(
      Flag.withMetavar("N"),
      Flag.withDescription("The port (default 8080; 0 picks a free one)."),
      Flag.withDefault(8080)
    ),
    token: Flag.String("token").pipe(
      Flag.withMetavar("TOKEN"),
      Flag.withDescription(
        "Require this access token on every request (open the printed URL, which carries it once). Default: $EFFECT_CLUSTER_DASHBOARD_TOKEN, else none."
      ),
      Flag.optional
    ),
    allowedHosts: Flag.String("allowed-host").pipe(
      Flag.withMetavar("NAME"),
      Flag.withDescription(
        "A host name the dashboard answers to besides IP addresses and localhost (e.g. behind a proxy); repeatable."
      ),
      Flag.atLeast(0)
    )
  },
  ({ host, port, token, allowedHosts }) =>
    Effect.gen(function* () {
      if (!Number.isInteger(port) || port < 0 || port > 65535) {
        return yield* new InvalidArgumentError({
          argument: "--port",
          value: String(port),
          expected: "an integer from 0 to 65535"
        })
      }
      const accessToken = Option.isSome(token)
        ? token
        : yield* Config.option(Config.String("EFFECT_CLUSTER_DASHBOARD_TOKEN"))
      if (Option.isSome(accessToken) && accessToken.value.trim() === "") {
        return yield* new InvalidArgumentError({
          argument: "--token",
          value: accessToken.value,
          expected: "a non-empty token (or no --token at all)"
        })
      }
      // Loaded only by this command: the HTTP server would add ~0.2 s to every other command's start.
      const Dashboard = yield* Effect.promise(() => import("../dashboard/Dashboard.ts"))
      return yield* withAdmin((admin) =>
        Effect.scoped(
          Effect.gen(function* () {
            const context = yield* Layer.build(
              Dashboard.layer({
                host,
                port,
                token: Option.getOrUndefined(accessToken),
                allowedHosts
              }).pipe(Layer.provide(Layer.succeed(Admin, admin)))
            )
            const { url } = Context.get(context, Dashboard.Dashboard)
            const open = Option.isSome(accessToken)
              ? `${url}?token=${encodeURIComponent(accessToken.value)}`
              : url
            yield* print(`effect-cluster dashboard: ${open} (Ctrl-C to stop)`)
            if (Option.isNone(accessToken) && !LOOPBACK.includes(host)) {
              yield* Console.error(
                `effect-cluster dashboard: warning: listening on ${host} without --token: whoever reaches this port can resume, interrupt and signal executions`
              )
            }
            return yield* Effect.never
          })
        )
      )
    })
).pipe(
  Command.withDescription(
    "Serve the web dashboard on the store: executions (live), one execution's timeline and journal, resume / interrupt / signal, pods and shards, entities, dead letters."
  )
)
