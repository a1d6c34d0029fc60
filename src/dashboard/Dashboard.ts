/**
 * The web dashboard: pages to see and steer what runs in a store — executions (live), one
 * execution's timeline and journal, pods and shards, entities, dead letters — served with
 * `effect/http` on Node. It reads and steers only through `Admin`, so it is a shell over the
 * operator API, like the command-line tool.
 *
 * Safe by default: it binds 127.0.0.1; it answers only to a `Host` that is an IP address,
 * `localhost` or an allowed name (DNS rebinding); state changes only through POST with the
 * per-server CSRF token the pages carry; and with `token`, every request needs it (see `Security`).
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { Admin } from "effect-cluster"
 * import { Dashboard } from "effect-cluster/dashboard"
 *
 * const DashboardLive = Dashboard.layer({ port: 8080 }).pipe(Layer.provide(Admin.layerFile(".data/journal.db")))
 * Layer.launch(DashboardLive).pipe(Effect.runFork)
 * ```
 */
import { randomBytes } from "node:crypto"
import { createServer } from "node:http"
// The module, not the package index: the index loads every Node adapter (Redis, workers, undici).
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { Context, Effect, Layer } from "effect"
import {
  HttpRouter,
  HttpServer,
  type HttpServerError,
  HttpServerRequest,
  HttpServerResponse
} from "effect/http"
import type { Admin } from "../admin/Admin.ts"
import * as Api from "./Api.ts"
import { DashboardStartError } from "./DashboardErrors.ts"
import * as Pages from "./Pages.ts"
import * as Security from "./Security.ts"

/** Where and how the dashboard listens. */
export interface DashboardOptions {
  /** Default `127.0.0.1`. */
  readonly host?: string | undefined
  /** Default 8080; 0 picks a free port. */
  readonly port?: number | undefined
  /** When set, every request must carry it (`?token=` once, then a cookie; or `Authorization: Bearer`). */
  readonly token?: string | undefined
  /** Host names (besides IP addresses and `localhost`) the dashboard answers to, e.g. behind a proxy. */
  readonly allowedHosts?: ReadonlyArray<string> | undefined
}

/** A running dashboard: its URL. */
export class Dashboard extends Context.Service<
  Dashboard,
  {
    /** `http://host:port/`. */
    readonly url: string
  }
>()("effect-cluster/dashboard/Dashboard") {}

const securityMiddleware = (config: Security.SecurityConfig) =>
  HttpRouter.middleware(
    (httpEffect) =>
      Effect.gen(function* () {
        const request = yield* HttpServerRequest.HttpServerRequest
        const verdict = Security.check(config, {
          method: request.method,
          url: new URL(request.url, "http://dashboard"),
          headers: request.headers,
          cookies: request.cookies
        })
        switch (verdict._tag) {
          case "Deny":
            return Api.errorResponse(verdict.error, verdict.error.status).pipe(
              HttpServerResponse.setHeaders(Security.securityHeaders)
            )
          case "SetTokenCookie":
            return HttpServerResponse.redirect(verdict.location, { status: 303 }).pipe(
              HttpServerResponse.setHeaders(Security.securityHeaders),
              HttpServerResponse.setCookieUnsafe(Security.TOKEN_COOKIE, config.accessToken ?? "", {
                httpOnly: true,
                sameSite: "strict",
                path: "/"
              })
            )
          case "Allow":
            return HttpServerResponse.setHeaders(yield* httpEffect, Security.securityHeaders)
        }
      }),
    { global: true }
  )

/** Serves the dashboard for as long as the layer lives; needs `Admin`. */
export const layer = (options: DashboardOptions = {}): Layer.Layer<Dashboard, DashboardStartError, Admin> =>
  Layer.unwrap(
    Effect.gen(function* () {
      const csrfToken = randomBytes(32).toString("hex")
      const files = yield* Pages.loadStatic
      const config: Security.SecurityConfig = {
        csrfToken,
        accessToken: options.token === "" ? undefined : options.token,
        allowedHosts: (options.allowedHosts ?? []).map((host) => host.toLowerCase())
      }
      const app = Layer.mergeAll(Api.routes, Pages.routes(csrfToken, files), securityMiddleware(config))
      const host = options.host ?? "127.0.0.1"
      const port = options.port ?? 8080
      const server = NodeHttpServer.layer(() => createServer(), { host, port }).pipe(
        Layer.catchTag("ServeError", (error: HttpServerError.ServeError) =>
          Layer.effect(
            HttpServer.HttpServer,
            Effect.fail(
              new DashboardStartError({
                host,
                port,
                detail: error.cause instanceof Error ? error.cause.message : String(error.cause)
              })
            )
          )
        )
      )
      const service = Layer.effect(
        Dashboard,
        Effect.map(HttpServer.HttpServer, (server) => ({
          url: `${HttpServer.formatAddress(server.address)}/`
        }))
      )
      return Layer.merge(
        HttpRouter.serve(app, { disableLogger: true, disableListenLog: true }),
        service
      ).pipe(Layer.provide(server))
    })
  )
