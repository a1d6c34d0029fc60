/**
 * The package as a user gets it: `npm pack` (which builds `dist/` through `prepack`), the tarball
 * installed into a fresh project next to the same `effect`, then a plain `.mjs` program run by
 * Node 22 on the memory, SQLite and PostgreSQL journals, and a strict `nodenext` TypeScript module
 * type-checked against the installed `.d.ts` files. A broken `exports` map, a missing `.d.ts`, a
 * root that needs `@effect/sql-pg`, or a stray file in the tarball fails here.
 */
import { execFile, spawn } from "node:child_process"
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync
} from "node:fs"
import { setPriority, tmpdir } from "node:os"
import { delimiter, dirname, join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { freshDatabase } from "../support/freshDatabase.ts"

const repository = join(import.meta.dirname, "..", "..")
const consumer = join(import.meta.dirname, "consumer")
const versionOf = (name: string): string =>
  JSON.parse(readFileSync(join(repository, "node_modules", name, "package.json"), "utf8")).version

/**
 * The environment of the commands: without the `npm_*` variables of the `npm test` that runs us
 * (they would configure the nested npm), and with this Node first on the PATH.
 */
const environment = {
  ...Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.toLowerCase().startsWith("npm_"))
  ),
  PATH: [dirname(process.execPath), process.env.PATH ?? ""].join(delimiter)
}

/**
 * Runs a command. It runs at a lower priority (and so do the processes it starts, such as the
 * build's tsc): this file is CPU-heavy and not timing-sensitive, the crash tests beside it are.
 */
const run = (file: string, args: ReadonlyArray<string>, cwd: string) =>
  new Promise<{ stdout: string; stderr: string }>((resolve, reject) => {
    const child = execFile(
      file,
      args,
      { cwd, env: environment, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) =>
        error === null
          ? resolve({ stdout, stderr })
          : reject(new Error(`${file} ${args.join(" ")} failed: ${error.message}\n${stdout}\n${stderr}`))
    )
    try {
      if (child.pid !== undefined) setPriority(child.pid, 10)
    } catch {
      // not permitted here: run at normal priority
    }
  })

const npm = (args: ReadonlyArray<string>, cwd: string) =>
  run("npm", ["--no-audit", "--no-fund", "--loglevel=error", ...args], cwd)

interface PackedFile {
  readonly path: string
}
interface Packed {
  readonly filename: string
  readonly size: number
  readonly unpackedSize: number
  readonly entryCount: number
  readonly files: ReadonlyArray<PackedFile>
}

let temp: string
let project: string
let packed: Packed

beforeAll(async () => {
  temp = mkdtempSync(join(tmpdir(), "effect-cluster-package-"))
  project = join(temp, "project")
  const { stdout } = await npm(["pack", "--json", "--pack-destination", temp], repository)
  packed = (JSON.parse(stdout) as ReadonlyArray<Packed>)[0]!
  mkdirSync(project)
  writeFileSync(
    join(project, "package.json"),
    JSON.stringify({ name: "consumer", private: true, type: "module" }, null, 2)
  )
  copyFileSync(join(consumer, "workflow.mjs"), join(project, "workflow.mjs"))
  copyFileSync(join(consumer, "typed.ts"), join(project, "typed.ts"))
  copyFileSync(join(consumer, "dashboard.mjs"), join(project, "dashboard.mjs"))
  await npm(
    ["install", "--prefer-offline", join(temp, packed.filename), `effect@${versionOf("effect")}`],
    project
  )
}, 300_000)

afterAll(() => {
  if (temp !== undefined) rmSync(temp, { recursive: true, force: true })
})

/** Runs `workflow.mjs` with this Node and returns what it printed. */
const runWorkflow = (args: ReadonlyArray<string>) => run(process.execPath, ["workflow.mjs", ...args], project)

