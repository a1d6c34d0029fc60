/**
 * The demo's services in memory, for the example's tests: the same answers as fake-services.ts,
 * through a `fetch` that never leaves the process, with knobs for the failures a test wants.
 */
import type { Services } from "./services-client.ts"

export interface InMemoryOptions {
  /** Orders the warehouse cannot ship. */
  readonly outOfStock?: ReadonlySet<string> | undefined
  /** The first n charge calls answer 503 (the gateway is down). */
  readonly chargeFailures?: number | undefined
  /** Charge calls never answer (a worker killed mid-charge, as the demo does). */
  readonly chargeHangs?: boolean | undefined
  /** Refund calls never answer (killed mid-compensation). */
  readonly refundHangs?: boolean | undefined
}

/** In-memory services and what they were asked to do. */
export const inMemoryServices = (options: InMemoryOptions = {}) => {
  const charges = new Map<string, string>()
  const refunds = new Map<string, string>()
  const emails: Array<string> = []
  const calls: Array<string> = []
  let trackingCodes = 0
  let chargeFailures = options.chargeFailures ?? 0
  const json = (body: unknown, status = 200) =>
    Promise.resolve(
      new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } })
    )
  const fetch = (href: string): Promise<Response> => {
    const url = new URL(href)
    const q = (name: string) => url.searchParams.get(name) ?? ""
    calls.push(url.pathname)
    switch (url.pathname) {
      case "/orders/total":
        return json({ total: q("order") === "order-1" ? 42.1 : 19.9 })
      case "/payments/charge":
        if (options.chargeHangs) return new Promise(() => {})
        if (chargeFailures > 0) {
          chargeFailures--
          return json({ error: "gateway down" }, 503)
        }
        if (!charges.has(q("key"))) charges.set(q("key"), q("card"))
        return json({ chargeId: q("key") })
      case "/payments/refund":
        if (options.refundHangs) return new Promise(() => {})
        if (!refunds.has(q("key"))) refunds.set(q("key"), q("card"))
        return json({ refundId: q("key") })
      case "/shipping/tracking-code":
        return json({ trackingId: `TRK-${++trackingCodes}` })
      case "/warehouse/ship":
        return json({ outOfStock: options.outOfStock?.has(q("order")) ?? false })
      case "/email/send":
        emails.push(q("to"))
        return json({ sent: true })
      default:
        return json({ error: "not found" }, 404)
    }
  }
  const services: Services = { baseUrl: "http://in-memory", log: () => {}, fetch }
  return { services, charges, refunds, emails, calls }
}
