import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Admin } from "../../src/index.ts"
import { testTempDir } from "../support/tempDir.ts"
import { adminLayer, JOBS, makeStore, SCRIPT_ID, SHARDS } from "./fixture.ts"
import { call, csrfOf, type Running, startDashboard } from "./support.ts"

const statusOf = (file: string, executionId: string) =>
  Effect.runPromise(
    Effect.flatMap(Admin.Admin, (admin) => admin.timeline(executionId)).pipe(
      Effect.map((timeline) => timeline.execution.status),
      Effect.provide(adminLayer(file))
    )
  )

describe("Dashboard over HTTP", () => {
  let file: string
  let dashboard: Running
  let csrf: string
  const folder = mkdtempSync(join(tmpdir(), "dashboard-http-"))
  beforeAll(async () => {
    const store = await makeStore(folder)
    // No pod runs while these tests steer: what they change stays as they left it.
    await store.pod.stop()
    file = store.file
    dashboard = await startDashboard(file)
    csrf = csrfOf((await call(dashboard.port, "/")).text)
  }, 60_000)
  afterAll(async () => {
    await dashboard?.stop()
    rmSync(folder, { recursive: true, force: true })
  })

  it("serves every page as the same shell, with the CSRF token and strict security headers", async () => {
    for (const path of ["/", "/execution?id=job-ok-1", "/cluster", "/entities", "/dead-letters"]) {
      const reply = await call(dashboard.port, path)
      expect(reply.status).toBe(200)
      expect(reply.headers["content-type"]).toMatch(/^text\/html/)
      expect(reply.headers["content-security-policy"]).toContain("script-src 'self'")
      expect(reply.headers["x-frame-options"]).toBe("DENY")
      expect(csrfOf(reply.text)).toBe(csrf)
    }
    const script = await call(dashboard.port, "/static/app.js")
    expect(script.status).toBe(200)
    expect(script.headers["content-type"]).toMatch(/^text\/javascript/)
    expect((await call(dashboard.port, "/static/../Dashboard.ts")).status).toBe(404)
    expect((await call(dashboard.port, "/nope")).json.error._tag).toBe("RouteNotFoundError")
  })

  it("lists executions newest first with counts by status, filters, and pages with the cursor", async () => {
    const all = await call(dashboard.port, "/api/executions")
    expect(all.status).toBe(200)
    expect(all.json.counts.total).toBe(JOBS.length)
    expect(all.json.counts.byStatus).toMatchObject({ succeeded: 2, failed: 1, suspended: 1, sleeping: 2 })
    expect(all.json.executions.map((e: any) => e.executionId)).toEqual(
      JOBS.map((j) => `job-${j.id}`).reverse()
    )

    const failed = await call(dashboard.port, "/api/executions?status=failed")
    expect(failed.json.executions.map((e: any) => e.executionId)).toEqual(["job-fail-1"])

    const first = await call(dashboard.port, "/api/executions?limit=4")
    expect(first.json.executions).toHaveLength(4)
    expect(typeof first.json.next).toBe("string")
    const second = await call(
      dashboard.port,
      `/api/executions?limit=4&cursor=${encodeURIComponent(first.json.next)}`
    )
    expect(second.json.executions.map((e: any) => e.executionId)).toEqual(["job-fail-1", "job-ok-1"])
    expect(second.json.next).toBeNull()

    const future = await call(dashboard.port, "/api/executions?since=2999-01-01")
    expect(future.json.executions).toEqual([])
    expect(future.json.counts.total).toBe(0)
  })

  it("shows one execution: its attempts (a retry), its error with the cause, and its journal", async () => {
    const ok = await call(dashboard.port, "/api/execution?id=job-ok-1")
    const flaky = ok.json.steps.find((s: any) => s.activityId === "flaky")
    expect(flaky.attempts.map((a: any) => a.outcome)).toEqual(["retried", "succeeded"])
    expect(ok.json.journal.execution.executionId).toBe("job-ok-1")
    const failed = await call(dashboard.port, "/api/execution?id=job-fail-1")
    expect(failed.json.execution.error.summary).toContain("card declined")
    expect(failed.json.execution.error.cause).toBeDefined()
  })

  it("answers bad input with 400 and a JSON error that says what was wrong", async () => {
    const cases: Array<[string, RegExp]> = [
      ["/api/executions?limit=abc", /limit/],
      ["/api/executions?limit=0", /limit/],
      ["/api/executions?status=bogus", /status/],
      ["/api/executions?since=yesterday", /since/],
      ["/api/executions?cursor=not-a-cursor", /cursor/],
      ["/api/executions?status=failed&status=running", /status.*twice/],
      ["/api/execution", /id/],
      ["/api/entity?type=Account", /id/]
    ]
    for (const [path, message] of cases) {
      const reply = await call(dashboard.port, path)
      expect(reply.status, path).toBe(400)
      expect(reply.json.error.message, path).toMatch(message)
    }
    const unknown = await call(dashboard.port, "/api/execution?id=job-nope")
    expect(unknown.status).toBe(404)
    expect(unknown.json.error._tag).toBe("ExecutionNotFoundError")

    const post = (body: string) =>
      call(dashboard.port, "/api/execution/resume", {
        method: "POST",
        headers: { "content-type": "application/json", "x-csrf-token": csrf },
        body
      })
    expect((await post("not json")).json.error.message).toMatch(/body/)
    expect((await post("not json")).status).toBe(400)
    expect((await post(JSON.stringify({ id: 42 }))).status).toBe(400)
    const signal = await call(dashboard.port, "/api/execution/signal", {
      method: "POST",
      headers: { "content-type": "application/json", "x-csrf-token": csrf },
      body: JSON.stringify({ id: "job-wait-1", name: "approval", payload: "{not json" })
    })
    expect(signal.status).toBe(400)
    expect(signal.json.error._tag).toBe("InvalidSignalPayloadError")
  })

  it("refuses a state change without the CSRF token, with a wrong one, or from another origin: 403, nothing changes", async () => {
    const body = JSON.stringify({ id: "job-suspend-1" })
    const attempts: Array<Record<string, string>> = [
      { "content-type": "application/json" },
      { "content-type": "application/json", "x-csrf-token": "0".repeat(64) },
      { "content-type": "application/json", "x-csrf-token": csrf, origin: "http://evil.example" }
    ]
    for (const headers of attempts) {
      const reply = await call(dashboard.port, "/api/execution/resume", { method: "POST", headers, body })
      expect(reply.status).toBe(403)
      expect(reply.json.error._tag).toBe("CsrfTokenError")
      expect(await statusOf(file, "job-suspend-1")).toBe("suspended")
    }
    // A GET never changes anything: the route does not exist for GET.
    expect((await call(dashboard.port, "/api/execution/resume?id=job-suspend-1")).status).toBe(404)
    expect(await statusOf(file, "job-suspend-1")).toBe("suspended")
  })

  it("changes state with the token: a signal is stored, an interrupt is requested", async () => {
    const headers = {
      "content-type": "application/json",
      "x-csrf-token": csrf,
      origin: dashboard.url.slice(0, -1)
    }
    const signal = await call(dashboard.port, "/api/execution/signal", {
      method: "POST",
      headers,
      body: JSON.stringify({ id: "job-wait-1", name: "approval", payload: JSON.stringify("ops") })
    })
    expect(signal.status).toBe(200)
    expect(signal.json._tag).toBe("Completed")
    const interrupt = await call(dashboard.port, "/api/execution/interrupt", {
      method: "POST",
      headers,
      body: JSON.stringify({ id: "job-sleep-1" })
    })
    expect(interrupt.status).toBe(200)
    expect(interrupt.json._tag).toBe("InterruptRequested")
    const after = await call(dashboard.port, "/api/execution?id=job-sleep-1")
    expect(after.json.execution.interruptRequested).toBe(true)
  })

  it("shows the pods and shards, an entity's state and pending messages, and the dead letters; replays one", async () => {
    const cluster = await call(dashboard.port, "/api/cluster")
    expect(cluster.json.clustered).toBe(true)
    // The pod stopped gracefully: it left, and handed its shards back (the browser test sees it live).
    expect(cluster.json.pods.filter((p: any) => p.liveness === "live")).toEqual([])
    expect(cluster.json.shards).toHaveLength(SHARDS)
    expect(cluster.json.shards.every((s: any) => s.epoch >= 1)).toBe(true)

    const alice = await call(dashboard.port, "/api/entity?type=Account&id=alice")
    expect(alice.json.state).toBe(15)
    const inbox = await call(dashboard.port, "/api/entity?type=Mailbox&id=inbox-1")
    expect(inbox.json.pending.map((m: any) => m.messageId)).toEqual(["m-1", `m-${SCRIPT_ID}`])

    const dead = await call(dashboard.port, "/api/dead-letters")
    expect(dead.json.deadLetters.map((d: any) => d.messageId)).toEqual(["d-bad"])
    const key = dead.json.deadLetters[0].key
    const refused = await call(dashboard.port, "/api/dead-letters/replay", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ key })
    })
    expect(refused.status).toBe(403)
    expect((await call(dashboard.port, "/api/dead-letters")).json.deadLetters).toHaveLength(1)
    const replayed = await call(dashboard.port, "/api/dead-letters/replay", {
      method: "POST",
      headers: { "content-type": "application/json", "x-csrf-token": csrf },
      body: JSON.stringify({ key })
    })
    expect(replayed.status).toBe(200)
    expect((await call(dashboard.port, "/api/dead-letters")).json.deadLetters).toHaveLength(0)
    const missing = await call(dashboard.port, "/api/dead-letters/replay", {
      method: "POST",
      headers: { "content-type": "application/json", "x-csrf-token": csrf },
      body: JSON.stringify({ key })
    })
    expect(missing.status).toBe(404)
  })

  it("answers only to an IP address or localhost in the Host header (DNS rebinding)", async () => {
    const evil = await call(dashboard.port, "/api/executions", {
      headers: { host: `evil.example:${dashboard.port}` }
    })
    expect(evil.status).toBe(403)
    expect(evil.json.error._tag).toBe("HostNotAllowedError")
    expect(evil.text).not.toContain("job-")
    const local = await call(dashboard.port, "/api/executions", {
      headers: { host: `localhost:${dashboard.port}` }
    })
    expect(local.status).toBe(200)
  })

  it("never puts data in the HTML: an id with markup comes back only as JSON text", async () => {
    const path = `/execution?id=${encodeURIComponent(`job-${SCRIPT_ID}`)}`
    const page = await call(dashboard.port, path)
    expect(page.status).toBe(200)
    expect(page.text).not.toContain("__pwned")
    const api = await call(dashboard.port, `/api/execution?id=${encodeURIComponent(`job-${SCRIPT_ID}`)}`)
    expect(api.headers["content-type"]).toMatch(/^application\/json/)
    expect(api.json.execution.executionId).toBe(`job-${SCRIPT_ID}`)
    expect(api.json.execution.request.note).toBe(`note of ${SCRIPT_ID}`)
  })
})

