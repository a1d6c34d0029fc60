#!/usr/bin/env node
// The `effect-cluster` command. In an installed package it runs the compiled tool (dist/cli/main.js).
// In a clone of the repository (src/ is there, no build needed) it runs the TypeScript sources with
// Node's type stripping, in a child Node with the flags that resolve "effect-cluster" to src/.
import { spawn } from "node:child_process"
import { existsSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
const source = join(root, "src", "cli", "main.ts")

if (existsSync(source)) {
  const child = spawn(
    process.execPath,
    [
      "--experimental-strip-types",
      "--no-warnings",
      "--conditions=@effect-cluster/source",
      source,
      ...process.argv.slice(2)
    ],
    { stdio: "inherit" }
  )
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
    process.on(signal, () => child.kill(signal))
  }
  child.on("exit", (code, signal) => {
    process.exitCode = code ?? (signal === null ? 1 : 128 + (signal === "SIGINT" ? 2 : 15))
  })
} else {
  // node:sqlite warns that it is experimental on every run: noise on the stderr of a tool whose
  // stderr is for the user's errors. Only that warning is dropped.
  const emitWarning = process.emitWarning
  process.emitWarning = (warning, ...rest) => {
    const type = typeof rest[0] === "string" ? rest[0] : rest[0]?.type
    if (type === "ExperimentalWarning" && String(warning).includes("SQLite")) return
    return emitWarning.call(process, warning, ...rest)
  }
  await import(pathToFileURL(join(root, "dist", "cli", "main.js")).href)
}
