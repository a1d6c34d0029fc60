/**
 * Run once before the tests (`postgresSetup.ts`): loads what the tests' child processes load (the
 * library from its sources, its PostgreSQL and Node modules, effect) and exits normally, so that
 * Node writes their compiled code to the compile cache (`NODE_COMPILE_CACHE`) before hundreds of
 * children start. A child that is SIGKILLed never writes its share, so on a fresh clone the cache
 * would otherwise fill slowly.
 */
import { flushCompileCache } from "node:module"

await import("effect-cluster")
await import("effect-cluster/postgres")
await import("@effect/platform-node/NodeRuntime")
await import("@effect/sql-pg/PgClient")
flushCompileCache()
