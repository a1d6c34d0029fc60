/**
 * A hostile sender on the pods' network, against real pods (`networkPod.ts`, on one SQLite file):
 * - a connection that is not a peer's (garbage, a `null` frame, malformed headers, a frame over
 *   `maxFrameBytes`, half a frame and a hang, a flood past `maxConnections`, many unfinished
 *   frames at once) is closed with a log line, and the pod keeps serving its peers;
 * - pushed messages an owner must not see (an id no sender could use, over the type's
 *   `maxMessageBytes`, a payload whose own id is not the one it came under, one that does not
 *   decode) are refused with typed errors: not handled, nothing stored;
 * - a burst of large messages, or of large replies, travels in frames under `maxFrameBytes` (none
 *   closes the connection), and a message too large for any frame takes the store path.
 */
import { DatabaseSync } from "node:sqlite"
import { afterEach, describe, expect, it } from "vitest"
import { ShardId } from "../../src/index.ts"
import * as Wire from "../../verify/hostileWire.ts"
import { eventually, freshStore, reader, removeStore, type Store, shards } from "../cluster/harness.ts"
import type * as ChildPod from "../support/ChildPod.ts"
import { ask, ids, type Line, ledger, ready, SHARDS, spread, startPod } from "./harness.ts"

const cleanup: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step()
})

const fresh = async (name: string) => {
  const store = await freshStore("sqlite", name)
  cleanup.push(() => removeStore(store))
  return store
}

/** Two pods a and b with `options`, the shards spread over them. */
const twoPods = async (store: Store, options: Record<string, unknown>) => {
  const a = startPod(store, "a", options)
  cleanup.push(a.dispose)
  const b = startPod(store, "b", options)
  cleanup.push(b.dispose)
  const addresses = { a: await ready(a), b: await ready(b) }
  await spread(store, a, ["a", "b"])
  return { a, b, addresses }
}

/** Waits until `pod` logged a line containing `text`. */
const logged = (pod: ChildPod.ChildPod<Line>, text: string, timeoutMs = 20_000) =>
  eventually(
    `a log line with "${text}"`,
    async () => pod.messages.some((line) => JSON.stringify(line.message ?? "").includes(text)),
    timeoutMs
  )

/** Sends `bytes` on a new connection; whether the pod closed it within `timeoutMs`. */
const closes = async (address: string, bytes: string | Uint8Array, timeoutMs = 10_000) => {
  const connection = await Wire.connect(address)
  await connection.write(bytes)
  const closed = await connection.waitClosed(timeoutMs)
  connection.destroy()
  return closed
}

