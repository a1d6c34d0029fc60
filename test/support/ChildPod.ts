/**
 * Child processes for multi-process tests: a Node 22 child running a TypeScript entry of this
 * repository, talking JSON lines. The test waits for what the child reports (`waitFor`), sends it
 * commands (`send`, one JSON line on its stdin), and stops it the way the cluster will meet it in
 * production: `kill("SIGTERM")` (graceful), `"SIGKILL"` (crash), `"SIGSTOP"`/`"SIGCONT"` (a pod
 * that freezes, e.g. a long GC pause or a suspended VM, and comes back with a stale view).
 *
 * How the child runs, as in `test/workflow/Crash.test.ts`: the repository's own Node 22
 * (`node_modules/.bin/node`, the `node` dev dependency; the machine's may be older), which strips
 * TypeScript types natively, with `--conditions=@effect-cluster/source` so that
 * `import "effect-cluster"` resolves to `src/`. A child still running when the test ends (or when
 * the scope closes, with `scoped`) is SIGKILLed, and the cleanup waits for it to exit.
 *
 * @example
 * ```ts
 * const pod = ChildPod.spawn("test/sharding/pod/main.ts", { args: [dbFile], env: { POD_ID: "a" } })
 * await pod.waitFor((m) => m.type === "ready")
 * pod.kill("SIGKILL")
 * expect((await pod.exited).signal).toBe("SIGKILL")
 * ```
 */
import { type ChildProcessWithoutNullStreams, spawn as spawnProcess } from "node:child_process"
import { resolve } from "node:path"
import { Effect } from "effect"
import { onTestFinished } from "vitest"
import { nodeBinary, repoRoot } from "./repo.ts"

export { nodeBinary, repoRoot }

/** How to start a child. */
export interface SpawnOptions<M> {
  /** Arguments after the entry (`process.argv.slice(2)` in the child). */
  readonly args?: ReadonlyArray<string>
  /** Variables added to (or replacing) the test process's environment. */
  readonly env?: Readonly<Record<string, string>>
  /**
   * A command that runs Node for the child, e.g. `SmallDisk.unshare().command` (a new mount
   * namespace): `[...command, node, ...]`. Signals then go to that command's process.
   */
  readonly command?: ReadonlyArray<string>
  /**
   * Checks each parsed JSON line; throw to reject it (for example `Schema.decodeUnknownSync(S)`).
   * Rejected lines are not messages, but are shown in failure messages. Default: no check.
   */
  readonly decode?: (json: unknown) => M
}

/** How a child ended. */
export interface Exit {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
}

/** A running (or finished) child. */
export interface ChildPod<M> {
  readonly pid: number
  /** Every message so far: the stdout lines that parsed as JSON (and passed `decode`), in order. */
  readonly messages: ReadonlyArray<M>
  /**
   * The first message that satisfies `predicate`, looking only after the message that the previous
   * `waitFor` returned (so consecutive calls read the stream in order). Rejects after `timeoutMs`
   * (default 10 s), or as soon as the child exits, with its recent output and stderr.
   */
  readonly waitFor: (predicate: (message: M) => boolean, timeoutMs?: number) => Promise<M>
  /** Skips every message received so far: the next `waitFor` looks only at newer ones. */
  readonly skipReceived: () => void
  /** Writes `message` as one JSON line to the child's stdin. */
  readonly send: (message: unknown) => void
  /** Sends a signal (default SIGTERM); false if the child has already exited. */
  readonly kill: (signal?: NodeJS.Signals) => boolean
  /** Resolves when the child has exited and its output has been read to the end. */
  readonly exited: Promise<Exit>
  /** Everything the child wrote to stdout, raw. */
  readonly stdout: () => string
  /** Everything the child wrote to stderr. */
  readonly stderr: () => string
  /** SIGKILLs the child if it is still running and waits until it has exited. */
  readonly dispose: () => Promise<void>
}

/** The last `n` characters of `text`, for failure messages. */
const tail = (text: string, n = 2_000) => (text.length > n ? `…${text.slice(-n)}` : text)

/** Children not yet exited: killed if the test process exits first (a safety net). */
const running = new Set<ChildProcessWithoutNullStreams>()
process.once("exit", () => {
  for (const child of running) child.kill("SIGKILL")
})

/** Waiting `waitFor` calls. */
interface Waiter<M> {
  readonly predicate: (message: M) => boolean
  readonly resolve: (message: M) => void
  readonly reject: (error: Error) => void
}

/**
 * Starts `entry` (a path from the repository's root, or absolute) in a Node 22 child. Inside a
 * test, the child is SIGKILLed when the test ends; elsewhere, call `dispose` (or use `scoped`).
 */
