/**
 * Pods in real child processes (`pod-worker.ts`), for the liveness tests: spawned and registered,
 * then stopped (SIGSTOP) or killed (SIGKILL) by the test. A child still running when the scope
 * closes is killed.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { join } from "node:path"
import { Deferred, Effect, Exit } from "effect"

const worker = join(import.meta.dirname, "pod-worker.ts")

/** A child process that registered a pod. */
export interface PodProcess {
  readonly pid: number
  /** Sends SIGKILL and waits until the process has exited. */
  readonly kill: Effect.Effect<void>
  /** Sends SIGSTOP (the process keeps its locks and sessions) or SIGCONT. */
  readonly signal: (signal: "SIGSTOP" | "SIGCONT") => Effect.Effect<void>
}

/** Spawns a child that registers `podId` on `store` (a SQLite file or a PostgreSQL URL). */
export const spawnPod = (store: string, prefix: string, podId: string, ttlMillis: number) =>
  Effect.gen(function* () {
    const registered = yield* Deferred.make<void, Error>()
    const exited = yield* Deferred.make<void>()
    const child: ChildProcess = yield* Effect.acquireRelease(
      Effect.sync(() => {
        // The worker imports "effect-cluster": the condition resolves it to this repository's sources.
        const process_ = spawn(
          process.execPath,
          [
            "--no-warnings",
            "--conditions=@effect-cluster/source",
            worker,
            store,
            prefix,
            podId,
            String(ttlMillis)
          ],
          { stdio: ["ignore", "pipe", "pipe"] }
        )
        let stdout = ""
        let stderr = ""
        process_.stdout?.on("data", (chunk) => {
          stdout += chunk
          if (stdout.includes("REGISTERED")) Deferred.doneUnsafe(registered, Exit.void)
        })
        process_.stderr?.on("data", (chunk) => {
          stderr += chunk
        })
        process_.on("exit", (code, signal) => {
          Deferred.doneUnsafe(exited, Exit.void)
          Deferred.doneUnsafe(
            registered,
            Exit.fail(new Error(`pod worker exited (${code ?? signal}) before registering: ${stderr}`))
          )
        })
        return process_
      }),
      (child) =>
        Effect.suspend(() => {
          if (child.exitCode !== null || child.signalCode !== null) return Effect.void
          child.kill("SIGCONT")
          child.kill("SIGKILL")
          return Deferred.await(exited)
        })
    )
    yield* Deferred.await(registered).pipe(
      Effect.timeoutOrElse({
        duration: "30 seconds",
        orElse: () => Effect.fail(new Error("the pod worker did not register within 30 s"))
      })
    )
    return {
      pid: child.pid!,
      kill: Effect.suspend(() => {
        child.kill("SIGKILL")
        return Deferred.await(exited)
      }),
      signal: (signal) => Effect.sync(() => void child.kill(signal))
    } satisfies PodProcess
  })
