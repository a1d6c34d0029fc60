/**
 * Starts a real PostgreSQL server for the tests, from the machine's binaries: a fresh data
 * directory in a temp folder, listening on loopback on a free port, run as an unprivileged user
 * when the tests run as root (initdb refuses root). Fails loudly with install instructions when the
 * binaries are missing: Postgres tests are never skipped.
 */
import { execFile, execFileSync, spawnSync } from "node:child_process"
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"

export interface PostgresServer {
  /** Connection URL of the `postgres` database. */
  readonly url: string
  /** Stops the server (`pg_ctl stop -m fast`: open connections are cut). */
  readonly stop: () => Promise<void>
  /** Starts it again on the same port and data. */
  readonly start: () => Promise<void>
  /** Stops the server and removes its files. */
  readonly dispose: () => Promise<void>
}

const INSTALL_HINT =
  "PostgreSQL server binaries (initdb, pg_ctl, postgres) were not found on the PATH, in `pg_config --bindir` " +
  "nor in /usr/lib/postgresql/<version>/bin. " +
  "Install them, e.g. `apt-get install -y postgresql` on Debian/Ubuntu or `brew install postgresql@15` on macOS."

const findBinDir = (): string => {
  for (const dir of (process.env.PATH ?? "").split(":")) {
    if (dir !== "" && existsSync(join(dir, "initdb")) && existsSync(join(dir, "pg_ctl"))) return dir
  }
  try {
    const dir = execFileSync("pg_config", ["--bindir"], { encoding: "utf8" }).trim()
    if (existsSync(join(dir, "initdb")) && existsSync(join(dir, "pg_ctl"))) return dir
  } catch {
    // no pg_config: try Debian's layout below
  }
  // Debian/Ubuntu's postgresql package keeps the server binaries off the PATH.
  const debian = "/usr/lib/postgresql"
  if (existsSync(debian)) {
    const versions = readdirSync(debian)
      .filter((version) => existsSync(join(debian, version, "bin", "initdb")))
      .sort((a, b) => Number(b) - Number(a))
    if (versions[0] !== undefined) return join(debian, versions[0], "bin")
  }
  throw new Error(INSTALL_HINT)
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

/** The unprivileged user to run the server as when we are root (created if missing). */
const serverUser = (): { name: string; uid: number; gid: number } | undefined => {
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

export const startPostgres = async (): Promise<PostgresServer> => {
  const bin = findBinDir()
  const user = serverUser()
  const root = mkdtempSync(join(tmpdir(), "effect-cluster-pg-"))
  try {
    return await startIn(root, bin, user)
  } catch (error) {
    // A server that did not start leaves no folder behind.
    rmSync(root, { recursive: true, force: true })
    throw error
  }
}

const startIn = async (
  root: string,
  bin: string,
  user: { name: string; uid: number; gid: number } | undefined
): Promise<PostgresServer> => {
  const data = join(root, "data")
  const log = join(root, "server.log")
  chmodSync(root, 0o755)
  if (user !== undefined) chownSync(root, user.uid, user.gid)
  const run = (command: string, args: ReadonlyArray<string>) =>
    new Promise<void>((resolve, reject) => {
      const [file, argv] =
        user === undefined
          ? [join(bin, command), args]
          : ["runuser", ["-u", user.name, "--", join(bin, command), ...args]]
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
