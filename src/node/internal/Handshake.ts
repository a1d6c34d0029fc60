/**
 * How a connection proves that it knows the cluster's secret without sending it.
 *
 * The client makes a token once per connection: its pod id, the time, a random nonce and an
 * HMAC-SHA256 of those and the destination's address under the secret. The server accepts a
 * token whose MAC matches, whose time is within `windowMillis` of its own clock (clocks of a
 * cluster may drift a little), and whose nonce it has not accepted before (a token copied from
 * one connection does not open another). Once accepted, the connection is trusted until it closes.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto"

/** A token for a connection from `podId` to `address`, at `now`. */
export const token = (secret: string, podId: string, address: string, now: number): string => {
  const nonce = randomBytes(16).toString("base64url")
  const claim = `${encodeURIComponent(podId)}.${now}.${nonce}`
  return `${claim}.${mac(secret, claim, address)}`
}

const mac = (secret: string, claim: string, address: string) =>
  createHmac("sha256", secret).update(`${claim}|${address}`).digest("base64url")

/** Verifies tokens for the server at `address`; remembers the nonces it accepted. */
export const verifier = (secret: string, address: string, windowMillis: number) => {
  /** Accepted nonces, with the time of their token: dropped once outside the window. */
  const seen = new Map<string, number>()
  return (header: string | undefined, now: number): { readonly podId: string } | string => {
    if (header === undefined) return "no proof of the cluster secret"
    const parts = header.split(".")
    if (parts.length !== 4) return "a malformed proof of the cluster secret"
    const [podId, at, nonce, given] = parts as [string, string, string, string]
    const time = Number(at)
    if (!Number.isSafeInteger(time) || Math.abs(now - time) > windowMillis) {
      return "a proof of the cluster secret that is too old (or the clocks of the two machines differ too much)"
    }
    const expected = Buffer.from(mac(secret, `${podId}.${at}.${nonce}`, address))
    const actual = Buffer.from(given)
    if (expected.length !== actual.length || !timingSafeEqual(expected, actual)) {
      return "a wrong proof of the cluster secret"
    }
    if (seen.has(nonce)) return "a proof of the cluster secret that was used before"
    for (const [old, when] of seen) {
      if (Math.abs(now - when) <= windowMillis) break
      seen.delete(old)
    }
    seen.set(nonce, time)
    return { podId: decodeURIComponent(podId) }
  }
}