const expectedRun = {
  result: "hello ADA",
  steps: [["shout", 2, "succeeded"]],
  // An entity's count: the message "one" sent twice counts once.
  count: 2
}

// The tests run in order: PostgreSQL, then the type check, need @effect/sql-pg, installed by the
// PostgreSQL test after the root has been shown to work without it.
describe("the packed package", () => {
  it("holds only dist/, the bin shim, README.md, LICENSE and package.json", () => {
    const paths = packed.files.map((file) => file.path)
    console.log(
      `effect-cluster tarball: ${packed.size} bytes packed, ${packed.unpackedSize} bytes unpacked, ${packed.entryCount} files`
    )
    expect(
      paths.filter(
        (path) =>
          !path.startsWith("dist/") &&
          !["bin/effect-cluster.js", "README.md", "LICENSE", "package.json"].includes(path)
      )
    ).toEqual([])
    expect(paths).toContain("dist/cli/main.js")
    for (const asset of ["app.js", "dom.js", "execution.js", "style.css"]) {
      expect(paths).toContain(`dist/dashboard/static/${asset}`)
    }
    expect(paths).toContain("dist/dashboard.js")
    expect(paths).toContain("dist/dashboard.d.ts")
    for (const entry of ["index", "postgres"]) {
      expect(paths).toContain(`dist/${entry}.js`)
      expect(paths).toContain(`dist/${entry}.d.ts`)
      expect(paths).toContain(`dist/${entry}.d.ts.map`)
    }
  })

  it("runs a workflow from plain JavaScript with Node 22 on the memory and SQLite journals, without @effect/sql-pg", async () => {
    expect(
      Number(process.versions.node.split(".")[0]),
      `Node ${process.version} runs the tests`
    ).toBeGreaterThanOrEqual(22)
    expect(existsSync(join(project, "node_modules", "@effect", "sql-pg"))).toBe(false)
    const memory = await runWorkflow(["memory"])
    expect(JSON.parse(memory.stdout)).toEqual(expectedRun)
    // Importing the root loads neither a database driver nor node:sqlite (no ExperimentalWarning).
    expect(memory.stderr).toBe("")
    const sqlite = await runWorkflow(["sqlite", join(temp, "journal.db")])
    expect(JSON.parse(sqlite.stdout)).toEqual(expectedRun)
  }, 120_000)

  it("the installed effect-cluster command: --help, and executions list / show on the SQLite store the workflow left", async () => {
    const cli = (args: ReadonlyArray<string>) =>
      run("npx", ["--no-install", "effect-cluster", ...args], project)
    const help = await cli(["--help"])
    expect(help.stdout).toContain("executions")
    expect(help.stdout).toContain("dead-letters")
    const store = join(temp, "journal.db")
    const listed = await cli(["executions", "list", "--file", store, "--json"])
    expect(listed.stderr).toBe("")
    const page = JSON.parse(listed.stdout)
    expect(
      page.executions.map((e: { executionId: string; status: string }) => [e.executionId, e.status])
    ).toEqual([["greet/ada", "succeeded"]])
    expect(page.next).toBeNull()
    const shown = await cli(["executions", "show", "greet/ada", "--file", store])
    // Attempt 1 of "shout" failed and was retried, attempt 2 succeeded.
    expect(shown.stdout).toMatch(/shout\s+1\s.*failed, retried/)
    expect(shown.stdout).toMatch(/\n\s+2\s.*succeeded/)
    // A user error: one line on stderr, exit code 1, no stack trace.
    const missing = await cli(["executions", "list", "--file", join(temp, "nope.db")]).then(
      () => undefined,
      (error: Error) => error.message
    )
    expect(missing).toContain("no store at")
    expect(missing).not.toContain("    at ")
  }, 120_000)

  it("the dashboard from the package: Dashboard.layer, and the effect-cluster dashboard command, serve a page, its script and the API", async () => {
    const store = join(temp, "journal.db")
    const programmatic = await run(process.execPath, ["dashboard.mjs", store], project)
    const served = JSON.parse(programmatic.stdout)
    expect(served.page).toEqual([200, "text/html; charset=utf-8", true])
    expect(served.script).toEqual([200, "text/javascript; charset=utf-8"])
    expect(served.executions).toEqual([["greet/ada", "succeeded"]])
    expect(served.total).toBe(1)

    const bin = join(project, "node_modules", ".bin", "effect-cluster")
    const child = spawn(process.execPath, [bin, "dashboard", "--file", store, "--port", "0"], {
      cwd: project,
      env: environment
    })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (chunk) => {
      stdout += chunk
    })
    child.stderr.on("data", (chunk) => {
      stderr += chunk
    })
    const exited = new Promise((done) => child.on("exit", done))
    try {
      let url: string | undefined
      for (let i = 0; i < 600 && url === undefined; i++) {
        url = /effect-cluster dashboard: (http:\/\/\S+)/.exec(stdout)?.[1]
        if (url === undefined) await new Promise((done) => setTimeout(done, 50))
      }
      expect(url, stderr).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/)
      const page = await fetch(url!)
      expect(page.status).toBe(200)
      expect(await page.text()).toContain('<script type="module" src="/static/app.js">')
      expect((await fetch(`${url}static/style.css`)).headers.get("content-type")).toBe(
        "text/css; charset=utf-8"
      )
      const api = (await (await fetch(`${url}api/executions?status=succeeded`)).json()) as {
        executions: ReadonlyArray<{ executionId: string }>
      }
      expect(api.executions.map((e) => e.executionId)).toEqual(["greet/ada"])
    } finally {
      child.kill("SIGINT")
      await exited
    }
  }, 120_000)

  it("Telemetry.layer exports the spans and metrics over OTLP/HTTP from the package (effect only)", async () => {
    const telemetry = await runWorkflow(["telemetry"])
    const printed = JSON.parse(telemetry.stdout)
    expect(printed).toMatchObject(expectedRun)
    expect(printed.spans).toEqual(
      expect.arrayContaining([
        "effect-cluster.activity",
        "effect-cluster.entity.message",
        "effect-cluster.execution",
        "effect-cluster.journal.write"
      ])
    )
    expect(printed.metrics).toEqual(
      expect.arrayContaining([
        "effect-cluster.activity.retries",
        "effect-cluster.entity.messages",
        "effect-cluster.executions.completed",
        "effect-cluster.executions.started"
      ])
    )
  }, 120_000)

  it("the test kit works from the package: a 30-day sleep on TestClock, and the journal replayed", async () => {
    const testkit = await runWorkflow(["testkit"])
    const printed = JSON.parse(testkit.stdout)
    expect(printed).toMatchObject({ result: "hello ADA", replayed: "completed" })
    console.log(`30 days skipped with the installed WorkflowTest in ${printed.skippedInMs} ms of real time`)
  }, 120_000)

  it("runs the workflow on PostgreSQL through effect-cluster/postgres once @effect/sql-pg is installed", async () => {
    await npm(["install", "--prefer-offline", `@effect/sql-pg@${versionOf("@effect/sql-pg")}`], project)
    const url = await freshDatabase("package")
    const postgres = await runWorkflow(["postgres", url])
    expect(JSON.parse(postgres.stdout)).toEqual(expectedRun)
  }, 120_000)

  it("type-checks a strict nodenext TypeScript consumer against the installed .d.ts files", async () => {
    writeFileSync(
      join(project, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          target: "ES2023",
          module: "nodenext",
          moduleResolution: "nodenext",
          strict: true,
          noEmit: true,
          skipLibCheck: true,
          types: []
        },
        files: ["typed.ts"]
      })
    )
    const tsc = join(repository, "node_modules", "typescript", "bin", "tsc")
    await run(process.execPath, [tsc, "-p", "."], project)
  }, 120_000)
})
