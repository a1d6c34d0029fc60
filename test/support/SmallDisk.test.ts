/**
 * The small disk: mounted in a mount namespace of the child's own (the test process does not see
 * it), filled until every write fails with ENOSPC, freed; reached by spawning under `unshare()` or
 * by `reexecInNamespace()`; refused outside such a namespace; a killed `unshare` takes its child
 * (and so the namespace) with it. Needs root or user namespaces: without them it fails, it does
 * not skip.
 */
import { existsSync, readdirSync, rmdirSync, statfsSync } from "node:fs"
import { describe, expect, it } from "vitest"
import * as ChildPod from "./ChildPod.ts"
import * as SmallDisk from "./SmallDisk.ts"

const PROBE = "test/support/smallDisk/probe.ts"
const TMPFS_MAGIC = 0x01021994

interface ProbeMessage {
  readonly mounted?: string
  readonly pid?: number
  readonly filled?: number
  readonly freed?: boolean
  readonly unmounted?: boolean
  readonly available?: number
  readonly write?: string
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** Runs the probe through its steps and checks what it saw. */
const probe = async (pod: ChildPod.ChildPod<ProbeMessage>) => {
  const { mounted } = await pod.waitFor((m) => m.mounted !== undefined, 30_000)
  const filled = await pod.waitFor((m) => m.filled !== undefined)
  expect(filled.filled).toBeGreaterThan(900 * 1024)
  expect(filled.available).toBe(0)
  expect(filled.write).toBe("ENOSPC")
  const freed = await pod.waitFor((m) => m.freed === true)
  expect(freed.write).toBe("ok")
  expect(freed.available).toBeGreaterThan(900 * 1024)
  // Outside the child's namespace the directory is a plain one of the real disk.
  expect(statfsSync(mounted!).type).not.toBe(TMPFS_MAGIC)
  expect(existsSync(`${mounted}/probe`)).toBe(false)
  pod.send("unmount")
  await pod.waitFor((m) => m.unmounted === true)
  expect((await pod.exited).code).toBe(0)
  expect(existsSync(mounted!)).toBe(false)
}

describe("SmallDisk", () => {
  it("a child spawned under unshare() mounts, fills (ENOSPC), frees and unmounts a disk nobody else sees", async () => {
    const { command, env } = SmallDisk.unshare()
    await probe(ChildPod.spawn<ProbeMessage>(PROBE, { command, env }))
  })

  it("reexecInNamespace: a program runs itself again in a namespace of its own", async () => {
    await probe(ChildPod.spawn<ProbeMessage>(PROBE, { args: ["reexec"] }))
  })

  it("mount refuses a process that shares the machine's mount namespace", () => {
    expect(() => SmallDisk.mount({ sizeBytes: 1024 * 1024 })).toThrow(/mount namespace of its own/)
  })

  it("a killed unshare takes its child, and the namespace, with it", async () => {
    const { command, env } = SmallDisk.unshare()
    const pod = ChildPod.spawn<ProbeMessage>(PROBE, { command, env })
    const { pid, mounted } = await pod.waitFor((m) => m.mounted !== undefined, 30_000)
    expect(alive(pid!)).toBe(true)
    pod.kill("SIGKILL")
    await pod.exited
    const deadline = Date.now() + 5_000
    while (alive(pid!) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
    expect(alive(pid!)).toBe(false)
    // What is left is the empty mount point on the real disk (the tmpfs went with the namespace).
    expect(readdirSync(mounted!)).toEqual([])
    rmdirSync(mounted!)
  })
})
