/**
 * `npm start`: the talk's ProcessPayment workflow, killed with SIGKILL in the middle and resumed.
 * `npm start -- --postgres URL` runs it on PostgreSQL instead of the embedded store.
 * `npm start -- --otlp http://localhost:4318` exports the workers' traces and metrics to that
 * OpenTelemetry collector (OTLP/HTTP).
 *
 * The supervisor (this process) hosts fake services and runs the worker as a child process. When
 * the payment gateway has charged the card for order-1 — before it answers — the supervisor kills
 * the worker: the classic double-payment trap. A new worker resumes from the journal file; the
 * charge activity runs again with the same persistenceId and the gateway deduplicates it.
 */
import { spawn } from "node:child_process"
import { join } from "node:path"
import { ExecutionTrace } from "effect-cluster"
import { startFakeServices } from "./fake-services.ts"
import { describeStore, otlpFromArgs, resetStore, storeFromArgs } from "./store.ts"

const say = (line: string) => console.log(line)
const fail = (message: string): never => {
  console.error(`✘ ${message}`)
  process.exit(2)
}

const [store, otlp] = (() => {
  try {
    return [storeFromArgs(process.argv.slice(2)), otlpFromArgs(process.argv.slice(2))] as const
  } catch (error) {
    return fail(
      `bad arguments: ${error instanceof Error ? error.message : String(error)}\nusage: npm start [-- --postgres URL] [--otlp URL]`
    )
  }
})()
const workerScript = join(import.meta.dirname, "worker.ts")

await resetStore(store).catch((error) =>
  fail(`cannot reset the journal at ${describeStore(store)}: ${error}`)
)

let current: ReturnType<typeof spawn> | undefined
let killed = false
const services = await startFakeServices({
  outOfStock: new Set(["order-2"]),
  afterCharge: (key) => {
    if (killed || !key.includes("order-1") || current === undefined) return
    killed = true
    say(`\n💥 the gateway charged the card (key ${key}); SIGKILL the worker before it hears back`)
    current.kill("SIGKILL")
  }
})

const runWorker = (run: number) =>
  new Promise<number | null>((done) => {
    say(`\n▶ starting worker #${run}`)
    const child = spawn(
      process.execPath,
      // The worker runs with this process's Node flags (npm start resolves "effect-cluster" to the sources).
      [
        ...process.execArgv,
        workerScript,
        services.baseUrl,
        store,
        String(run),
        ...(otlp === undefined ? [] : [otlp])
      ],
      {
        stdio: ["ignore", "inherit", "inherit"]
      }
    )
    current = child
    child.on("exit", (code, signal) => {
      say(
        signal === null
          ? `■ worker #${run} exited with code ${code}`
          : `■ worker #${run} was killed by ${signal}`
      )
      done(code)
    })
  })

say(
  "effect-cluster demo: ProcessPayment (order-2 is out of stock and gets refunded; order-1 crashes mid-charge)"
)
say(`journal: ${describeStore(store)}`)
if (otlp !== undefined) say(`traces and metrics: exported to the OTLP/HTTP collector at ${otlp}`)
const first = await runWorker(1)
const second = first === 0 ? first : await runWorker(2)
await services.close()

const { charges, refunds, chargeRequests } = services.ledger
const key = "ProcessPayment@order-1/charge-credit-card"
const order1Charges = charges.filter((charge) => charge.key === key).length
say("\nPayment gateway ledger:")
for (const charge of charges) say(`  charge ${charge.amount} on card ${charge.card} (key ${charge.key})`)
for (const refund of refunds) say(`  refund ${refund.amount} on card ${refund.card} (key ${refund.key})`)
const ok = killed && second === 0 && order1Charges === 1 && refunds.length === 1
say(
  ok
    ? `\n✔ card 4242-4242 was charged exactly once for order-1 (${chargeRequests.get(key)} charge requests with key ${key}, 1 charge); order-2 was charged once and refunded once.`
    : `\n✘ unexpected outcome: killed=${killed} worker exit=${second} charges for order-1=${order1Charges} refunds=${refunds.length}`
)
say(`The journal is kept at ${describeStore(store)}`)
if (otlp !== undefined) {
  // Every run of an execution, in either worker, is in the trace derived from its id.
  for (const order of ["order-1", "order-2"])
    say(`trace of ProcessPayment@${order}: ${ExecutionTrace.traceIdOf(`ProcessPayment@${order}`)}`)
}
process.exit(ok ? 0 : 1)
