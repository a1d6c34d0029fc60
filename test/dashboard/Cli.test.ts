/**
 * `effect-cluster dashboard` as a user runs it: the real command (bin/effect-cluster.js) in a
 * child process on a real store. It prints the URL it serves; a page and an API route answer there;
 * Ctrl-C stops it. Bad flags and a taken port: one line on stderr, a non-zero exit.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { createServer } from "node:net"
import { resolve } from "node:path"
import { describe, expect, it } from "vitest"
import { testTempDir } from "../support/tempDir.ts"
import { JOBS, makeStore } from "./fixture.ts"

const BIN = resolve("bin", "effect-cluster.js")

interface Run {
  readonly child: ChildProcess
  readonly stdout: () => string
  readonly stderr: () => string
  readonly exit: Promise<number | null>
}

const run = (args: ReadonlyArray<string>, env: Record<string, string> = {}): Run => {
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env } })
  let stdout = ""
  let stderr = ""
  child.stdout.on("data", (chunk) => {
    stdout += chunk
  })
  child.stderr.on("data", (chunk) => {
    stderr += chunk
  })
  const exit = new Promise<number | null>((done) => child.on("exit", (code) => done(code)))
  return { child, stdout: () => stdout, stderr: () => stderr, exit }
}

const urlOf = async (server: Run): Promise<string> => {
  for (let i = 0; i < 600; i++) {
    const match = /effect-cluster dashboard: (http:\/\/\S+)/.exec(server.stdout())
    if (match !== null) return match[1]!
    await new Promise((done) => setTimeout(done, 50))
  }
  throw new Error(`the dashboard printed no URL; stderr: ${server.stderr()}`)
}

describe("effect-cluster dashboard", () => {
  it("serves the store on 127.0.0.1 and prints its URL (with the token once); Ctrl-C stops it", async () => {
    const { file, pod } = await makeStore(testTempDir("dashboard-cli-"))
    await pod.stop()
    const server = run(["dashboard", "--file", file, "--port", "0"], {
      EFFECT_CLUSTER_DASHBOARD_TOKEN: "tok-1"
    })
    try {
      const url = await urlOf(server)
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/\?token=tok-1$/)
      const base = url.replace(/\?token=.*$/, "")
      expect((await fetch(base)).status).toBe(401)
      const login = await fetch(url, { redirect: "manual" })
      expect(login.status).toBe(303)
      const cookie = (login.headers.get("set-cookie") ?? "").split(";")[0]!
      const page = await fetch(base, { headers: { cookie } })
      expect(page.status).toBe(200)
      expect(await page.text()).toContain('<meta name="csrf-token"')
      const api = await fetch(`${base}api/executions`, { headers: { authorization: "Bearer tok-1" } })
      expect(((await api.json()) as any).counts.total).toBe(JOBS.length)
    } finally {
      server.child.kill("SIGINT")
    }
    expect(await server.exit).not.toBe(0)
    expect(server.stderr()).not.toMatch(/\n\s+at /)
  })

  it("says in one line what is wrong with a bad port, a taken port or a missing store", async () => {
    const { file, pod } = await makeStore(testTempDir("dashboard-cli-bad-"))
    await pod.stop()
    const bad = run(["dashboard", "--file", file, "--port", "70000"])
    expect(await bad.exit).toBe(1)
    expect(bad.stderr().trim()).toBe(
      'effect-cluster: invalid --port "70000": expected an integer from 0 to 65535'
    )

    const taken = createServer()
    await new Promise<void>((done) => taken.listen(0, "127.0.0.1", done))
    const port = (taken.address() as { port: number }).port
    try {
      const busy = run(["dashboard", "--file", file, "--port", String(port)])
      expect(await busy.exit).toBe(1)
      expect(busy.stderr().trim().split("\n")).toHaveLength(1)
      expect(busy.stderr()).toContain(`cannot listen on 127.0.0.1:${port}`)
    } finally {
      taken.close()
    }

    const missing = run(["dashboard", "--file", `${file}.nope`, "--port", "0"])
    expect(await missing.exit).toBe(1)
    expect(missing.stderr().trim().split("\n")).toHaveLength(1)
  })
})
