/**
 * The hostile sender of the verification runner (issue #20): `attack(target)` performs a seeded
 * batch of oversized and malformed input against a running cluster, and says what it did and how
 * the pods took it. What the product must do with each is in its `expected`: a clear typed error
 * or a closed connection (with a log line on the pod), and no pod crashed or stalled.
 * - Over the network (`hostileWire.ts`), at the pods' listeners: garbage bytes, frames that are
 *   not messages of the protocol, a frame over `maxFrameBytes`, unfinished frames on many
 *   connections, half a frame and a hang, a flood of connections, and well-formed frames with
 *   malformed payloads (wrong types, an unknown request, unknown entity types, ids no sender can
 *   use, payloads that do not decode or are too large, a message under another message's id).
 * - Through the public API (`hostileUser.ts`, a pod of the cluster): messages and workflow
 *   requests over their limits or off their schemas.
 * - Through the store (`hostileStore.ts`): rows of messages and executions that do not decode.
 *
 * `aftermath(target, report)` then checks what must hold once the pods had time: every pod still
 * serves, and every planted row came to what it must (dead letter, suspended, left pending). The
 * honest traffic of the run is the caller's to check (its counters and executions exact).
 */
import { ShardId } from "effect-cluster"
import type { ChildPod } from "../test/support/ChildPod.ts"
import * as ChildPods from "../test/support/ChildPod.ts"
import { type Db, openDb, type Planted, plant, plantedProblems } from "./hostileStore.ts"
import * as Wire from "./hostileWire.ts"
import { random } from "./schedule.ts"

/** The cluster under attack. */
export interface HostileTarget {
  /** The store: a SQLite file, or a postgres:// URL. */
  readonly store: string
  /** Default `effect_cluster_`. */
  readonly tablePrefix?: string | undefined
  /** The pods' listeners (`host:port`). Default: the addresses of the live pods in the store. */
  readonly addresses?: ReadonlyArray<string> | undefined
  readonly seed: number
  /** The pods' `maxFrameBytes`. Default 16 MiB. */
  readonly maxFrameBytes?: number | undefined
  /** The pods' `maxConnections`. Default 512. */
  readonly maxConnections?: number | undefined
  /**
   * An entity type the pods host (false: none), and a well-formed message of it. Default: the
   * `Counter`'s `Increment`.
   */
  readonly entityType?: string | false | undefined
  readonly message?: ((messageId: string) => string) | undefined
  /** A workflow the pods host (false: none), and a well-formed request of it. Default: `Order`. */
  readonly workflow?: string | false | undefined
  readonly request?: ((id: string) => string) | undefined
  /**
   * Misuse the public API from a pod of the cluster (`hostileUser.ts`) hosting what the other pods
   * host: the `Counter` entities, the `Order` workflow (its attempts in `ledger`), or both.
   */
  readonly user?:
    | {
        readonly counter?: boolean | undefined
        readonly orders?: { readonly ledger: string; readonly activityMillis: number } | undefined
        readonly shardCount?: number | undefined
        readonly leaseTtlMillis?: number | undefined
      }
    | undefined
  /** How long a half frame may hang before the pod must have closed it. Default 30 s. */
  readonly hangMillis?: number | undefined
  /** Connections of the flood. Default 600. */
  readonly floodConnections?: number | undefined
}

/** One hostile action and how the cluster took it. */
export interface HostileAction {
  readonly kind: "network" | "api" | "store"
  readonly what: string
  /** The pod's address, the API call, or the table. */
  readonly target: string
  /** What the product must do. */
  readonly expected: string
  /** What it did. */
  readonly outcome: string
  /** `problem`: not what it must; `inconclusive`: the shard moved meanwhile, say. */
  readonly verdict: "ok" | "problem" | "inconclusive"
}

