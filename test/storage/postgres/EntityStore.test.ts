/**
 * What only PostgreSQL's entity store has to prove: transactions run concurrently there, and the
 * store still hands out `seq` in commit order, so an owner paging `pending` by `afterSeq` never
 * passes over a message that committed after a later-numbered one.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
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
