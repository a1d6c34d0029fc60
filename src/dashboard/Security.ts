/**
 * The dashboard's request checks, before any route runs:
 *
 * - Host: the `Host` header must be an IP address, `localhost`, or one of the allowed host names,
 *   so that a page on another site cannot reach the dashboard by rebinding its DNS name to
 *   127.0.0.1 (DNS rebinding).
 * - Access token (when the dashboard has one): `?token=T` once (answered with a cookie and a
 *   redirect to the same URL without it), the cookie, or `Authorization: Bearer T`.
 * - CSRF: every request that is not GET or HEAD must carry the per-server token the pages are
 *   given (`x-csrf-token` header), and, when it has an `Origin`, come from the dashboard's own.
 *
 * The comparisons of secrets take the same time whatever the input (digests compared with
 * `timingSafeEqual`).
 */
import { createHash, timingSafeEqual } from "node:crypto"
import { isIP } from "node:net"
import { AccessTokenError, CsrfTokenError, HostNotAllowedError } from "./DashboardErrors.ts"

/** The name of the cookie that carries the access token. */
export const TOKEN_COOKIE = "effect_cluster_dashboard_token"

/** The header that carries the CSRF token. */
export const CSRF_HEADER = "x-csrf-token"

/** What the checks need to know of the server. */
export interface SecurityConfig {
  readonly csrfToken: string
  readonly accessToken: string | undefined
  /** Host names accepted besides IP addresses and `localhost` (lower case). */
  readonly allowedHosts: ReadonlyArray<string>
}

/** What the checks need to know of a request. */
export interface RequestFacts {
  readonly method: string
  readonly url: URL
  readonly headers: Readonly<Record<string, string | undefined>>
  readonly cookies: Readonly<Record<string, string | undefined>>
}

/** What to do with a request. */
export type Verdict =
  | { readonly _tag: "Allow" }
  | { readonly _tag: "Deny"; readonly error: AccessTokenError | CsrfTokenError | HostNotAllowedError }
  /** The token came in the query: set the cookie and send the browser to `location`. */
  | { readonly _tag: "SetTokenCookie"; readonly location: string }

const digest = (value: string) => createHash("sha256").update(value, "utf8").digest()

/** Whether two secrets are equal, in a time that does not depend on where they differ. */
export const sameSecret = (given: string, expected: string): boolean =>
  timingSafeEqual(digest(given), digest(expected))

/** The host name of a `Host` header value (`name:port`, `[v6]:port`), lower case. */
export const hostNameOf = (host: string): string => {
  const trimmed = host.trim().toLowerCase()
  if (trimmed.startsWith("["))
    return trimmed.slice(1, trimmed.indexOf("]") === -1 ? undefined : trimmed.indexOf("]"))
  const colon = trimmed.lastIndexOf(":")
  return colon === -1 ? trimmed : trimmed.slice(0, colon)
}

/** Whether a `Host` header is one the dashboard answers to. */
export const hostAllowed = (host: string | undefined, allowedHosts: ReadonlyArray<string>): boolean => {
  if (host === undefined || host === "") return false
  const name = hostNameOf(host)
  return name === "localhost" || isIP(name) !== 0 || allowedHosts.includes(name)
}

const bearer = (authorization: string | undefined): string | undefined => {
  const match = authorization === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(authorization)
  return match?.[1]
}

/** Checks a request (see the module's doc). */
export const check = (config: SecurityConfig, request: RequestFacts): Verdict => {
  const host = request.headers.host
  if (!hostAllowed(host, config.allowedHosts)) {
    return { _tag: "Deny", error: new HostNotAllowedError({ host: host ?? "" }) }
  }
  if (config.accessToken !== undefined) {
    const queryToken = request.url.searchParams.get("token")
    if (queryToken !== null && request.method === "GET") {
      if (!sameSecret(queryToken, config.accessToken)) {
        return { _tag: "Deny", error: new AccessTokenError({ reason: "wrong" }) }
      }
      const rest = new URLSearchParams(request.url.searchParams)
      rest.delete("token")
      const query = rest.toString()
      // One leading slash: `//host/…` would send the browser to another site.
      const path = `/${request.url.pathname.replace(/^[/\\]+/, "")}`
      return { _tag: "SetTokenCookie", location: `${path}${query === "" ? "" : `?${query}`}` }
    }
    const given = bearer(request.headers.authorization) ?? request.cookies[TOKEN_COOKIE]
    if (given === undefined) return { _tag: "Deny", error: new AccessTokenError({ reason: "missing" }) }
    if (!sameSecret(given, config.accessToken)) {
      return { _tag: "Deny", error: new AccessTokenError({ reason: "wrong" }) }
    }
  }
  if (request.method !== "GET" && request.method !== "HEAD") {
    const origin = request.headers.origin
    if (origin !== undefined && origin !== "null") {
      let originHost: string | undefined
      try {
        originHost = new URL(origin).host
      } catch {
        originHost = undefined
      }
      if (originHost === undefined || originHost.toLowerCase() !== host?.toLowerCase()) {
        return { _tag: "Deny", error: new CsrfTokenError({ reason: "cross-origin" }) }
      }
    }
    const given = request.headers[CSRF_HEADER]
    if (given === undefined || given === "")
      return { _tag: "Deny", error: new CsrfTokenError({ reason: "missing" }) }
    if (!sameSecret(given, config.csrfToken))
      return { _tag: "Deny", error: new CsrfTokenError({ reason: "wrong" }) }
  }
  return { _tag: "Allow" }
}

/** The headers every response carries: no framing, no sniffing, no inline script, no caching. */
export const securityHeaders: Readonly<Record<string, string>> = {
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
  "cache-control": "no-store"
}
