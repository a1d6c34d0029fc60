/**
 * A headless Chromium for the browser tests, obtained without downloading anything at run time:
 *
 * 1. the build the npm package `@sparticuz/chromium` (a pinned devDependency) ships inside itself:
 *    a brotli-compressed `chromium` binary, the NSS / expat libraries it links against
 *    (`al2023.tar.br`), SwiftShader (`swiftshader.tar.br`: ANGLE looks for it next to the binary)
 *    and a font (`fonts.tar.br`). They are unpacked once into a cache folder under the OS temporary
 *    folder (atomically: a half-unpacked folder is never used) and run with `LD_LIBRARY_PATH` on the
 *    shipped libraries and a fontconfig file on the shipped font, so no system package is needed;
 * 2. otherwise Debian's `/usr/bin/chromium` (`apt-get install chromium`), where present.
 *
 * `launchChromium` tries them in that order and fails with a message that says how to get one.
 */
import { spawnSync } from "node:child_process"
import { randomUUID } from "node:crypto"
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync
} from "node:fs"
import { createRequire } from "node:module"
import { tmpdir } from "node:os"
import { dirname, join, normalize, sep } from "node:path"
import { brotliDecompressSync } from "node:zlib"
import { type Browser, chromium } from "playwright-core"

/** An executable to launch, with the environment it needs. */
export interface ChromiumExecutable {
  readonly source: "@sparticuz/chromium" | "/usr/bin/chromium"
  readonly executablePath: string
  readonly env: Readonly<Record<string, string>>
}

/** The flags for this closed network: no sandbox (root in CI), no GPU, nothing phoning home. */
export const chromiumArgs: ReadonlyArray<string> = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-dev-shm-usage"
]

const HOW_TO_INSTALL =
  "No headless Chromium could be started for the dashboard's browser test.\n" +
  "It uses the build shipped inside the npm package @sparticuz/chromium (a devDependency: run `npm install` " +
  "in the repository, which must keep node_modules/@sparticuz/chromium/bin/*.br), or else Debian's " +
  "/usr/bin/chromium (`sudo apt-get install chromium`). Nothing is downloaded at run time."

const require = createRequire(import.meta.url)

/** A minimal reader of the (ustar / pax) tar archives the package ships: regular files and folders. */
const untar = (archive: Buffer, into: string): void => {
  let offset = 0
  let paxPath: string | undefined
  while (offset + 512 <= archive.length) {
    const header = archive.subarray(offset, offset + 512)
    if (header.every((byte) => byte === 0)) break
    const field = (start: number, length: number) =>
      header
        .subarray(start, start + length)
        .toString("utf8")
        .replace(/\0.*$/s, "")
    const size = Number.parseInt(field(124, 12).trim() || "0", 8)
    const type = field(156, 1) || "0"
    const prefix = field(345, 155)
    const name = paxPath ?? (prefix === "" ? field(0, 100) : `${prefix}/${field(0, 100)}`)
    const body = archive.subarray(offset + 512, offset + 512 + size)
    offset += 512 + Math.ceil(size / 512) * 512
    if (type === "x") {
      const match = /\d+ path=([^\n]*)\n/.exec(body.toString("utf8"))
      paxPath = match?.[1]
      continue
    }
    paxPath = undefined
    if (type === "g") continue
    const target = normalize(join(into, name))
    if (!target.startsWith(into + sep)) throw new Error(`tar entry outside its folder: ${name}`)
    if (type === "5") mkdirSync(target, { recursive: true })
    else if (type === "0") {
      mkdirSync(dirname(target), { recursive: true })
      writeFileSync(target, body, { mode: Number.parseInt(field(100, 8).trim() || "644", 8) & 0o755 })
    } else throw new Error(`unexpected tar entry type ${type} for ${name}`)
  }
}

