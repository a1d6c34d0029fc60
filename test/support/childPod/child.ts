/**
 * The child of `test/support/ChildPod.test.ts`: reports on stdout in JSON lines, obeys commands on
 * stdin, and handles SIGTERM gracefully.
 *
 * - at start: a log line that is not JSON, a line on stderr, then `ready` (with its arguments, the
 *   variable `CHILD_POD_GREETING`, its Node version, and, given the argument `cluster`, what
 *   `import "effect-cluster"` resolved to);
 * - `tick` every 20 ms, numbered from 1;
 * - stdin `{ "type": "echo", "value": v }` → `{ "type": "echoed", "value": v }`;
 *   `{ "type": "exit", "code": n }` → exits with code n, after a last line on stderr;
 * - SIGTERM → `{ "type": "sigterm" }`, then exits 0 once its timer is stopped.
 */
import { createInterface } from "node:readline"
import { shardOf } from "../../../src/sharding/ShardId.ts"

const emit = (message: object) => process.stdout.write(`${JSON.stringify(message)}\n`)

const args = process.argv.slice(2)
const cluster = args.includes("cluster") ? Object.keys(await import("effect-cluster")) : null

console.log("a log line, not JSON")
console.error("child stderr: starting")
emit({
  type: "ready",
  args,
  greeting: process.env.CHILD_POD_GREETING ?? null,
  node: process.versions.node,
  shard: shardOf("foobar", 300), // a TypeScript module of the repository, types stripped
  cluster
})

let n = 0
const ticking = setInterval(() => emit({ type: "tick", n: ++n }), 20)

createInterface({ input: process.stdin }).on("line", (line) => {
  const command = JSON.parse(line) as { type: string; value?: unknown; code?: number }
  if (command.type === "echo") emit({ type: "echoed", value: command.value })
  if (command.type === "exit") {
    console.error(`child stderr: exiting with ${command.code}`)
    process.exit(command.code)
  }
})

process.on("SIGTERM", () => {
  emit({ type: "sigterm" })
  clearInterval(ticking)
  process.exit(0)
})
