/**
 * A hostile writer of the store (`hostile.ts`): what a buggy older version or a hand edit leaves
 * in the tables, written with plain SQL next to the pods. Rows of entity messages whose payload
 * does not decode, is too large, names another message or another shard, or whose entity id no
 * sender could use; executions whose request does not decode or names an unknown workflow, and one
 * whose recorded step does not decode. Every key it writes starts with `hostile-<seed>-`, so the
 * honest traffic is untouched and the rows can be checked afterwards (`plantedOutcomes`).
 */
import { DatabaseSync } from "node:sqlite"
import { Effect, ManagedRuntime } from "effect"
import { SqlClient } from "effect/sql/SqlClient"
import { ShardId } from "effect-cluster"
import { PostgresJournal } from "effect-cluster/postgres"

/** Plain SQL on the store: `?` placeholders on both backends. */
export interface Db {
  readonly dialect: "sqlite" | "pg"
  readonly query: (
    sql: string,
    params?: ReadonlyArray<unknown>
  ) => Promise<ReadonlyArray<Record<string, unknown>>>
  readonly close: () => Promise<void>
}

/** Opens `store` (a SQLite file or a postgres:// URL) for plain SQL. */
export const openDb = (store: string): Db => {
  if (store.startsWith("postgres")) {
    const runtime = ManagedRuntime.make(PostgresJournal.clientLayer({ url: store, maxConnections: 1 }))
    return {
      dialect: "pg",
      query: (sql, params = []) => {
        let n = 0
        const numbered = sql.replace(/\?/g, () => `$${++n}`)
        return runtime.runPromise(
          Effect.flatMap(SqlClient, (client) => client.unsafe<Record<string, unknown>>(numbered, params))
        )
      },
      close: () => runtime.dispose()
    }
  }
  const db = new DatabaseSync(store)
  db.exec("PRAGMA busy_timeout = 10000")
  return {
    dialect: "sqlite",
    query: async (sql, params = []) =>
      db.prepare(sql).all(...(params as Array<string | number | null | Uint8Array>)) as ReadonlyArray<
        Record<string, unknown>
      >,
    close: async () => db.close()
  }
}

/** What a planted row must come to. */
export type Expected =
  /** Set aside by its owner, with the reason. */
  | "dead"
  /** Left pending: no pod registers its type (a type not deployed yet is not refused). */
  | "pending"
  /** Suspended with the error that names what does not decode. */
  | "suspended"

/** A row the attack wrote, and what it must come to. */
export interface Planted {
  readonly table: "entity_messages" | "executions"
  readonly key: string
  readonly what: string
  readonly expected: Expected
}

/** Where the rows go. */
export interface StoreTarget {
  readonly db: Db
  readonly prefix: string
  readonly shardCount: number
  readonly seed: number
  /** An entity type of the cluster, and a well-formed message of it (none: no message rows). */
  readonly entity?: { readonly type: string; readonly message: (messageId: string) => string } | undefined
  /** A workflow of the cluster, and a well-formed request of it (none: no execution rows). */
  readonly workflow?: { readonly name: string; readonly request: (id: string) => string } | undefined
}

/** Stores a pending message as the store does (SQLite: its seq from the store's counter). */
const storeMessage = async (
  target: StoreTarget,
  row: { entityType: string; entityId: string; messageId: string; shard: number; payload: unknown }
) => {
  const { db, prefix } = target
  const now = Date.now()
  if (db.dialect === "pg") {
    await db.query(
      `INSERT INTO ${prefix}entity_messages (entity_type, entity_id, message_id, shard, payload, status, created_at)
       VALUES (?, ?, ?, ?, ?, 'pending', ?)`,
      [row.entityType, row.entityId, row.messageId, row.shard, row.payload, now]
    )
    return
  }
  await db.query("BEGIN IMMEDIATE")
  try {
    const [counter] = await db.query(
      `INSERT INTO ${prefix}cluster (name, value) VALUES ('entity_seq', 1)
       ON CONFLICT (name) DO UPDATE SET value = value + 1 RETURNING value`
    )
    await db.query(
      `INSERT INTO ${prefix}entity_messages (entity_type, entity_id, message_id, shard, seq, payload, status, created_at)
       VALUES (?, ?, ?, ?, ?, ?, 'pending', ?)`,
      [row.entityType, row.entityId, row.messageId, row.shard, Number(counter?.value), row.payload, now]
    )
    await db.query("COMMIT")
  } catch (error) {
    await db.query("ROLLBACK")
    throw error
  }
}

/** Stores a running execution and an inbox entry that wakes its owner. */
const storeExecution = async (
  target: StoreTarget,
  executionId: string,
  workflow: string,
  request: unknown
) => {
  const { db, prefix, shardCount } = target
  const now = Date.now()
  const shard = ShardId.shardOf(executionId, shardCount)
  await db.query(
    `INSERT INTO ${prefix}executions (execution_id, workflow, request, status, interrupt_requested, created_at, updated_at, shard)
     VALUES (?, ?, ?, 'running', 0, ?, ?, ?)`,
    [executionId, workflow, request, now, now, shard]
  )
  await db.query(`INSERT INTO ${prefix}inbox (shard, execution_id, created_at) VALUES (?, ?, ?)`, [
    shard,
    executionId,
    now
  ])
}

/** A row of `plant`: what it is, what it must come to, and how it is written. */
interface Row {
  readonly table: Planted["table"]
  readonly key: string
  readonly what: string
  readonly expected: Expected
  readonly write: () => Promise<void>
}

