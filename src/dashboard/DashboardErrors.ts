/**
 * The errors of the dashboard's HTTP boundary, as data. Each one becomes a JSON response
 * `{ "error": { "_tag", "message" } }` with its `status`; the `message` says what was wrong.
 */
import { Schema } from "effect"

/** A query parameter, path or body did not decode (400). */
export class InvalidRequestError extends Schema.TaggedError<InvalidRequestError>()("InvalidRequestError", {
  /** What was being read: "query", "body", "id"… */
  part: Schema.String,
  detail: Schema.String
}) {
  readonly status = 400

  override get message(): string {
    return `invalid ${this.part}: ${this.detail}`
  }
}

/** A state-changing request without the page's CSRF token, or with a wrong one (403). */
export class CsrfTokenError extends Schema.TaggedError<CsrfTokenError>()("CsrfTokenError", {
  reason: Schema.Literals(["missing", "wrong", "cross-origin"])
}) {
  readonly status = 403

  override get message(): string {
    return this.reason === "cross-origin"
      ? "the request comes from another origin; state changes are accepted only from the dashboard's own pages"
      : `the CSRF token is ${this.reason}: reload the page and try again (send it in the x-csrf-token header)`
  }
}

/** The dashboard was started with an access token and the request does not carry it (401). */
export class AccessTokenError extends Schema.TaggedError<AccessTokenError>()("AccessTokenError", {
  reason: Schema.Literals(["missing", "wrong"])
}) {
  readonly status = 401

  override get message(): string {
    return `the access token is ${this.reason}: open the dashboard's URL with ?token=TOKEN once (it sets a cookie), or send "Authorization: Bearer TOKEN"`
  }
}

/** The Host header names a host the dashboard does not answer to: DNS rebinding protection (403). */
export class HostNotAllowedError extends Schema.TaggedError<HostNotAllowedError>()("HostNotAllowedError", {
  host: Schema.String
}) {
  readonly status = 403

  override get message(): string {
    return `the Host header ${JSON.stringify(this.host)} is not allowed: open the dashboard by IP address or localhost, or start it with --allowed-host for this name`
  }
}

/** No page or API route at this path (404). */
export class RouteNotFoundError extends Schema.TaggedError<RouteNotFoundError>()("RouteNotFoundError", {
  method: Schema.String,
  path: Schema.String
}) {
  readonly status = 404

  override get message(): string {
    return `no route ${this.method} ${this.path}`
  }
}

/** The dashboard could not listen (the port is taken, the address is not this machine's…). */
export class DashboardStartError extends Schema.TaggedError<DashboardStartError>()("DashboardStartError", {
  host: Schema.String,
  port: Schema.Number,
  detail: Schema.String
}) {
  override get message(): string {
    return `the dashboard cannot listen on ${this.host}:${this.port} (${this.detail}): choose another --port or --host`
  }
}
