/**
 * User errors of the `effect-cluster` command: each one exits non-zero with ONE clear line on
 * stderr (nothing on stdout, no stack trace) — 1 when the command cannot do what was asked (a
 * store that does not exist or does not answer, an unknown id, a malformed payload or cursor), 2
 * when the command line itself is wrong. And `--help` works at every level.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Layer } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { SqliteJournal } from "../../src/index.ts"
import { freshDatabase } from "../support/freshDatabase.ts"
import { cli, ok, okJson, userError } from "./support.ts"

let dir: string
let file: string

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "effect-cluster-cli-errors-"))
  file = join(dir, "store.db")
  // An empty store, as an engine creates it.
  await Effect.runPromise(Effect.scoped(Layer.build(SqliteJournal.layer({ filename: file }))))
})

afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe("effect-cluster user errors", () => {
  it("bad stores: none given, a missing file, a folder, not a database, a bad URL, an unreachable server", async () => {
    const folder = join(dir, "a-folder")
    mkdirSync(folder)
    const text = join(dir, "notes.txt")
    writeFileSync(text, "these are not the tables you are looking for\n".repeat(100))
    const missing = join(dir, "missing.db")
    await Promise.all([
      userError(["executions", "list"], 1, [
        "no store given",
        "--file PATH",
        "--postgres URL",
        "DATABASE_URL"
      ]),
      userError(["executions", "list", "--file", missing], 1, [`no store at ${missing}`, "does not exist"]),
      userError(["pods", "--file", folder], 1, [`cannot open the store ${folder}`, "not a file"]),
      userError(["shards", "--file", text], 1, [`cannot open the store ${text}`]),
      userError(["executions", "list", "--postgres", "not a url"], 1, ["invalid store URL", "not a URL"]),
      userError(["executions", "list", "--postgres", "mysql://db/orders"], 1, [
        "invalid store URL",
        '"mysql"'
      ]),
      userError(["executions", "list", "--file", file, "--postgres", "postgres://h/db"], 1, ["one store"])
    ])
    // Nothing was created where a store was missing.
    expect((await cli(["executions", "list", "--file", missing])).code).toBe(1)
    expect(existsSync(missing)).toBe(false)
    const unreachable = await userError(
      ["executions", "list", "--postgres", "postgres://ops:s3cret@127.0.0.1:1/orders"],
      1,
      ["cannot open the store postgres://ops:***@127.0.0.1:1/orders"]
    )
    expect(unreachable).not.toContain("s3cret")
    // The same through DATABASE_URL.
    await userError(
      ["executions", "list"],
      1,
      ["cannot open the store postgres://ops:***@127.0.0.1:1/orders"],
      {
        DATABASE_URL: "postgres://ops:s3cret@127.0.0.1:1/orders"
      }
    )
  }, 60_000)

  it("DATABASE_URL names a PostgreSQL store when no flag does", async () => {
    const url = await freshDatabase("cli_env")
    // An empty database has no schema: the tool creates it only when asked to.
    await userError(["executions", "list"], 1, ["no effect-cluster tables"], { DATABASE_URL: url })
    expect(await okJson(["executions", "list", "--migrate"], { DATABASE_URL: url })).toEqual({
      executions: [],
      next: null
    })
    expect(await okJson(["executions", "list"], { DATABASE_URL: url })).toEqual({
      executions: [],
      next: null
    })
    expect(await ok(["pods"], { DATABASE_URL: url })).toBe(
      "no pods registered (no engine runs on this store now)\n"
    )
  }, 60_000)

  it("bad requests: an unknown id, a malformed payload, cursor, limit, date or dead-letter key", async () => {
    const f = ["--file", file]
    await Promise.all([
      userError(["executions", "show", "nope", ...f], 1, ["no execution nope exists"]),
      userError(["executions", "resume", "nope", ...f], 1, ["no execution nope exists"]),
      userError(["executions", "interrupt", "nope", ...f], 1, ["no execution nope exists"]),
      userError(["executions", "export", "nope", ...f], 1, ["no execution nope exists"]),
      userError(["signal", "nope", "approval", "--json", "{bad", ...f], 1, [
        'payload of signal "approval"',
        "not valid JSON"
      ]),
      userError(["signal", "nope", "approval", "--json", '"fine"', ...f], 1, ["no execution nope exists"]),
      userError(["executions", "list", "--limit", "0", ...f], 1, ['invalid limit "0"', "1 to 1000"]),
      userError(["executions", "list", "--limit", "5000", ...f], 1, ['invalid limit "5000"']),
      userError(["executions", "list", "--since", "yesterday", ...f], 1, ['invalid --since "yesterday"']),
      userError(["executions", "list", "--cursor", "garbage", ...f], 1, [
        'the cursor "garbage" is not valid'
      ]),
      userError(["executions", "list", "--cursor", "c1.bm90IGpzb24", ...f], 1, ["is not valid"]),
      userError(["dead-letters", "replay", "nonsense", ...f], 1, ['invalid dead letter key "nonsense"']),
      userError(["dead-letters", "replay", "Account/acc-1/nope", ...f], 1, ["no dead letter has the key"]),
      userError(["entities", "show", "Account", "acc-1", "--limit", "0", ...f], 1, ["invalid limit"])
    ])
  }, 60_000)

  it("bad command lines exit 2: an unknown flag or subcommand, a bad flag value, a missing argument", async () => {
    await Promise.all([
      userError(["executions", "list", "--bogus"], 2, ["Unrecognized flag: --bogus", "--help"]),
      userError(["executions", "list", "--status", "weird"], 2, ["--status", '"weird"', "suspended"]),
      userError(["executions", "list", "--limit", "many"], 2, ["--limit"]),
      userError(["executions", "show"], 2, ["id"]),
      userError(["executions", "frobnicate"], 2, ["frobnicate"]),
      userError(["signal", "job", "approval"], 2, ["--json"]),
      userError(["dead-letters", "replay"], 2, ["key"])
    ])
  }, 60_000)

  it("--help works at every level", async () => {
    const helps = await Promise.all(
      [
        [],
        ["executions"],
        ["executions", "list"],
        ["executions", "show"],
        ["executions", "export"],
        ["signal"],
        ["pods"],
        ["shards"],
        ["entities", "show"],
        ["dead-letters"],
        ["dead-letters", "replay"]
      ].map((path) => ok([...path, "--help"]))
    )
    for (const help of helps) expect(help).toContain("USAGE")
    expect(helps[0]).toContain("--postgres URL")
    expect(helps[2]).toContain("--since T")
    expect(helps[5]).toContain("--json PAYLOAD")
  }, 60_000)
})