/** The message rows of `plant`. */
const messageRows = (target: StoreTarget, entity: NonNullable<StoreTarget["entity"]>): ReadonlyArray<Row> => {
  const id = (name: string) => `hostile-${target.seed}-${name}`
  const shardOf = (entityId: string) => ShardId.shardOf(entityId, target.shardCount)
  const entityId = id("entity")
  const row = (
    name: string,
    what: string,
    expected: Expected,
    fields: Partial<Parameters<typeof storeMessage>[1]> = {}
  ): Row => ({
    table: "entity_messages",
    key: id(name),
    what,
    expected,
    write: () =>
      storeMessage(target, {
        entityType: entity.type,
        entityId,
        messageId: id(name),
        shard: shardOf(entityId),
        payload: entity.message(id(name)),
        ...fields
      })
  })
  return [
    row("not-json", "a message whose payload is not JSON", "dead", { payload: "{not json" }),
    row("wrong-shape", "a message whose payload does not match the type's schema", "dead", {
      payload: JSON.stringify({ _tag: 42, messageId: [] })
    }),
    row("too-large", "a message of 2 MB, over the type's maxMessageBytes", "dead", {
      payload: entity.message(id("too-large")).replace(/}$/, `,"junk":"${"j".repeat(2_000_000)}"}`)
    }),
    row("other-id", "a message whose own id is another message's", "dead", {
      payload: entity.message(id("someone-else"))
    }),
    row("wrong-shard", "a message stored under another shard than its entity's", "dead", {
      shard: (shardOf(entityId) % target.shardCount) + 1
    }),
    row("empty-entity", "a message to the entity id ''", "dead", { entityId: "", shard: shardOf("") }),
    row("unknown-type", "a message to an entity type no pod registers", "pending", {
      entityType: `Hostile${target.seed}`
    }),
    ...(target.db.dialect === "sqlite"
      ? [
          row("bytes", "a message whose payload is bytes, not text", "dead", {
            payload: new TextEncoder().encode("\u0000\u00ff not text")
          })
        ]
      : [])
  ]
}

/** The execution rows of `plant`. */
const executionRows = (
  target: StoreTarget,
  workflow: NonNullable<StoreTarget["workflow"]>
): ReadonlyArray<Row> => {
  const id = (name: string) => `hostile-${target.seed}-${name}`
  const row = (
    name: string,
    what: string,
    expected: Expected,
    workflowName: string,
    request: unknown
  ): Row => ({
    table: "executions",
    key: id(name),
    what,
    expected,
    write: () => storeExecution(target, id(name), workflowName, request)
  })
  const damagedStep = row(
    "step-not-json",
    "an execution whose recorded step does not decode",
    "suspended",
    workflow.name,
    workflow.request(id("step-not-json"))
  )
  return [
    row(
      "request-not-json",
      "an execution whose request is not JSON",
      "suspended",
      workflow.name,
      "{not json"
    ),
    row(
      "request-wrong-shape",
      "an execution whose request does not match the workflow's schema",
      "suspended",
      workflow.name,
      JSON.stringify({ _tag: workflow.name, id: 42 })
    ),
    row(
      "unknown-workflow",
      "an execution of a workflow no pod registers",
      "suspended",
      `Hostile${target.seed}`,
      JSON.stringify({ _tag: `Hostile${target.seed}` })
    ),
    {
      ...damagedStep,
      write: async () => {
        // The step first: the owner must not run the execution before its journal is damaged.
        const now = Date.now()
        await target.db.query(
          `INSERT INTO ${target.prefix}steps (execution_id, step_key, activity_id, seq, previous_step, attempt, outcome, started_at, completed_at)
           VALUES (?, 'reserve', 'reserve', 0, NULL, 1, '{not json', ?, ?)`,
          [damagedStep.key, now, now]
        )
        await damagedStep.write()
      }
    },
    ...(target.db.dialect === "sqlite"
      ? [
          row(
            "request-bytes",
            "an execution whose request is bytes, not text",
            "suspended",
            workflow.name,
            new TextEncoder().encode("{}")
          )
        ]
      : [])
  ]
}

/** Writes the hostile rows (in an order drawn by `next`); returns them with what they must come to. */
export const plant = async (target: StoreTarget, next: () => number): Promise<ReadonlyArray<Planted>> => {
  const rows = [
    ...(target.entity === undefined ? [] : messageRows(target, target.entity)),
    ...(target.workflow === undefined ? [] : executionRows(target, target.workflow))
  ]
  // A seeded order: the owners meet them interleaved with honest work, not as one block.
  for (let i = rows.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1))
    ;[rows[i], rows[j]] = [rows[j]!, rows[i]!]
  }
  const planted: Array<Planted> = []
  for (const { write, ...row } of rows) {
    await write()
    planted.push(row)
  }
  return planted
}

/** What each planted row came to, where it differs from what it must: one line per problem. */
export const plantedProblems = async (
  db: Db,
  prefix: string,
  planted: ReadonlyArray<Planted>
): Promise<ReadonlyArray<string>> => {
  const problems: Array<string> = []
  for (const row of planted) {
    const found =
      row.table === "entity_messages"
        ? await db.query(
            `SELECT status, error AS reason FROM ${prefix}entity_messages WHERE message_id = ?`,
            [row.key]
          )
        : await db.query(`SELECT status, reason FROM ${prefix}executions WHERE execution_id = ?`, [row.key])
    const status = found[0]?.status
    if (status !== row.expected) {
      problems.push(`${row.what} (${row.key}): expected ${row.expected}, found ${String(status ?? "no row")}`)
    } else if ((row.expected === "dead" || row.expected === "suspended") && !found[0]?.reason) {
      problems.push(`${row.what} (${row.key}): ${row.expected} without a reason`)
    }
  }
  return problems
}
