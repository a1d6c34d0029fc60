/**
 * The network between pods on its own (two listeners in this process, real TCP on loopback):
 * pushes and their answers, hints, the secret handshake, and what a hostile connection gets.
 */
import { createConnection } from "node:net"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Redacted } from "effect"
import * as NodePodNetwork from "../../src/node/NodePodNetwork.ts"
import type { EntityPush, NetworkOptions, PodNetwork } from "../../src/sharding/PodNetwork.ts"

/** Test certificates (see its README). */
const TLS = join(import.meta.dirname, "..", "fixtures", "tls")

const push = (id: string, overrides?: Partial<EntityPush>): EntityPush => ({
  entityType: "Counter",
  entityId: id,
  messageId: `m-${id}`,
  shard: 1,
  payload: JSON.stringify({ _tag: "Increment" }),
  stored: false,
  awaitReply: true,
  ...overrides
})

/** A listener whose pushes answer with the entity id, after `delay(id)` ms. */
const echoPod = (
  podId: string,
  secret?: string,
  delay: (id: string) => number = () => 0,
  options: NetworkOptions = secret === undefined ? {} : { secret: Redacted.make(secret) }
) =>
  Effect.gen(function* () {
    const network = yield* NodePodNetwork.listen(podId, options)
    const handled: Array<string> = []
    yield* network.serve({
      push: (message) =>
        Effect.sync(() => handled.push(message.entityId)).pipe(
          Effect.andThen(Effect.sleep(delay(message.entityId))),
          Effect.as({ _tag: "Reply" as const, reply: JSON.stringify(message.entityId) })
        )
    })
    return { network, handled }
  })

/** Writes `bytes` to `address` on a raw socket; resolves when the server closes it (or after `ms`). */
const rawConnection = (network: PodNetwork, bytes: Buffer | string, ms = 2_000) =>
  Effect.callback<"closed" | "open">((resume) => {
    const [host, port] = network.address.split(":")
    const socket = createConnection({ host: host!, port: Number(port) }, () => socket.write(bytes))
    const timer = setTimeout(() => {
      socket.destroy()
      resume(Effect.succeed("open"))
    }, ms)
    socket.on("data", () => {})
    socket.on("error", () => {})
    socket.on("close", () => {
      clearTimeout(timer)
      resume(Effect.succeed("closed"))
    })
  })

