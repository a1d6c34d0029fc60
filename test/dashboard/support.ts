/** Starts the dashboard on a store for a test, and a raw HTTP client (it can set any Host header). */
import { request as httpRequest } from "node:http"
import { Context, Effect, Exit, Layer, Scope } from "effect"
import { Dashboard } from "../../src/dashboard.ts"
import { adminLayer } from "./fixture.ts"

/** A running dashboard: its URL and how to stop it. */
export interface Running {
  readonly url: string
  readonly port: number
  readonly stop: () => Promise<void>
}

/** Starts `Dashboard.layer` (port 0) on the store file. */
export const startDashboard = async (
  file: string,
  options: Dashboard.DashboardOptions = {}
): Promise<Running> => {
  const scope = Effect.runSync(Scope.make())
  const context = await Effect.runPromise(
    Layer.buildWithScope(
      Dashboard.layer({ port: 0, ...options }).pipe(Layer.provide(adminLayer(file))),
      scope
    )
  )
  const { url } = Context.get(context, Dashboard.Dashboard)
  return {
    url,
    port: Number(new URL(url).port),
    stop: () => Effect.runPromise(Scope.close(scope, Exit.void))
  }
}

/** A response: status, headers, body text (and JSON when it parses). */
export interface Reply {
  readonly status: number
  readonly headers: Readonly<Record<string, string | Array<string> | undefined>>
  readonly text: string
  readonly json: any
}

/** One HTTP request to the dashboard on `port`. */
export const call = (
  port: number,
  path: string,
  options: { method?: string; headers?: Record<string, string>; body?: string } = {}
): Promise<Reply> =>
  new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: "127.0.0.1",
        port,
        path,
        method: options.method ?? "GET",
        headers: { host: `127.0.0.1:${port}`, ...options.headers }
      },
      (res) => {
        const chunks: Array<Buffer> = []
        res.on("data", (chunk) => chunks.push(chunk))
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8")
          let json: unknown
          try {
            json = JSON.parse(text)
          } catch {
            json = undefined
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json })
        })
      }
    )
    req.on("error", reject)
    if (options.body !== undefined) req.write(options.body)
    req.end()
  })

/** The CSRF token in a page. */
export const csrfOf = (html: string): string => {
  const match = /<meta name="csrf-token" content="([0-9a-f]+)">/.exec(html)
  if (match === null) throw new Error("no CSRF token in the page")
  return match[1]!
}
