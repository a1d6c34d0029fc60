/**
 * What the network tests share: pods as real processes (`networkPod.ts`) on one store, their
 * asks, their ledger of handled messages, and waiting until the shards are spread over them.
 */
import { readFileSync } from "node:fs"
import { eventually, reader, type Store, shards } from "../cluster/harness.ts"
import * as ChildPod from "../support/ChildPod.ts"

/** What an `ask` answered. */
export interface Asked {
  readonly replies: Record<string, string>
  readonly errors: Record<string, string>
  readonly slowestMillis: number
  readonly storeWrites: number
}

/** What a `load` did. */
export interface Loaded {
  readonly asks: number
  readonly workflows: number
  readonly errors: Record<string, number>
  readonly slowestMillis: number
  readonly jobs: ReadonlyArray<string>
}

/** A line a pod prints. */
export interface Line {
  readonly ready?: string
  readonly stopped?: string
  readonly loaded?: Loaded
  readonly address?: string | null
  readonly asked?: Asked
  readonly error?: string
  readonly level?: string
  readonly message?: unknown
}

/** A message a pod handled. */
export interface LedgerLine {
  readonly t: string
  readonly m: string
  readonly p: string
}

export const SHARDS = 12

/** Starts `networkPod.ts` as `podId` on `store`. */
export const startPod = (store: Store, podId: string, extra: Record<string, unknown> = {}) => {
  const pod = ChildPod.spawn<Line>("test/node/networkPod.ts", {
    args: [
      JSON.stringify({ store: store.location, ledger: store.ledger, podId, shardCount: SHARDS, ...extra })
    ]
  })
  return pod
}

/** Waits until the pod runs; its address. */
export const ready = async (pod: ChildPod.ChildPod<Line>) => {
  const line = await pod.waitFor((message) => message.ready !== undefined, 30_000)
  return line.address!
}

/** Asks one entity of `type` per id from `pod`. */
export const ask = async (
  pod: ChildPod.ChildPod<Line>,
  type: "Echo" | "Tally" | "Blob",
  ids: ReadonlyArray<string>,
  prefix: string,
  timeoutMs = 60_000,
  extra: { readonly bytes?: number; readonly replyBytes?: number; readonly concurrency?: number } = {}
): Promise<Asked> => {
  pod.skipReceived()
  pod.send({
    ask: {
      type,
      ids,
      prefix,
      concurrency: extra.concurrency ?? 20,
      bytes: extra.bytes,
      replyBytes: extra.replyBytes
    }
  })
  const line = await pod.waitFor(
    (message) => message.asked !== undefined || message.error !== undefined,
    timeoutMs
  )
  if (line.asked === undefined) throw new Error(`the ask failed: ${line.error}`)
  return line.asked
}

export const ledger = (store: Store): ReadonlyArray<LedgerLine> =>
  readFileSync(store.ledger, "utf8")
    .split("\n")
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as LedgerLine)

/** Message ids handled more than once. */
export const twice = (lines: ReadonlyArray<LedgerLine>) => {
  const seen = new Set<string>()
  return lines.filter((line) => {
    const key = `${line.t}/${line.m}`
    if (seen.has(key)) return true
    seen.add(key)
    return false
  })
}

export const ids = (n: number) => Array.from({ length: n }, (_, i) => `entity-${i}`)

/** Waits until the shards are spread evenly over `podIds`, no handover pending, then warms the routes. */
export const spread = async (store: Store, pod: ChildPod.ChildPod<Line>, podIds: ReadonlyArray<string>) => {
  const runtime = reader(store)
  try {
    await eventually("the shards to be spread evenly", async () => {
      const records = await shards(runtime)
      return (
        records.every((record) => record.nextOwner === null) &&
        podIds.every(
          (podId) => records.filter((record) => record.owner === podId).length === SHARDS / podIds.length
        )
      )
    })
  } finally {
    await runtime.dispose()
  }
  let round = 0
  await eventually("every route to be known", async () => {
    const asked = await ask(pod, "Echo", ids(60), `warm-${round++}`)
    return asked.storeWrites === 0 && Object.keys(asked.errors).length === 0
  })
}