describe("NodePodNetwork", () => {
  it.live(
    "a push travels to the peer and its answer back; 200 pushes in flight each get their own answer",
    () =>
      Effect.gen(function* () {
        const a = yield* echoPod("a")
        const b = yield* echoPod("b")
        expect(b.network.address).toMatch(/^127\.0\.0\.1:\d+$/)
        const one = yield* a.network.push(b.network.address, push("e-1"), 5_000)
        expect(one).toEqual({ _tag: "Reply", reply: JSON.stringify("e-1") })
        const many = yield* Effect.forEach(
          Array.from({ length: 200 }, (_, i) => `e-${i}`),
          (id) => a.network.push(b.network.address, push(id), 5_000),
          { concurrency: "unbounded" }
        )
        expect(
          many.map((answer) => (answer._tag === "Reply" ? JSON.parse(answer.reply!) : answer._tag))
        ).toEqual(Array.from({ length: 200 }, (_, i) => `e-${i}`))
        expect(b.handled).toHaveLength(201)
        expect(a.handled).toHaveLength(0)
      }).pipe(Effect.scoped)
  )

  it.live("a slow entity does not hold back the answers of the others in its batch", () =>
    Effect.gen(function* () {
      const a = yield* echoPod("a")
      const b = yield* echoPod("b", undefined, (id) => (id === "slow" ? 60_000 : 0))
      const slow = yield* Effect.forkChild(a.network.push(b.network.address, push("slow"), 60_000))
      const fast = yield* a.network.push(b.network.address, push("fast"), 60_000)
      expect(fast).toEqual({ _tag: "Reply", reply: JSON.stringify("fast") })
      expect(slow.pollUnsafe()).toBeUndefined()
    }).pipe(Effect.scoped)
  )

  it.live("wake-ups, settlements and new owners reach the handlers of the peer", () =>
    Effect.gen(function* () {
      const a = yield* echoPod("a")
      const b = yield* echoPod("b")
      const woken = yield* Deferred.make<ReadonlyArray<number>>()
      const settled =
        yield* Deferred.make<ReadonlyArray<{ readonly executionId: string; readonly row: string | null }>>()
      const owns = yield* Deferred.make<readonly [string, ReadonlyArray<number>]>()
      yield* b.network.serve({
        wake: (shards) => Deferred.succeed(woken, shards),
        settled: (ids) => Deferred.succeed(settled, ids),
        owns: (owner, shards) => Deferred.succeed(owns, [owner.podId, shards] as const)
      })
      yield* a.network.wake(b.network.address, 7)
      yield* a.network.settled(b.network.address, "exec-1", '{"executionId":"exec-1"}')
      yield* a.network.settled(b.network.address, "exec-2")
      yield* a.network.owns(b.network.address, 3)
      expect(yield* Deferred.await(woken)).toEqual([7])
      expect(yield* Deferred.await(settled)).toEqual([
        { executionId: "exec-1", row: '{"executionId":"exec-1"}' },
        { executionId: "exec-2", row: null }
      ])
      expect(yield* Deferred.await(owns)).toEqual(["a", [3]])
    }).pipe(Effect.scoped)
  )

  it.live("an unreachable peer fails the push with PeerUnreachableError, quickly", () =>
    Effect.gen(function* () {
      const a = yield* echoPod("a")
      const gone = yield* Effect.scoped(Effect.map(echoPod("gone"), ({ network }) => network.address))
      const exit = yield* Effect.exit(a.network.push(gone, push("e-1"), 30_000))
      expect(Exit.isFailure(exit) && JSON.stringify(exit.cause)).toContain("PeerUnreachableError")
    }).pipe(Effect.scoped)
  )

  it.live("with a secret: the right one is served, a wrong one is refused and nothing is handled", () =>
    Effect.gen(function* () {
      const b = yield* echoPod("b", "cluster-secret-1")
      const good = yield* echoPod("good", "cluster-secret-1")
      const bad = yield* echoPod("bad", "another-secret-2")
      const none = yield* echoPod("none")
      expect(yield* good.network.push(b.network.address, push("ok"), 5_000)).toEqual({
        _tag: "Reply",
        reply: JSON.stringify("ok")
      })
      for (const intruder of [bad, none]) {
        const exit = yield* Effect.exit(intruder.network.push(b.network.address, push("intruder"), 5_000))
        expect(Exit.isFailure(exit)).toBe(true)
      }
      expect(b.handled).toEqual(["ok"])
    }).pipe(Effect.scoped)
  )

  it.live(
    "garbage bytes are answered with an error, an oversized frame ends its connection; peers are still served",
    () =>
      Effect.gen(function* () {
        const a = yield* echoPod("a")
        const b = yield* echoPod("b")
        // Not a frame of the protocol: answered with a protocol error, nothing handled.
        yield* rawConnection(
          b.network,
          '\u0000\u0001garbage}{\n{"_tag":"Request","id":"1","tag":"Deliver"}\n',
          300
        )
        expect(yield* rawConnection(b.network, Buffer.alloc(17 * 1024 * 1024, 0x61), 10_000)).toBe("closed")
        expect(yield* a.network.push(b.network.address, push("after"), 5_000)).toEqual({
          _tag: "Reply",
          reply: JSON.stringify("after")
        })
        expect(b.handled).toEqual(["after"])
      }).pipe(Effect.scoped)
  )

  it.live(
    "with TLS: pods with certificates of the cluster's CA talk; a certificate it did not sign, or plain TCP, is refused",
    () =>
      Effect.gen(function* () {
        const tls = (name: string) => ({
          keyFile: join(TLS, `${name}.key`),
          certFile: join(TLS, `${name}.crt`),
          caFile: join(TLS, "ca.crt")
        })
        const listenWith = (podId: string, name: string) =>
          echoPod(podId, undefined, undefined, { tls: tls(name) })
        const a = yield* listenWith("a", "pod")
        const b = yield* listenWith("b", "pod")
        expect(yield* a.network.push(b.network.address, push("over-tls"), 5_000)).toEqual({
          _tag: "Reply",
          reply: JSON.stringify("over-tls")
        })
        const rogue = yield* listenWith("rogue", "rogue")
        expect(
          Exit.isFailure(yield* Effect.exit(rogue.network.push(b.network.address, push("rogue"), 3_000)))
        ).toBe(true)
        const plain = yield* echoPod("plain")
        expect(
          Exit.isFailure(yield* Effect.exit(plain.network.push(b.network.address, push("plain"), 3_000)))
        ).toBe(true)
        expect(b.handled).toEqual(["over-tls"])
      }).pipe(Effect.scoped)
  )

  it.effect("refuses to listen beyond loopback without a secret or TLS", () =>
    Effect.gen(function* () {
      const exit = yield* Effect.exit(Effect.scoped(NodePodNetwork.listen("p", { host: "0.0.0.0" })))
      expect(JSON.stringify(exit)).toContain("NetworkConfigError")
    })
  )
})