describe("Dashboard with an access token", () => {
  it("needs the token on every request: ?token= once sets a cookie, or a Bearer header", async () => {
    const { file, pod } = await makeStore(testTempDir("dashboard-token-"))
    await pod.stop()
    const dashboard = await startDashboard(file, { token: "s3cret-token" })
    try {
      const none = await call(dashboard.port, "/")
      expect(none.status).toBe(401)
      expect(none.json.error.message).toMatch(/token/)
      expect((await call(dashboard.port, "/api/executions")).status).toBe(401)
      expect((await call(dashboard.port, "/?token=wrong")).status).toBe(401)
      expect(
        (await call(dashboard.port, "/", { headers: { cookie: "effect_cluster_dashboard_token=wrong" } }))
          .status
      ).toBe(401)

      const login = await call(dashboard.port, "/cluster?token=s3cret-token&x=1")
      expect(login.status).toBe(303)
      expect(login.headers.location).toBe("/cluster?x=1")
      const cookie = String(login.headers["set-cookie"]).split(";")[0]!
      expect(String(login.headers["set-cookie"])).toMatch(/HttpOnly/i)
      expect(String(login.headers["set-cookie"])).toMatch(/SameSite=Strict/i)
      expect((await call(dashboard.port, "/cluster", { headers: { cookie } })).status).toBe(200)
      // The redirect stays on the dashboard, whatever the request's path looks like.
      for (const path of ["//evil.example/?token=s3cret-token", "/\\evil.example/?token=s3cret-token"]) {
        const sneaky = await call(dashboard.port, path)
        expect(sneaky.status).toBe(303)
        expect(sneaky.headers.location).toMatch(/^\/(?![/\\])/)
      }
      const bearer = await call(dashboard.port, "/api/executions", {
        headers: { authorization: "Bearer s3cret-token" }
      })
      expect(bearer.status).toBe(200)
      expect(bearer.json.counts.total).toBe(JOBS.length)
    } finally {
      await dashboard.stop()
    }
  })
})
