/**
 * What only PostgreSQL's entity store has to prove: transactions run concurrently there, and the
 * store still hands out `seq` in commit order, so an owner paging `pending` by `afterSeq` never
 * passes over a message that committed after a later-numbered one.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { outcomesStatement, selectOutcomesAhead } from "../../../src/storage/sql/internal/entityRows.ts"
import { postgres } from "../backends.ts"

const message = (messageId: string) => ({
  entityType: "Cart",
  entityId: "cart-1",
  messageId,
  shard: 1,
  payload: "{}",
  now: 1
})

describe("PostgreSQL entity store", () => {
  it.live("a message stored while another one's transaction is still open is numbered after it", () =>
    Effect.gen(function* () {
      const storage = yield* postgres.storage
      const { sql, prefix } = storage.raw!
      // Two processes: the first's insert of "slow" takes 500 ms before it commits.
      const first = yield* storage.openCluster
      const second = yield* storage.openCluster
      yield* sql.unsafe(`CREATE FUNCTION ${prefix}slow() RETURNS trigger LANGUAGE plpgsql
        AS $$ BEGIN IF NEW.message_id = 'slow' THEN PERFORM pg_sleep(0.5); END IF; RETURN NEW; END $$`)
      yield* sql.unsafe(`CREATE TRIGGER ${prefix}slow BEFORE INSERT ON ${prefix}entity_messages
        FOR EACH ROW EXECUTE FUNCTION ${prefix}slow()`)
      const slow = yield* first.entities.enqueue([message("slow")]).pipe(Effect.forkScoped)
      yield* Effect.sleep("150 millis")
      expect(yield* second.entities.enqueue([message("fast")])).toEqual([{ _tag: "Stored" }])
      // "fast" is stored: an owner that sees it must already see "slow", numbered before it.
      const pending = yield* second.entities.pending({ shards: [1], afterSeq: 0, limit: 10 })
      expect(pending.map((stored) => stored.messageId)).toEqual(["slow", "fast"])
      expect(yield* Fiber.join(slow)).toEqual([{ _tag: "Stored" }])
    }).pipe(Effect.scoped)
  )
})

describe("PostgreSQL entity store plans", () => {
  /** The (node type, relation) of every node of an `EXPLAIN (FORMAT JSON)` plan. */
  const nodesOf = (plan: unknown): Array<string> => {
    if (typeof plan !== "object" || plan === null) return []
    const node = plan as Record<string, unknown>
    const own =
      typeof node["Node Type"] === "string" ? [`${node["Node Type"]} ${node["Relation Name"] ?? ""}`] : []
    return [
      ...own,
      ...Object.values(node).flatMap((value) =>
        Array.isArray(value) ? value.flatMap(nodesOf) : nodesOf(value)
      )
    ]
  }

  it.live(
    "a message's outcome is looked up by its key, never by scanning the table, in custom and generic plans",
    () =>
      Effect.gen(function* () {
        const storage = yield* postgres.storage
        const { sql, prefix } = storage.raw!
        const cluster = yield* storage.openCluster
        // 5,000 messages in a table never analyzed: a process that has just started storing.
        for (let i = 0; i < 10; i++) {
          yield* cluster.entities.enqueue(Array.from({ length: 500 }, (_, j) => message(`m-${i}-${j}`)))
        }
        const keys = [{ entityType: "Cart", entityId: "cart-1", messageId: "m-3-7" }]
        const table = `${prefix}entity_messages`
        for (const [name, statement] of [
          ["outcomes", outcomesStatement(sql, "pg", prefix, keys)],
          ["outcomesAhead", selectOutcomesAhead(sql, "pg", prefix, keys, 10)]
        ] as const) {
          const [text, params] = statement.compile()
          expect(params.length, name).toBe(1)
          const json = `'${String(params[0]).replaceAll("'", "''")}'`
          // The plan for these keys, and the generic plan a prepared statement settles on.
          const custom = yield* sql.unsafe<{ "QUERY PLAN": unknown }>(`EXPLAIN (FORMAT JSON) ${text}`, params)
          const generic = yield* sql.withTransaction(
            Effect.gen(function* () {
              yield* sql.unsafe(`PREPARE plan_check AS ${text}`)
              yield* sql.unsafe("SET LOCAL plan_cache_mode = force_generic_plan")
              const plan = yield* sql.unsafe<{ "QUERY PLAN": unknown }>(
                `EXPLAIN (FORMAT JSON) EXECUTE plan_check(${json})`
              )
              yield* sql.unsafe("DEALLOCATE plan_check")
              return plan
            })
          )
          for (const [mode, rows] of [
            ["custom", custom],
            ["generic", generic]
          ] as const) {
            const nodes = nodesOf(rows[0]?.["QUERY PLAN"])
            expect(nodes.length, `${name}, ${mode}`).toBeGreaterThan(0)
            expect(
              nodes.filter((node) => node === `Seq Scan ${table}`),
              `${name}, ${mode}: ${nodes.join(", ")}`
            ).toEqual([])
          }
        }
      }).pipe(Effect.scoped)
  )
})
