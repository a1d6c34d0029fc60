/**
 * A small disk for tests and the verification runner: a directory on a size-limited `tmpfs`, and
 * a ballast file to fill it up (every write then fails with ENOSPC) and to free it again.
 *
 * How the processes share it: the tmpfs is mounted in a **mount namespace of its own**, never in
 * the machine's, so nobody else sees it and the kernel frees it when the last process of the
 * namespace exits, however the run ends (a crash or a SIGKILL leaves no mount behind). The process
 * that mounts it must therefore run in such a namespace, and every process that touches the files
 * must be in it too: its children are (they inherit it). Two ways in:
 * - a test spawns the process that owns the scenario under `unshare(...)` (a command prefix:
 *   `unshare --fork --kill-child --mount --propagation private`, plus `--map-root-user` when not
 *   root); if that `unshare` is killed, its child is too;
 * - a program (the runner) calls `reexecInNamespace()` first: unless it already runs in a namespace
 *   of its own, it runs itself again under that prefix and exits with the copy's exit code.
 *
 * Paths through `/proc/<pid>/root` of another namespace do not work for SQLite: it resolves the
 * symbolic link and opens the path in the caller's own namespace, i.e. on the real disk. Hence a
 * shared namespace rather than a namespace holder that others reach through `/proc`.
 *
 * `mount` refuses to run outside such a namespace (the mount would be the whole machine's), and
 * fails loudly (it never skips) when the namespace or the mount cannot be had.
 *
 * @example
 * ```ts
 * await SmallDisk.reexecInNamespace() // in a program; a test spawns it under SmallDisk.unshare()
 * const disk = SmallDisk.mount({ sizeBytes: 8 * 1024 * 1024 })
 * disk.fill() // every write on disk.path now fails with ENOSPC
 * disk.free()
 * disk.unmount()
 * ```
 */
import { execFileSync, spawn } from "node:child_process"
import { closeSync, mkdtempSync, openSync, readlinkSync, rmSync, statfsSync, writeSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

/** The environment variable naming the mount namespace the process was started from. */
const OUTER_NAMESPACE = "EFFECT_CLUSTER_OUTER_MOUNT_NS"

/** `tmpfs`'s magic number in `statfs`. */
const TMPFS_MAGIC = 0x01021994

/** A mounted small disk. */
export interface SmallDisk {
  /** The directory on the small file system (in this process's mount namespace). */
  readonly path: string
  /** Its size in bytes. */
  readonly sizeBytes: number
  /** Writes a ballast file until the file system is full (ENOSPC); returns the bytes it wrote. */
  readonly fill: () => number
  /** Deletes the ballast: the space it held is free again. */
  readonly free: () => void
  /** The bytes free now. */
  readonly available: () => number
  /** Unmounts the file system (lazily, if files are still open) and removes the directory. */
  readonly unmount: () => void
}

/** This process's mount namespace, e.g. `mnt:[4026531841]`. */
const namespaceOf = (pid: number | "self"): string => readlinkSync(`/proc/${pid}/ns/mnt`)

/**
 * The command prefix that runs a program in a new mount namespace, and the environment it needs:
 * `[...command, node, ...args]`. The forked child is killed when `unshare` dies.
 */
export const unshare = (): {
  readonly command: ReadonlyArray<string>
  readonly env: Record<string, string>
} => ({
  command: [
    "unshare",
    "--fork",
    "--kill-child",
    "--mount",
    "--propagation",
    "private",
    ...(process.getuid?.() === 0 ? [] : ["--map-root-user"])
  ],
  env: { [OUTER_NAMESPACE]: namespaceOf("self") }
})

/** Whether this process runs in a mount namespace other than the one it was started from. */
export const inOwnNamespace = (): boolean => {
  const outer = process.env[OUTER_NAMESPACE]
  return outer !== undefined && outer !== namespaceOf("self")
}

/**
 * Unless this process already runs in a mount namespace of its own, runs it again (same Node,
 * flags and arguments, inherited stdio) under `unshare()`, forwards SIGINT and SIGTERM to it, and
 * exits with its exit code: the returned promise resolves only in the copy.
 */
export const reexecInNamespace = (): Promise<void> => {
  if (inOwnNamespace()) return Promise.resolve()
  const { command, env } = unshare()
  const child = spawn(
    command[0]!,
    [...command.slice(1), process.execPath, ...process.execArgv, ...process.argv.slice(1)],
    { stdio: "inherit", env: { ...process.env, ...env } }
  )
  for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => child.kill(signal))
  child.once("error", (error) => {
    console.error(`cannot run ${command[0]}: ${error.message} (a small disk needs a mount namespace)`)
    process.exit(1)
  })
  child.once("exit", (code, signal) => process.exit(code ?? (signal === null ? 1 : 128)))
  return new Promise(() => {}) // this process only waits for the copy now
}

/**
 * Mounts a `tmpfs` of `sizeBytes` on a new directory (in `parent`, default the OS temporary
 * folder). Throws unless this process runs in a mount namespace of its own, or if `mount` fails.
 */
export const mount = (options: { readonly sizeBytes: number; readonly parent?: string }): SmallDisk => {
  if (!inOwnNamespace()) {
    throw new Error(
      "SmallDisk.mount: this process does not run in a mount namespace of its own, so the tmpfs " +
        "would be mounted for the whole machine; start it under SmallDisk.unshare() or call " +
        "SmallDisk.reexecInNamespace() first"
    )
  }
  const path = mkdtempSync(join(options.parent ?? tmpdir(), "effect-cluster-small-disk-"))
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=${options.sizeBytes},mode=0700`, "tmpfs", path], {
      stdio: ["ignore", "ignore", "pipe"]
    })
  } catch (error) {
    rmSync(path, { recursive: true, force: true })
    const stderr = (error as { stderr?: Buffer }).stderr?.toString().trim()
    throw new Error(`SmallDisk.mount: mount -t tmpfs failed on ${path}: ${stderr || String(error)}`)
  }
  const stats = statfsSync(path)
  if (stats.type !== TMPFS_MAGIC || stats.blocks * stats.bsize > options.sizeBytes + stats.bsize) {
    throw new Error(
      `SmallDisk.mount: ${path} is not the small tmpfs just mounted (statfs: ${JSON.stringify(stats)})`
    )
  }
  const ballast = join(path, "ballast")

  const fill = () => {
    const fd = openSync(ballast, "a")
    let written = 0
    try {
      // Big chunks first, then ever smaller ones, down to a byte: no block is left free.
      for (let chunk = 1024 * 1024; chunk >= 1; chunk = Math.floor(chunk / 16)) {
        const buffer = Buffer.alloc(chunk, 0x5a)
        while (true) {
          try {
            written += writeSync(fd, buffer)
          } catch (error) {
            if ((error as NodeJS.ErrnoException).code === "ENOSPC") break
            throw error
          }
        }
      }
    } finally {
      closeSync(fd)
    }
    return written
  }

  return {
    path,
    sizeBytes: options.sizeBytes,
    fill,
    free: () => rmSync(ballast, { force: true }),
    available: () => {
      const now = statfsSync(path)
      return now.bavail * now.bsize
    },
    unmount: () => {
      execFileSync("umount", ["--lazy", path], { stdio: "ignore" })
      rmSync(path, { recursive: true, force: true })
    }
  }
}