describe("a pod's listener against a hostile sender", () => {
  it("connections that are not a peer's are closed with a log line; the pod keeps serving its peers", async () => {
    const store = await fresh("hostile-listener")
    const { a, b, addresses } = await twoPods(store, { maxFrameBytes: 1024 * 1024, maxConnections: 40 })
    const target = addresses.b

    expect(await closes(target, "\u0000\u0001 garbage\n")).toBe(true)
    await logged(b, "sent a frame that is not JSON")
    expect(await closes(target, "null\n")).toBe(true)
    await logged(b, "not a message of the pods' protocol (not an object)")
    expect(await closes(target, Wire.request("1", "Wake", { shards: [] }, { headers: 5 }))).toBe(true)
    await logged(b, "(malformed headers)")
    expect(await closes(target, Buffer.alloc(1024 * 1024 + 100, 0x61), 30_000)).toBe(true)
    await logged(b, "sent a frame over 1048576 bytes")

    // Half a frame, then nothing: closed once no frame completed for 10 s (4 request timeouts of
    // 1 s, at least 10 s), while the other attacks below run.
    const hanging = await Wire.connect(target)
    await hanging.write('{"_tag":"Request","id":"1","tag":"Wake","payl')

    // Unfinished frames of 900 kB on many connections: past 4 × maxFrameBytes in all, closed.
    const unfinished = await Promise.all(Array.from({ length: 8 }, () => Wire.connect(target)))
    for (const connection of unfinished) await connection.write(Buffer.alloc(900_000, 0x62))
    await logged(b, "while the unfinished frames of all connections took more than 4194304 bytes")
    // Logged, then closed: the close reaches this side a moment later.
    await eventually("an unfinished connection is closed", async () =>
      unfinished.some((connection) => connection.closed())
    )
    for (const connection of unfinished) connection.destroy()

    // A flood of connections past maxConnections: the extra ones are closed as they come.
    const flood = await Promise.all(
      Array.from({ length: 60 }, () => Wire.connect(target).catch(() => undefined))
    )
    await logged(b, "were open (at most 40)")
    for (const connection of flood) connection?.destroy()

    expect(await hanging.waitClosed(20_000)).toBe(true)
    await logged(b, "completed no frame for 10000 ms")

    // Both pods alive, and their traffic still goes over the network.
    expect(await Wire.serves(target)).toBe(true)
    const after = await ask(a, "Echo", ids(60), "after")
    expect(after.errors).toEqual({})
    expect(after.storeWrites).toBe(0)
    expect(Object.values(after.replies).some((podId) => podId === "b")).toBe(true)
  })

  it("pushed messages an owner must not see are refused with typed errors: not handled, nothing stored", async () => {
    const store = await fresh("hostile-pushes")
    const { a, addresses } = await twoPods(store, {})
    const runtime = reader(store)
    const owners = new Map((await shards(runtime)).map((record) => [record.shard, record.owner]))
    await runtime.dispose()
    const addressOf = (entityId: string) =>
      owners.get(ShardId.shardOf(entityId, SHARDS)) === "a" ? addresses.a : addresses.b
    const ping = (messageId: string, extra: Record<string, unknown> = {}) =>
      JSON.stringify({ _tag: "Ping", messageId, ...extra })
    const cases = [
      {
        entityId: "",
        messageId: "hostile-empty-id",
        payload: ping("hostile-empty-id"),
        tag: "InvalidEntityIdError"
      },
      {
        entityId: "x".repeat(600),
        messageId: "hostile-long-id",
        payload: ping("hostile-long-id"),
        tag: "InvalidEntityIdError"
      },
      { entityId: "e-1", messageId: "hostile-other-id", payload: ping("p-1"), tag: "MalformedMessageError" },
      {
        entityId: "e-2",
        messageId: "hostile-large",
        payload: ping("hostile-large", { junk: "j".repeat(300_000) }),
        tag: "MessageTooLargeError"
      },
      {
        entityId: "e-3",
        messageId: "hostile-shape",
        payload: '{"_tag":"Ping","messageId":5}',
        tag: "MalformedMessageError"
      },
      { entityId: "e-4", messageId: "hostile-json", payload: "{not json", tag: "MalformedMessageError" },
      { entityId: "e-5", messageId: "hostile-fine", payload: ping("hostile-fine"), tag: "Reply" }
    ]
    const answers = await Promise.all(
      cases.map(async (push, index) => {
        const connection = await Wire.connect(addressOf(push.entityId))
        await connection.write(Wire.request("answers", "Answers", null))
        await connection.write(
          Wire.request(
            "deliver",
            "Deliver",
            {
              pushes: [
                {
                  id: index,
                  message: {
                    entityType: "Tally",
                    entityId: push.entityId,
                    messageId: push.messageId,
                    shard: 1,
                    payload: push.payload,
                    stored: false,
                    awaitReply: true
                  }
                }
              ]
            },
            { discard: true }
          )
        )
        const chunk = (await connection.waitFrame(
          (frame) => (frame as { _tag?: string })._tag === "Chunk",
          10_000
        )) as { values: ReadonlyArray<{ answer: { _tag: string; error?: { _tag: string } } }> } | undefined
        connection.destroy()
        const answer = chunk?.values[0]?.answer
        return answer?._tag === "Failed" ? answer.error?._tag : answer?._tag
      })
    )
    expect(answers).toEqual(cases.map((push) => push.tag))
    // Only the well-formed one was handled and stored.
    expect(ledger(store).filter((line) => line.m.startsWith("hostile-"))).toEqual([
      { t: "Tally", m: "hostile-fine", p: owners.get(ShardId.shardOf("e-5", SHARDS)) }
    ])
    const db = new DatabaseSync(store.location)
    const stored = db
      .prepare("SELECT message_id FROM effect_cluster_entity_messages WHERE message_id LIKE 'hostile-%'")
      .all()
      .map((row) => row.message_id)
    db.close()
    expect(stored).toEqual(["hostile-fine"])
    const after = await ask(a, "Tally", ids(40), "after")
    expect(after.errors).toEqual({})
  })

  it("a burst of large messages or replies travels in frames under maxFrameBytes; a message too large for any frame takes the store path", async () => {
    const store = await fresh("hostile-frames")
    const { a, b } = await twoPods(store, { maxFrameBytes: 2 * 1024 * 1024 })
    // 40 messages of 300 kB at once from a: 12 MB queued for b in one go.
    const burst = await ask(a, "Blob", ids(40), "burst", 60_000, { bytes: 300_000, concurrency: 40 })
    expect(burst.errors).toEqual({})
    expect(Object.values(burst.replies).filter((podId) => podId === "b").length).toBeGreaterThan(5)
    // Every one over the network: no frame too large for b, no connection closed, nothing stored.
    expect(burst.storeWrites).toBe(0)
    // 40 small messages whose replies are 300 kB each: 12 MB of answers ready for a at once.
    const replies = await ask(a, "Blob", ids(40), "replies", 60_000, { replyBytes: 300_000, concurrency: 40 })
    expect(replies.errors).toEqual({})
    expect(Object.values(replies.replies).filter((podId) => podId === "b").length).toBeGreaterThan(5)
    expect(replies.storeWrites).toBe(0)
    // One of 1.5 MB: too large for a frame between pods (half of the 2 MiB is the budget).
    const large = await ask(a, "Blob", ids(12), "large", 60_000, { bytes: 1_500_000, concurrency: 12 })
    expect(large.errors).toEqual({})
    expect(Object.values(large.replies).filter((podId) => podId === "b").length).toBeGreaterThan(0)
    expect(large.storeWrites).toBeGreaterThan(0)
    expect(
      b.messages.some((line) => JSON.stringify(line.message ?? "").includes("closed a connection"))
    ).toBe(false)
  })
})