/** What `attack` did. */
export interface HostileReport {
  readonly seed: number
  readonly addresses: ReadonlyArray<string>
  readonly actions: ReadonlyArray<HostileAction>
  /** The rows it wrote into the store, each with what it must come to (see `aftermath`). */
  readonly planted: ReadonlyArray<Planted>
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

const counterMessage = (messageId: string) => JSON.stringify({ _tag: "Increment", messageId })
const orderRequest = (id: string) => JSON.stringify({ _tag: "Order", id })

/** How long an attack waits for a pod with a live lease and an address in the store. */
const ADDRESS_WAIT_MILLIS = 30_000

/** The settings of `target`, with defaults, and a view of the store. */
const settle = async (target: HostileTarget) => {
  const prefix = target.tablePrefix ?? "effect_cluster_"
  const db = openDb(target.store)
  const [count] = await db.query(`SELECT value FROM ${prefix}cluster WHERE name = 'shard_count'`)
  const shardCount = Number(count?.value ?? 300)
  // The pods' live addresses. Right after a fault of the whole store (a full disk) every lease may
  // have run out until the next renewal, and restarted pods may still be joining: wait for one.
  let addresses = target.addresses ?? []
  for (let waited = 0; addresses.length === 0 && waited <= ADDRESS_WAIT_MILLIS; waited += 250) {
    if (waited > 0) await sleep(250)
    const live = await db.query(
      `SELECT pod_id, address FROM ${prefix}pods WHERE address IS NOT NULL AND lease_until > ?`,
      [Date.now()]
    )
    addresses = live.map((row) => String(row.address))
  }
  if (addresses.length === 0)
    throw new Error(`attack: no pod address given, and none live in the store for ${ADDRESS_WAIT_MILLIS} ms`)
  return {
    prefix,
    db,
    shardCount,
    addresses,
    maxFrameBytes: target.maxFrameBytes ?? 16 * 1024 * 1024,
    maxConnections: target.maxConnections ?? 512,
    entityType: target.entityType ?? "Counter",
    message: target.message ?? counterMessage,
    workflow: target.workflow ?? "Order",
    request: target.request ?? orderRequest
  }
}

type Settings = Awaited<ReturnType<typeof settle>>

/** The address of the pod that owns `shard` now, if the store says so. */
const ownerAddress = async (settings: Settings, shard: number): Promise<string | undefined> => {
  const { db, prefix } = settings
  const rows = await db.query(
    `SELECT p.address FROM ${prefix}shards s JOIN ${prefix}pods p ON p.pod_id = s.owner WHERE s.shard_id = ?`,
    [shard]
  )
  const address = rows[0]?.address
  return typeof address === "string" ? address : undefined
}

/** Sends `bytes` on a new connection; the action, ok when the pod closed it. */
const frameAction = async (
  address: string,
  what: string,
  bytes: string | Uint8Array,
  timeoutMs = 10_000
): Promise<HostileAction> => {
  const connection = await Wire.connect(address)
  await connection.write(bytes)
  const closed = await connection.waitClosed(timeoutMs)
  connection.destroy()
  return {
    kind: "network",
    what,
    target: address,
    expected: "the connection closed, with a log line on the pod",
    outcome: closed ? "closed" : `still open after ${timeoutMs} ms`,
    verdict: closed ? "ok" : "problem"
  }
}

/** Sends one request of the protocol; the action, ok when the pod answered it with a failure. */
const requestAction = async (
  address: string,
  what: string,
  tag: string,
  payload: unknown
): Promise<HostileAction> => {
  const connection = await Wire.connect(address)
  await connection.write(Wire.request("r", tag, payload))
  const exit = (await connection.waitFrame(Wire.isExitOf("r"), 10_000)) as
    | { readonly exit?: { readonly _tag?: string } }
    | null
    | undefined
  connection.destroy()
  const outcome = exit == null ? "no answer" : `answered ${exit.exit?._tag ?? "?"}`
  return {
    kind: "network",
    what,
    target: address,
    expected: "answered with a failure",
    outcome,
    verdict: exit?.exit?._tag === "Failure" ? "ok" : "problem"
  }
}

/** Pushes one entity message to its owner; the action, ok when the answer is `expected`. */
const pushAction = async (
  settings: Settings,
  what: string,
  message: {
    readonly entityType: string
    readonly entityId: string
    readonly messageId: string
    readonly payload: string
  },
  expected: string
): Promise<HostileAction> => {
  const address =
    (await ownerAddress(settings, ShardId.shardOf(message.entityId, settings.shardCount))) ??
    settings.addresses[0]!
  const connection = await Wire.connect(address)
  await connection.write(Wire.request("answers", "Answers", null))
  await connection.write(
    Wire.request(
      "deliver",
      "Deliver",
      { pushes: [{ id: 1, message: { ...message, shard: 1, stored: false, awaitReply: true } }] },
      { discard: true }
    )
  )
  const chunk = (await connection.waitFrame(
    (frame) => (frame as { _tag?: unknown })._tag === "Chunk",
    10_000
  )) as
    | {
        readonly values?: ReadonlyArray<{
          readonly answer?: { readonly _tag?: string; readonly error?: { readonly _tag?: string } }
        }>
      }
    | null
    | undefined
  connection.destroy()
  const answer = chunk?.values?.[0]?.answer
  const outcome =
    answer === undefined
      ? "no answer"
      : answer._tag === "Failed"
        ? `Failed(${answer.error?._tag})`
        : String(answer._tag)
  return {
    kind: "network",
    what,
    target: address,
    expected,
    outcome,
    verdict: outcome === expected ? "ok" : outcome === "NotOwner" ? "inconclusive" : "problem"
  }
}

/** Half a frame, then nothing: the pod must close it within `hangMillis`. */
const hang = async (address: string, hangMillis: number): Promise<HostileAction> => {
  const connection = await Wire.connect(address)
  const started = Date.now()
  await connection.write('{"_tag":"Request","id":"h","tag":"Wake","payl')
  const closed = await connection.waitClosed(hangMillis)
  connection.destroy()
  return {
    kind: "network",
    what: "half a frame, then a hang",
    target: address,
    expected: `the connection closed within ${hangMillis} ms, with a log line on the pod`,
    outcome: closed ? `closed after ${Date.now() - started} ms` : `still open after ${hangMillis} ms`,
    verdict: closed ? "ok" : "problem"
  }
}

/** How soon a flooded pod must have closed the connections past its cap. */
const FLOOD_CAP_MILLIS = 10_000

/** How soon after a flood the pod must serve again (its closes reach it through proxies too). */
const FLOOD_RECOVERY_MILLIS = 10_000

/** `count` connections at once, each with an unfinished frame, held 2 s. */
const flood = async (address: string, count: number, maxConnections: number): Promise<HostileAction> => {
  const connections = (
    await Promise.all(Array.from({ length: count }, () => Wire.connect(address).catch(() => undefined)))
  ).filter((connection) => connection !== undefined)
  await Promise.all(connections.map((connection) => connection.write('{"_tag":"Req')))
  // Until the pod closed those past its cap (through the proxies, on a loaded machine, that may
  // take a while), for at most FLOOD_CAP_MILLIS: under its idle timeout (20 s), which would close
  // them all whatever the cap.
  const closedCount = () => connections.filter((connection) => connection.closed()).length
  const capDue = Date.now() + FLOOD_CAP_MILLIS
  await sleep(2_000)
  while (closedCount() < count - maxConnections && Date.now() < capDue) await sleep(100)
  const closed = closedCount()
  for (const connection of connections) connection.destroy()
  const serves = await Wire.servesWithin(address, FLOOD_RECOVERY_MILLIS)
  const capped = count <= maxConnections || closed >= count - maxConnections
  return {
    kind: "network",
    what: `a flood of ${count} connections with unfinished frames`,
    target: address,
    expected: `connections past ${maxConnections} closed as they come; the pod serves within ${FLOOD_RECOVERY_MILLIS} ms of the flood's end`,
    outcome: `${connections.length} opened, ${closed} closed by the pod; ${serves ? "serves" : `does not serve within ${FLOOD_RECOVERY_MILLIS} ms`} afterwards`,
    verdict: capped && serves ? "ok" : "problem"
  }
}

/** Unfinished frames of 90% of `maxFrameBytes` on `count` connections at once. */
const unfinished = async (address: string, count: number, maxFrameBytes: number): Promise<HostileAction> => {
  const connections = await Promise.all(Array.from({ length: count }, () => Wire.connect(address)))
  const chunk = Buffer.alloc(Math.floor(maxFrameBytes * 0.9), 0x62)
  await Promise.all(connections.map((connection) => connection.write(chunk)))
  // The pod reads them at its pace: wait until it closed one, or 10 s.
  for (
    let waited = 0;
    waited < 10_000 && !connections.some((connection) => connection.closed());
    waited += 100
  ) {
    await sleep(100)
  }
  const closed = connections.filter((connection) => connection.closed()).length
  for (const connection of connections) connection.destroy()
  return {
    kind: "network",
    what: `${count} connections, each with an unfinished frame of ${chunk.length} bytes`,
    target: address,
    expected: `connections closed once the unfinished frames of all took more than ${4 * maxFrameBytes} bytes`,
    outcome: `${closed} of ${count} closed`,
    verdict: closed > 0 || count * chunk.length <= 4 * maxFrameBytes ? "ok" : "problem"
  }
}

/** The public API's misuse, from a pod of the cluster (`hostileUser.ts`). */
const misuse = async (target: HostileTarget, settings: Settings): Promise<ReadonlyArray<HostileAction>> => {
  const user = target.user
  if (user === undefined) return []
  const podId = `hostile-user-${target.seed}`
  const pod: ChildPod<{ readonly misused?: ReadonlyArray<{ what: string; outcome: string }> }> =
    ChildPods.spawn("verify/hostileUser.ts", {
      args: [
        JSON.stringify({
          store: target.store,
          tablePrefix: target.tablePrefix,
          podId,
          shardCount: user.shardCount,
          leaseTtlMillis: user.leaseTtlMillis,
          counter: user.counter,
          orders: user.orders
        })
      ]
    })
  try {
    const line = await pod.waitFor((message) => message.misused !== undefined, 60_000)
    pod.send({ stop: true })
    await pod.exited
    const stored = await settings.db.query(
      `SELECT count(*) AS n FROM ${settings.prefix}entity_messages WHERE message_id LIKE 'hostile-user-%'`
    )
    const started = await settings.db.query(
      `SELECT count(*) AS n FROM ${settings.prefix}executions WHERE execution_id LIKE 'hostile-user-%'`
    )
    const leaked = Number(stored[0]?.n ?? 0) + Number(started[0]?.n ?? 0)
    return [
      ...(line.misused ?? []).map(
        (misused): HostileAction => ({
          kind: "api",
          what: misused.what,
          target: podId,
          expected: "a typed error, nothing stored",
          outcome: misused.outcome,
          verdict: misused.outcome === "accepted" ? "problem" : "ok"
        })
      ),
      {
        kind: "store",
        what: "what the misuse left in the store",
        target: `${settings.prefix}entity_messages, ${settings.prefix}executions`,
        expected: "no row",
        outcome: `${leaked} row(s)`,
        verdict: leaked === 0 ? "ok" : "problem"
      }
    ]
  } finally {
    await pod.dispose()
  }
}

/** Performs the seeded batch of hostile actions against `target`; see the module comment. */
export const attack = async (target: HostileTarget): Promise<HostileReport> => {
  const settings = await settle(target)
  const next = random(target.seed)
  const pick = <A>(items: ReadonlyArray<A>): A => items[Math.floor(next() * items.length)]!
  const { addresses, maxFrameBytes, entityType, message } = settings
  const id = (name: string) => `hostile-${target.seed}-${name}`
  const garbage = Uint8Array.from({ length: 64 + Math.floor(next() * 4096) }, () => Math.floor(next() * 256))
  garbage[0] = 0 // never valid JSON
  const large = Math.min(1_000_000, Math.floor(maxFrameBytes / 4))
  const actions: Array<HostileAction> = []
  let planted: ReadonlyArray<Planted> = []
  try {
    const hanging = hang(pick(addresses), target.hangMillis ?? 30_000)
    /** Well-formed frames with messages the owner must refuse (none: the pods host no entity). */
    const pushes = (): Array<() => Promise<HostileAction>> => {
      if (entityType === false) return []
      return [
        () =>
          pushAction(
            settings,
            "a push to an unknown entity type",
            {
              entityType: `Hostile${target.seed}`,
              entityId: id("e"),
              messageId: id("p-type"),
              payload: "{}"
            },
            "UnknownType"
          ),
        () =>
          pushAction(
            settings,
            "a push to the entity id ''",
            { entityType, entityId: "", messageId: id("p-empty"), payload: message(id("p-empty")) },
            "Failed(InvalidEntityIdError)"
          ),
        () =>
          pushAction(
            settings,
            "a push to an entity id of 600 characters",
            {
              entityType,
              entityId: `${id("e")}-${"x".repeat(600)}`,
              messageId: id("p-long"),
              payload: message(id("p-long"))
            },
            "Failed(InvalidEntityIdError)"
          ),
        () =>
          pushAction(
            settings,
            "a push whose payload is not JSON",
            { entityType, entityId: id("e"), messageId: id("p-json"), payload: "{not json" },
            "Failed(MalformedMessageError)"
          ),
        () =>
          pushAction(
            settings,
            "a push whose payload is another message's",
            {
              entityType,
              entityId: id("e"),
              messageId: id("p-other"),
              payload: message(id("p-someone-else"))
            },
            "Failed(MalformedMessageError)"
          ),
        () =>
          pushAction(
            settings,
            `a push with a string of ${large} characters`,
            {
              entityType,
              entityId: id("e"),
              messageId: id("p-large"),
              payload: message(id("p-large")).replace(/}$/, `,"junk":"${"j".repeat(large)}"}`)
            },
            "Failed(MessageTooLargeError)"
          )
      ]
    }
    const steps: Array<() => Promise<ReadonlyArray<HostileAction> | HostileAction>> = [
      () =>
        frameAction(
          pick(addresses),
          `${garbage.length} bytes of garbage`,
          Buffer.concat([garbage, Buffer.from("\n")])
        ),
      () => frameAction(pick(addresses), "a null frame", "null\n"),
      () => frameAction(pick(addresses), "an array frame", "[1,2,3]\n"),
      () =>
        frameAction(
          pick(addresses),
          "a request without an id",
          Wire.frame({ _tag: "Request", tag: "Wake", payload: {} })
        ),
      () =>
        frameAction(
          pick(addresses),
          "a request with malformed headers",
          Wire.request("1", "Wake", { shards: [] }, { headers: [[1, 2], "x"] })
        ),
      () =>
        frameAction(
          pick(addresses),
          `a frame of ${maxFrameBytes + 1024} bytes`,
          Buffer.alloc(maxFrameBytes + 1024, 0x61),
          60_000
        ),
      () => unfinished(pick(addresses), 5, maxFrameBytes),
      () => flood(pick(addresses), target.floodConnections ?? 600, settings.maxConnections),
      () => requestAction(pick(addresses), "a Deliver whose pushes are a string", "Deliver", { pushes: "x" }),
      () => requestAction(pick(addresses), "an unknown request", `Hostile${target.seed}`, {}),
      () =>
        requestAction(pick(addresses), "a Wake with shards that are not integers", "Wake", {
          shards: [1.5, "x"]
        }),
      ...pushes(),
      async () => {
        planted = await plant(
          {
            db: settings.db,
            prefix: settings.prefix,
            shardCount: settings.shardCount,
            seed: target.seed,
            entity: entityType === false ? undefined : { type: entityType, message },
            workflow:
              settings.workflow === false ? undefined : { name: settings.workflow, request: settings.request }
          },
          next
        )
        return planted.map(
          (row): HostileAction => ({
            kind: "store",
            what: row.what,
            target: `${settings.prefix}${row.table}`,
            expected: row.expected,
            outcome: `stored as ${row.key} (see aftermath)`,
            verdict: "ok"
          })
        )
      },
      () => misuse(target, settings)
    ]
    for (let i = steps.length - 1; i > 0; i--) {
      const j = Math.floor(next() * (i + 1))
      ;[steps[i], steps[j]] = [steps[j]!, steps[i]!]
    }
    for (const step of steps) {
      const done = await step()
      actions.push(...(Array.isArray(done) ? done : [done as HostileAction]))
    }
    actions.push(await hanging)
    return { seed: target.seed, addresses, actions, planted }
  } finally {
    await settings.db.close()
  }
}

