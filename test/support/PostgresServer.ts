/**
 * Starts a real PostgreSQL server for the tests and the benchmark: a fresh data directory in a temp
 * folder, listening on loopback on a free port, run as an unprivileged user when the tests run as
 * root (initdb refuses root). The binaries are the machine's, else the ones an npm package ships
 * (`PostgresBinaries.ts`); without either it fails loudly: Postgres tests are never skipped.
 */
import { execFile, execFileSync, spawnSync } from "node:child_process"
import { chmodSync, chownSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describeBinaries, findPostgresBinaries, type PostgresBinaries } from "./PostgresBinaries.ts"

export interface PostgresServer {
  /** Connection URL of the `postgres` database. */
  readonly url: string
  /** The binaries that run it. */
  readonly binaries: PostgresBinaries
  /** Which server runs, from where, for the log. */
  readonly description: string
  /** Stops the server (`pg_ctl stop -m fast`: open connections are cut). */
  readonly stop: () => Promise<void>
  /** Starts it again on the same port and data. */
  readonly start: () => Promise<void>
  /** Stops the server and removes its files. */
  readonly dispose: () => Promise<void>
}

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })

interface ServerUser {
  readonly name: string
  readonly uid: number
  readonly gid: number
}

/** The unprivileged user to run the server as when we are root (created if missing). */
const serverUser = (): ServerUser | undefined => {
  if (process.getuid?.() !== 0) return undefined
  const name = "postgres"
  if (spawnSync("id", ["-u", name]).status !== 0) {
    const created = spawnSync("useradd", ["--system", "--no-create-home", name], { encoding: "utf8" })
    if (created.status !== 0)
      throw new Error(`cannot create the unprivileged user ${name}: ${created.stderr}`)
  }
  const uid = Number(execFileSync("id", ["-u", name], { encoding: "utf8" }).trim())
  const gid = Number(execFileSync("id", ["-g", name], { encoding: "utf8" }).trim())
  return { name, uid, gid }
}

/** Starts a server whose files all live in `root`. */
const startIn = async (root: string, user: ServerUser | undefined): Promise<PostgresServer> => {
  const binaries = findPostgresBinaries(root)
  const data = join(root, "data")
  const log = join(root, "server.log")
  const run = (command: string, args: ReadonlyArray<string>) =>
    new Promise<void>((resolve, reject) => {
      const [file, argv] =
        user === undefined
          ? [join(binaries.bin, command), args]
          : ["runuser", ["-u", user.name, "--", join(binaries.bin, command), ...args]]
      execFile(file, argv, { encoding: "utf8", cwd: root }, (error, stdout, stderr) => {
        if (error === null) return resolve()
        const serverLog = existsSync(log)
          ? spawnSync("tail", ["-n", "30", log], { encoding: "utf8" }).stdout
          : ""
        reject(
          new Error(`${command} ${args.join(" ")} failed (${error.code}): ${stderr}${stdout}\n${serverLog}`)
        )
      })
    })
  await run("initdb", ["-D", data, "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8", "--locale=C"])
  const port = await freePort()
  writeFileSync(
    join(data, "postgresql.auto.conf"),
    [
      `port = ${port}`,
      "listen_addresses = '127.0.0.1'",
      `unix_socket_directories = '${root}'`,
      "fsync = on",
      "synchronous_commit = on",
      "max_connections = 200",
      "shared_buffers = '128MB'"
    ].join("\n")
  )
  if (user !== undefined) chownSync(join(data, "postgresql.auto.conf"), user.uid, user.gid)
  const start = () => run("pg_ctl", ["-D", data, "-l", log, "-w", "-t", "60", "start"])
  const stop = () => run("pg_ctl", ["-D", data, "-m", "fast", "-w", "-t", "60", "stop"])
  await start()
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    binaries,
    description: describeBinaries(binaries),
    start,
    stop,
    dispose: async () => {
      try {
        await stop()
      } finally {
        rmSync(root, { recursive: true, force: true })
      }
    }
  }
}

/** Starts a server in a new temp folder; the folder is removed if it does not start. */
export const startPostgres = async (): Promise<PostgresServer> => {
  const user = serverUser()
  const root = mkdtempSync(join(tmpdir(), "effect-cluster-pg-"))
  chmodSync(root, 0o755)
  if (user !== undefined) chownSync(root, user.uid, user.gid)
  try {
    return await startIn(root, user)
  } catch (error) {
    rmSync(root, { recursive: true, force: true })
    throw error
  }
}
