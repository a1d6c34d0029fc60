/**
 * A child for `SmallDisk.test.ts`: mounts a 1 MiB small disk, fills it, writes, frees it, writes
 * again, reporting each step as a JSON line; unmounts and exits on `"unmount"` from stdin. With
 * `reexec` as its argument it first runs itself again in a mount namespace of its own.
 */
import { writeFileSync } from "node:fs"
import { createInterface } from "node:readline"
import * as SmallDisk from "../SmallDisk.ts"

const say = (message: unknown) => console.log(JSON.stringify(message))

/** The code of the error writing a small file on the disk throws, or "ok". */
const tryWrite = (path: string) => {
  try {
    writeFileSync(`${path}/probe`, "x".repeat(10_000))
    return "ok"
  } catch (error) {
    return (error as NodeJS.ErrnoException).code ?? String(error)
  }
}

if (process.argv[2] === "reexec") await SmallDisk.reexecInNamespace()
const disk = SmallDisk.mount({ sizeBytes: 1024 * 1024 })
say({ mounted: disk.path, pid: process.pid, available: disk.available() })
const filled = disk.fill()
say({ filled, available: disk.available(), write: tryWrite(disk.path) })
disk.free()
say({ freed: true, available: disk.available(), write: tryWrite(disk.path) })
createInterface({ input: process.stdin }).on("line", (line) => {
  if (JSON.parse(line) !== "unmount") return
  disk.unmount()
  say({ unmounted: true })
  process.exit(0)
})
