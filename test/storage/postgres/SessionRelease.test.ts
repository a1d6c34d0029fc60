/**
 * A pod's PostgreSQL session (its liveness marker, see `PodSession`) is released when the pod
 * stops. Over a connection that hangs (the path to the server stopped forwarding), releasing it
 * must not keep the pod from stopping: the server drops the lock with the session anyway.
 */
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Exit, Layer, Scope } from "effect"
import { inject } from "vitest"
import { ShardStore } from "../../../src/index.ts"
import { PostgresJournal } from "../../../src/postgres.ts"
import * as TcpProxy from "../../support/TcpProxy.ts"

describe("a pod's PostgreSQL session", () => {
  it.live("is released without waiting for good when the connection that holds it hangs", () =>
    Effect.gen(function* () {
      const target = new URL(inject("postgresUrl"))
      const proxy = yield* TcpProxy.scoped({ targetHost: target.hostname, targetPort: Number(target.port) })
      const via = new URL(target)
      via.host = `127.0.0.1:${proxy.port}`
      const tablePrefix = `release_${Math.random().toString(36).slice(2, 8)}_`
      const context = yield* Layer.build(
        PostgresJournal.layer({ url: via.toString(), tablePrefix, connectTimeout: "2 seconds" })
      )
      const store = Context.get(context, ShardStore.ShardStore)
      yield* store.init(8)
      const registration = yield* Scope.make()
      yield* store.register("held", 60_000).pipe(Scope.provide(registration))
      expect((yield* store.pods).map((pod) => `${pod.podId}:${pod.liveness}`)).toEqual(["held:live"])
      // The path hangs: nothing reaches the server, no error comes back.
      proxy.pause()
      // Without a bound, the release waits on the hung connection for good (the test times out).
      yield* Scope.close(registration, Exit.void)
      proxy.resume()
    }).pipe(Effect.scoped)
  )
})