/**
 * What must hold after `attack`, once the pods had up to `timeoutMs`: every pod serves, and
 * every planted row came to what it must. One line per problem; empty when all is well.
 */
export const aftermath = async (
  target: HostileTarget,
  report: HostileReport,
  timeoutMs = 30_000
): Promise<ReadonlyArray<string>> => {
  const db: Db = openDb(target.store)
  const prefix = target.tablePrefix ?? "effect_cluster_"
  try {
    const started = Date.now()
    let problems: ReadonlyArray<string> = []
    do {
      if (problems.length > 0) await sleep(250)
      const silent: Array<string> = []
      for (const address of report.addresses) {
        if (!(await Wire.serves(address))) silent.push(`the pod at ${address} does not serve`)
      }
      problems = [...silent, ...(await plantedProblems(db, prefix, report.planted))]
    } while (problems.length > 0 && Date.now() - started < timeoutMs)
    return [
      ...report.actions
        .filter((action) => action.verdict === "problem")
        .map(
          (action) => `${action.what} at ${action.target}: expected ${action.expected}; ${action.outcome}`
        ),
      ...problems
    ]
  } finally {
    await db.close()
  }
}

/** The report as lines for people. */
export const describeReport = (report: HostileReport): ReadonlyArray<string> =>
  report.actions.map(
    (action) =>
      `${action.verdict === "ok" ? "ok" : action.verdict.toUpperCase()} ${action.kind}: ${action.what} (${action.target}) -> ${action.outcome}`
  )