export const spawn = <M = any>(entry: string, options: SpawnOptions<M> = {}): ChildPod<M> => {
  const entryPath = resolve(repoRoot, entry)
  const argv = [
    ...(options.command ?? []),
    nodeBinary,
    "--no-warnings",
    "--conditions=@effect-cluster/source",
    entryPath,
    ...(options.args ?? [])
  ]
  const child = spawnProcess(argv[0]!, argv.slice(1), {
    cwd: repoRoot,
    env: { ...process.env, ...options.env },
    stdio: ["pipe", "pipe", "pipe"]
  })
  running.add(child)
  const decode = options.decode ?? ((json: unknown) => json as M)
  const messages: Array<M> = []
  const rejected: Array<string> = []
  const waiters = new Set<Waiter<M>>()
  let stdout = ""
  let stderr = ""
  let cursor = 0
  let exit: Exit | undefined

  const describe = () =>
    [
      `child ${entry} (pid ${child.pid}) ${exit === undefined ? "still running" : `exited (code ${exit.code}, signal ${exit.signal})`}`,
      `stdout: ${tail(stdout) || "(nothing)"}`,
      ...(rejected.length > 0 ? [`lines rejected by decode: ${tail(rejected.join("\n"))}`] : []),
      `stderr: ${tail(stderr) || "(nothing)"}`
    ].join("\n")

  /** Offers message `index` to `waiter`; true if it took it. */
  const offer = (waiter: Waiter<M>, index: number): boolean => {
    let matches: boolean
    try {
      matches = waiter.predicate(messages[index]!)
    } catch (error) {
      waiters.delete(waiter)
      waiter.reject(error instanceof Error ? error : new Error(String(error)))
      return true
    }
    if (!matches) return false
    cursor = Math.max(cursor, index + 1)
    waiters.delete(waiter)
    waiter.resolve(messages[index]!)
    return true
  }

  const onLine = (line: string) => {
    if (line.trim() === "") return
    let json: unknown
    try {
      json = JSON.parse(line)
    } catch {
      return // a log line, kept in stdout
    }
    try {
      messages.push(decode(json))
    } catch (error) {
      rejected.push(`${line} (${error instanceof Error ? error.message : String(error)})`)
      return
    }
    for (const waiter of [...waiters]) offer(waiter, messages.length - 1)
  }

  let partial = ""
  child.stdout.setEncoding("utf8")
  child.stdout.on("data", (chunk: string) => {
    stdout += chunk
    const lines = (partial + chunk).split("\n")
    partial = lines.pop()!
    for (const line of lines) onLine(line)
  })
  child.stdout.on("end", () => onLine(partial))
  child.stderr.setEncoding("utf8")
  child.stderr.on("data", (chunk: string) => {
    stderr += chunk
  })
  child.stdin.on("error", () => {}) // EPIPE once the child is gone: `send` is best effort then

  const exited = new Promise<Exit>((resolveExit, rejectExit) => {
    child.once("error", (error) => {
      running.delete(child)
      rejectExit(new Error(`could not run ${argv.join(" ")}: ${error.message}`))
    })
    child.once("close", (code, signal) => {
      running.delete(child)
      exit = { code, signal }
      for (const waiter of [...waiters]) {
        waiters.delete(waiter)
        waiter.reject(new Error(`the child exited before a matching message\n${describe()}`))
      }
      resolveExit(exit)
    })
  })
  exited.catch(() => {}) // reported by waitFor and dispose; unobserved otherwise

  const waitFor = (predicate: (message: M) => boolean, timeoutMs = 10_000) =>
    new Promise<M>((resolveWait, rejectWait) => {
      const timer = setTimeout(() => {
        waiters.delete(waiter)
        rejectWait(new Error(`no matching message from the child in ${timeoutMs} ms\n${describe()}`))
      }, timeoutMs)
      const waiter: Waiter<M> = {
        predicate,
        resolve: (message) => {
          clearTimeout(timer)
          resolveWait(message)
        },
        reject: (error) => {
          clearTimeout(timer)
          rejectWait(error)
        }
      }
      waiters.add(waiter)
      for (let index = cursor; index < messages.length; index++) if (offer(waiter, index)) return
      if (exit !== undefined)
        waiter.reject(new Error(`the child exited before a matching message\n${describe()}`))
    })

  const dispose = async () => {
    if (exit === undefined) child.kill("SIGKILL")
    await exited.catch(() => {})
  }

  try {
    onTestFinished(dispose)
  } catch {
    // Not inside a test (e.g. beforeAll): the caller disposes.
  }

  return {
    pid: child.pid ?? -1,
    messages,
    waitFor,
    skipReceived: () => {
      cursor = messages.length
    },
    send: (message) => {
      child.stdin.write(`${JSON.stringify(message)}\n`)
    },
    kill: (signal = "SIGTERM") => exit === undefined && child.kill(signal),
    exited,
    stdout: () => stdout,
    stderr: () => stderr,
    dispose
  }
}

/** `spawn` as a scoped resource: the child is SIGKILLed (if still running) when the scope closes. */
export const scoped = <M = any>(entry: string, options: SpawnOptions<M> = {}) =>
  Effect.acquireRelease(
    Effect.sync(() => spawn(entry, options)),
    (pod) => Effect.promise(() => pod.dispose())
  )
