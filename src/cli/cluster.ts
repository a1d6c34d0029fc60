/**
 * `effect-cluster pods` and `effect-cluster shards`: the ownership of a clustered store.
 */
import { Effect } from "effect"
import { Command } from "effect/cli"
import { duration, print, printJson, table, time } from "./internal/format.ts"
import { withAdmin } from "./internal/store.ts"
import { json } from "./root.ts"

const SINGLE = "single-process store: no pods (its engine runs every shard alone)"

/** `pods`. */
export const pods = Command.make("pods", { json }, ({ json }) =>
  withAdmin((admin) =>
    Effect.gen(function* () {
      const view = yield* admin.pods()
      if (json) return yield* printJson(view)
      if (!view.clustered) return yield* print(SINGLE)
      if (view.pods.length === 0) return yield* print("no pods registered (no engine runs on this store now)")
      yield* print(
        table(
          ["POD", "LIVENESS", "SHARDS", "MANAGER", "LEASE UNTIL", "RENEWED", "LEASE AGE", "REGISTERED"],
          view.pods.map((pod) => [
            pod.podId,
            pod.liveness,
            String(pod.shardCount),
            pod.manager ? "yes" : "",
            time(pod.leaseUntil),
            time(pod.renewedAt),
            duration(pod.leaseAgeMillis),
            time(pod.registeredAt)
          ])
        )
      )
    })
  )
).pipe(
  Command.withDescription(
    "The pods of the cluster: liveness, lease, shard count, which one is the shard manager."
  )
)

/** `shards`. */
export const shards = Command.make("shards", { json }, ({ json }) =>
  withAdmin((admin) =>
    Effect.gen(function* () {
      const view = yield* admin.shards()
      if (json) return yield* printJson(view)
      if (!view.clustered) return yield* print(SINGLE)
      if (view.shards.length === 0)
        return yield* print("no shards yet (no engine has run on this store as a pod)")
      yield* print(
        table(
          ["SHARD", "OWNER", "EPOCH", "HANDOVER TO", "UPDATED"],
          view.shards.map((shard) => [
            String(shard.shard),
            shard.owner ?? "(unassigned)",
            String(shard.epoch),
            shard.nextOwner ?? "",
            time(shard.updatedAt)
          ])
        )
      )
    })
  )
).pipe(Command.withDescription("The shards: owner, epoch (fencing token), pending handover."))