/** Unpacks the package's build into a cache folder (once per version), returns the executable. */
const unpackSparticuz = (): ChromiumExecutable => {
  // build/index.js → the package folder (its `exports` do not include package.json)
  const packageJson = join(dirname(require.resolve("@sparticuz/chromium")), "..", "package.json")
  const version = (JSON.parse(readFileSync(packageJson, "utf8")) as { version: string }).version
  const bin = join(dirname(packageJson), "bin")
  const user = typeof process.getuid === "function" ? String(process.getuid()) : "user"
  const folder = join(tmpdir(), `effect-cluster-chromium-${user}`, version)
  if (!existsSync(join(folder, "chromium"))) {
    mkdirSync(dirname(folder), { recursive: true })
    const staging = mkdtempSync(join(dirname(folder), `.unpacking-${randomUUID()}-`))
    try {
      writeFileSync(join(staging, "chromium"), brotliDecompressSync(readFileSync(join(bin, "chromium.br"))))
      chmodSync(join(staging, "chromium"), 0o755)
      untar(brotliDecompressSync(readFileSync(join(bin, "al2023.tar.br"))), staging)
      untar(brotliDecompressSync(readFileSync(join(bin, "swiftshader.tar.br"))), staging)
      untar(brotliDecompressSync(readFileSync(join(bin, "fonts.tar.br"))), staging)
      writeFileSync(
        join(staging, "fonts.conf"),
        `<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "fonts.dtd">\n<fontconfig>\n` +
          `  <dir>${join(folder, "fonts")}</dir>\n  <dir>/usr/share/fonts</dir>\n` +
          `  <cachedir>${join(folder, "fonts-cache")}</cachedir>\n</fontconfig>\n`
      )
      try {
        renameSync(staging, folder)
      } catch (error) {
        // Another test process unpacked it first: use theirs.
        if (!existsSync(join(folder, "chromium"))) throw error
      }
    } finally {
      rmSync(staging, { recursive: true, force: true })
    }
  }
  return {
    source: "@sparticuz/chromium",
    executablePath: join(folder, "chromium"),
    env: { LD_LIBRARY_PATH: join(folder, "lib"), FONTCONFIG_FILE: join(folder, "fonts.conf") }
  }
}

/** The candidates, best first, each with why it could not be used if it cannot. */
export const chromiumCandidates = (): ReadonlyArray<ChromiumExecutable | { readonly failure: string }> => {
  const candidates: Array<ChromiumExecutable | { readonly failure: string }> = []
  try {
    candidates.push(unpackSparticuz())
  } catch (error) {
    candidates.push({ failure: `@sparticuz/chromium: ${String(error)}` })
  }
  if (existsSync("/usr/bin/chromium")) {
    candidates.push({ source: "/usr/bin/chromium", executablePath: "/usr/bin/chromium", env: {} })
  } else candidates.push({ failure: "/usr/bin/chromium: not installed" })
  return candidates
}

/** Checks that an executable starts at all (a missing library shows here, with its name). */
const version = (candidate: ChromiumExecutable): string | { readonly failure: string } => {
  const result = spawnSync(candidate.executablePath, ["--version"], {
    env: { ...process.env, ...candidate.env },
    encoding: "utf8",
    timeout: 30_000
  })
  return result.status === 0
    ? result.stdout.trim()
    : { failure: `${candidate.source}: ${(result.stderr || String(result.error ?? result.status)).trim()}` }
}

/** Launches the first candidate that starts, with a fresh profile; fails saying how to get one. */
export const launchFirst = async (
  candidates: ReadonlyArray<ChromiumExecutable | { readonly failure: string }>
): Promise<{ readonly browser: Browser; readonly source: string }> => {
  const failures: Array<string> = []
  for (const candidate of candidates) {
    if ("failure" in candidate) {
      failures.push(candidate.failure)
      continue
    }
    const checked = version(candidate)
    if (typeof checked !== "string") {
      failures.push(checked.failure)
      continue
    }
    try {
      const browser = await chromium.launch({
        executablePath: candidate.executablePath,
        headless: true,
        args: [...chromiumArgs],
        env: { ...process.env, ...candidate.env } as Record<string, string>,
        timeout: 60_000
      })
      return { browser, source: `${candidate.source} (${checked})` }
    } catch (error) {
      failures.push(`${candidate.source}: ${String(error).split("\n")[0]}`)
    }
  }
  throw new Error(`${HOW_TO_INSTALL}\nTried:\n${failures.map((line) => `  - ${line}`).join("\n")}`)
}

/** Launches headless Chromium (see the module's doc), with a fresh profile; fails saying how to get one. */
export const launchChromium = (): Promise<{ readonly browser: Browser; readonly source: string }> =>
  launchFirst(chromiumCandidates())
