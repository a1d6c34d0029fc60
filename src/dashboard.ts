/**
 * `effect-cluster/dashboard`: the web dashboard over the operator API (`Admin`), as a layer.
 * A separate entry point, so that importing `effect-cluster` does not load an HTTP server.
 */

/** The web dashboard: `Dashboard.layer({ host, port, token })`, which needs `Admin`. */
export * as Dashboard from "./dashboard/Dashboard.ts"
/** The errors of the dashboard's HTTP boundary. */
export * as DashboardErrors from "./dashboard/DashboardErrors.ts"
