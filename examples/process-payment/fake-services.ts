/**
 * Small local fake services for the demo, served over HTTP by the supervisor process so that they
 * outlive the worker it kills: an order API and a shipping API that fail transiently, a warehouse
 * that is out of stock for one order, an email API, and a payment gateway that deduplicates
 * charges and refunds by idempotency key (the activity's persistenceId).
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"

/** What the payment gateway did, for the final proof. */
export interface Ledger {
  /** Charges actually applied to a card, one per idempotency key. */
  readonly charges: Array<{ key: string; card: string; amount: number }>
  readonly refunds: Array<{ key: string; card: string; amount: number }>
  /** How many charge requests arrived per idempotency key (retries included). */
  readonly chargeRequests: Map<string, number>
}

export interface FakeServices {
  readonly baseUrl: string
  readonly ledger: Ledger
  readonly close: () => Promise<void>
}

export interface FakeServicesOptions {
  /** Orders the warehouse cannot ship. */
  readonly outOfStock: ReadonlySet<string>
  /** Called after a new charge is applied and before the gateway answers. */
  readonly afterCharge: (key: string) => void
}

export const startFakeServices = (options: FakeServicesOptions): Promise<FakeServices> => {
  const ledger: Ledger = { charges: [], refunds: [], chargeRequests: new Map() }
  const seen = new Map<string, number>()
  /** Fails the first call for `id` with `status`, as a flaky upstream would. */
  const flaky = (id: string, status: number, response: ServerResponse): boolean => {
    const calls = (seen.get(id) ?? 0) + 1
    seen.set(id, calls)
    if (calls > 1) return false
    response.writeHead(status).end(JSON.stringify({ error: "try again later" }))
    return true
  }
  const json = (response: ServerResponse, body: unknown) =>
    response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(body))
  let trackingCodes = 0

  const handle = (request: IncomingMessage, response: ServerResponse) => {
    const url = new URL(request.url ?? "/", "http://localhost")
    const q = (name: string) => url.searchParams.get(name) ?? ""
    switch (url.pathname) {
      case "/orders/total":
        if (flaky(`total:${q("order")}`, 503, response)) return
        return json(response, { total: q("order") === "order-1" ? 42.1 : 19.9 })
      case "/payments/charge": {
        const key = q("key")
        ledger.chargeRequests.set(key, (ledger.chargeRequests.get(key) ?? 0) + 1)
        const existing = ledger.charges.find((charge) => charge.key === key)
        if (existing !== undefined) return json(response, { chargeId: key, duplicate: true })
        ledger.charges.push({ key, card: q("card"), amount: Number(q("amount")) })
        options.afterCharge(key)
        return json(response, { chargeId: key, duplicate: false })
      }
      case "/payments/refund": {
        const key = q("key")
        if (!ledger.refunds.some((refund) => refund.key === key)) {
          ledger.refunds.push({ key, card: q("card"), amount: Number(q("amount")) })
        }
        return json(response, { refundId: key })
      }
      case "/shipping/tracking-code":
        if (flaky(`tracking:${q("address")}`, 429, response)) return
        return json(response, { trackingId: `TRK-${++trackingCodes}` })
      case "/warehouse/ship":
        return json(response, { outOfStock: options.outOfStock.has(q("order")) })
      case "/email/send":
        return json(response, { sent: true })
      default:
        response.writeHead(404).end()
    }
  }

  return new Promise((resolve) => {
    const server = createServer(handle)
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo // listen() on a TCP port yields an AddressInfo
      resolve({
        baseUrl: `http://127.0.0.1:${port}`,
        ledger,
        close: () =>
          new Promise((done) => {
            server.closeAllConnections()
            server.close(() => done())
          })
      })
    })
  })
}
