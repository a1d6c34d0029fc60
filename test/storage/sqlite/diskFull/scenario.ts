/**
 * The disk-full scenario of `DiskFull.test.ts`, run in a mount namespace of its own (the test
 * spawns it under `SmallDisk.unshare()`): pods (child processes, `test/cluster/pod.ts`) on a SQLite
 * file on a small disk, submitting and running executions; the disk filled (a ballast file) while
 * they run, for `fullMillis` after the first write failed for lack of space, then freed. It prints
 * JSON lines: `{"step": ...}` as it goes, then `{"report": ...}` with every stored execution, the
 * file's `PRAGMA integrity_check`, and what each pod printed (its warnings, whether it exited).
 * While the disk is full, one more pod starts: it must wait for room, not exit, and then join.
 * The ledger is a file outside the small disk (argument), for the test to check.
 *
 * Usage: node --conditions=@effect-cluster/source scenario.ts '<json options>'
 */
import { DatabaseSync } from "node:sqlite"
import { Schema } from "effect"
import { allFinal, type PodMessage, reader, type Store, startPod } from "../../../cluster/harness.ts"
import * as SmallDisk from "../../../support/SmallDisk.ts"

const Options = Schema.Struct({
  ledger: Schema.String,
  sizeBytes: Schema.Number,
  pods: Schema.Number,
  perPod: Schema.Number,
  leaseTtlMillis: Schema.Number,
  fullMillis: Schema.Number
})
const options = Schema.decodeUnknownSync(Schema.fromJsonString(Options))(process.argv[2])

const say = (message: unknown) => console.log(JSON.stringify(message))
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** A log line of a pod saying a write failed for lack of space. */
export const diskFull = (message: PodMessage) =>
  message.level !== undefined && /disk is full/.test(JSON.stringify(message.message ?? ""))

const disk = SmallDisk.mount({ sizeBytes: options.sizeBytes })
const store: Store = {
  kind: "sqlite",
  location: `${disk.path}/journal.db`,
  ledger: options.ledger,
  dir: disk.path
}
say({ step: "mounted", path: disk.path })

const pods = Array.from({ length: options.pods }, (_, i) =>
  startPod(store, {
    podId: `pod-${i}`,
    leaseTtlMillis: options.leaseTtlMillis,
    activityMillis: 20,
    submit: { prefix: `d${i}`, count: options.perPod, perSecond: 30 }
  })
)
for (const pod of pods) await pod.waitFor((m) => m.ready !== undefined, 30_000)
say({ step: "ready" })
// Some progress first: a third of every pod's executions acknowledged.
for (const pod of pods) await pod.waitFor((m) => (m.submitted ?? 0) >= options.perPod / 3, 60_000)

const filled = disk.fill()
const filledAt = Date.now()
say({ step: "filled", bytes: filled })
// Until a write failed for lack of space (the WAL may have room left for a while), then a while more.
const failed = await Promise.race(pods.map((pod) => pod.waitFor(diskFull, 60_000)))
say({ step: "a write failed", afterMillis: Date.now() - filledAt, message: failed.message })
// A pod that starts now cannot register (no room for its lock file, nor for a row): it waits
// for the store, and joins once there is room again.
const late = startPod(store, { podId: "late", leaseTtlMillis: options.leaseTtlMillis, activityMillis: 20 })
await late.waitFor(
  (m) => m.level === "WARN" && /trying again until the store answers/.test(JSON.stringify(m.message ?? "")),
  60_000
)
say({ step: "a pod started on the full disk waits" })
await sleep(options.fullMillis)
disk.free()
say({ step: "freed", fullForMillis: Date.now() - filledAt })
await late.waitFor((m) => m.ready !== undefined, 60_000)
say({ step: "the late pod joined" })

for (const pod of pods) await pod.waitFor((m) => m.submitted === options.perPod, 120_000)
say({ step: "every start acknowledged" })
const runtime = reader(store)
let executions: ReadonlyArray<unknown> = []
try {
  executions = await allFinal(runtime, options.pods * options.perPod, 120_000)
} catch (error) {
  say({ step: "not every execution ended", error: String(error) })
}
await runtime.dispose()

const db = new DatabaseSync(store.location)
const integrity = db.prepare("PRAGMA integrity_check").all()
db.close()
const all = [...pods, late]
for (const pod of all) pod.kill("SIGTERM")
const exits = await Promise.all(all.map((pod) => pod.exited))
say({
  report: {
    executions,
    integrity,
    pods: all.map((pod, i) => ({
      podId: pod === late ? "late" : `pod-${i}`,
      exit: exits[i],
      stopped: pod.messages.some((m) => m.stopped !== undefined),
      warnings: pod.messages.filter(
        (m) => m.level !== undefined && m.level !== "INFO" && m.level !== "DEBUG"
      ),
      stderr: pod.stderr()
    }))
  }
})
disk.unmount()
process.exit(0)
