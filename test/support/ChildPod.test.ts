/**
 * The multi-process test helper, with a tiny child (`childPod/child.ts`) that prints JSON lines,
 * answers commands on stdin and handles SIGTERM.
 */
import { setTimeout as sleep } from "node:timers/promises"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { vi } from "vitest"
import * as ChildPod from "./ChildPod.ts"

const CHILD = "test/support/childPod/child.ts"

/** Whether a process with this pid exists (a signal 0 probe). */
const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

const Tick = Schema.Struct({ type: Schema.Literal("tick"), n: Schema.Number })

let leftover = -1

describe("ChildPod", () => {
  it("runs a TypeScript entry on Node 22 with the source condition; args, env, JSON lines, stderr", async () => {
    const pod = ChildPod.spawn(CHILD, { args: ["x y", "cluster"], env: { CHILD_POD_GREETING: "hi" } })
    const ready = await pod.waitFor((m) => m.type === "ready", 30_000)
    expect(ready).toMatchObject({ type: "ready", args: ["x y", "cluster"], greeting: "hi", shard: 277 })
    expect(Number(ready.node.split(".")[0])).toBeGreaterThanOrEqual(22)
    expect(ready.cluster).toContain("WorkflowEngine") // "effect-cluster" resolved to src/
    expect(pod.messages[0]).toEqual(ready) // the log line before it is not a message…
    expect(pod.stdout()).toContain("a log line, not JSON") // …but is kept
    // stderr is another pipe: it may arrive after the stdout line that follows it.
    await vi.waitFor(() => expect(pod.stderr()).toContain("child stderr: starting"))
  })

  it("waitFor reads the stream in order; skipReceived skips what came; send writes to stdin", async () => {
    const pod = ChildPod.spawn(CHILD)
    const third = await pod.waitFor((m) => m.type === "tick" && m.n >= 3)
    const next = await pod.waitFor((m) => m.type === "tick")
    expect(next.n).toBe(third.n + 1)
    await sleep(100)
    pod.skipReceived()
    const latest = pod.messages.length
    const after = await pod.waitFor((m) => m.type === "tick")
    expect(pod.messages.indexOf(after)).toBeGreaterThanOrEqual(latest)
    pod.send({ type: "echo", value: { deep: [1, "two"] } })
    expect(await pod.waitFor((m) => m.type === "echoed")).toEqual({
      type: "echoed",
      value: { deep: [1, "two"] }
    })
  })

  it("SIGSTOP freezes the child, SIGCONT thaws it, SIGTERM lets it stop gracefully", async () => {
    const pod = ChildPod.spawn(CHILD)
    await pod.waitFor((m) => m.type === "tick")
    expect(pod.kill("SIGSTOP")).toBe(true)
    await sleep(50) // lines already in the pipe
    const frozenAt = pod.messages.length
    await sleep(300)
    expect(pod.messages.length).toBe(frozenAt)
    pod.kill("SIGCONT")
    pod.skipReceived()
    await pod.waitFor((m) => m.type === "tick")
    pod.kill("SIGTERM")
    await pod.waitFor((m) => m.type === "sigterm")
    expect(await pod.exited).toEqual({ code: 0, signal: null })
    expect(pod.kill("SIGKILL")).toBe(false)
  })

  it("SIGKILL: exited reports the signal", async () => {
    const pod = ChildPod.spawn(CHILD)
    await pod.waitFor((m) => m.type === "ready")
    pod.kill("SIGKILL")
    expect(await pod.exited).toEqual({ code: null, signal: "SIGKILL" })
    expect(alive(pod.pid)).toBe(false)
  })

  it("waitFor fails with the child's output: on timeout, and at once when the child exits", async () => {
    const pod = ChildPod.spawn(CHILD)
    await pod.waitFor((m) => m.type === "ready")
    await expect(pod.waitFor((m) => m.type === "never", 200)).rejects.toThrow(
      /no matching message from the child in 200 ms[\s\S]*still running[\s\S]*"tick"[\s\S]*child stderr: starting/
    )
    const waiting = pod.waitFor((m) => m.type === "never", 60_000)
    const started = Date.now()
    pod.send({ type: "exit", code: 3 })
    await expect(waiting).rejects.toThrow(
      /exited before a matching message[\s\S]*code 3[\s\S]*exiting with 3/
    )
    expect(Date.now() - started).toBeLessThan(10_000)
    // What came before the exit can still be read, in order (after "ready", the first waitFor).
    await expect(pod.waitFor(() => true)).resolves.toEqual({ type: "tick", n: 1 })
  })

  it("decode: lines that do not pass it are not messages, and are shown in failures", async () => {
    const pod = ChildPod.spawn(CHILD, { decode: Schema.decodeUnknownSync(Tick) })
    const tick = await pod.waitFor((m) => m.n >= 2)
    expect(tick.type).toBe("tick")
    expect(pod.messages.every((m) => m.type === "tick")).toBe(true)
    await expect(pod.waitFor(() => false, 100)).rejects.toThrow(/lines rejected by decode: \{"type":"ready"/)
  })

  it("a child left running is SIGKILLed when its test ends (even SIGSTOPped)…", async () => {
    const pod = ChildPod.spawn(CHILD)
    await pod.waitFor((m) => m.type === "ready")
    pod.kill("SIGSTOP")
    leftover = pod.pid
  })

  it("…and is gone by the next test", () => {
    expect(leftover).toBeGreaterThan(0)
    expect(alive(leftover)).toBe(false)
  })

  it.live("scoped: the child is SIGKILLed when the scope closes", () =>
    Effect.gen(function* () {
      const pod = yield* Effect.gen(function* () {
        const pod = yield* ChildPod.scoped(CHILD)
        yield* Effect.promise(() => pod.waitFor((m) => m.type === "ready"))
        return pod
      }).pipe(Effect.scoped)
      expect(yield* Effect.promise(() => pod.exited)).toEqual({ code: null, signal: "SIGKILL" })
    })
  )
})
