/**
 * The port for a faster path between pods, on top of the store.
 *
 * The store is the source of truth and the first transport: a start, resume, interruption or
 * signal for a shard another pod owns is stored with an entry in that shard's inbox, and the caller
 * learns the result by reading the execution (see the README, "Several processes"). Owners poll
 * their inboxes, and callers the rows they wait for, every `deliveryPollInterval`; PostgreSQL adds
 * `LISTEN/NOTIFY`. A `PodTransport` provided to the engine (`Layer.succeed(PodTransport, ...)`) is
 * told about each inbox entry once it is committed, and about each execution that settles, so an
 * implementation over the network (e.g. `effect/rpc` between pods) can wake the right pod at once.
 * It carries hints only: a lost announcement costs one polling interval, never an execution.
 *
 * `PodTransport.inProcess` connects the pods of one process (tests, `MemoryJournal.layerCluster`).
 */
import { Context, Effect, PubSub, Stream } from "effect"

/** An execution that settled, with its final row as JSON (an `ExecutionRecord`) when sent with it. */
export interface Settlement {
  readonly executionId: string
  readonly row: string | undefined
}

export class PodTransport extends Context.Service<
  PodTransport,
  {
    /** The inbox of `shard` has a new entry (committed): wake its owner. */
    readonly announce: (shard: number) => Effect.Effect<void>
    /** Shards whose inbox has new entries, as announced to this pod. */
    readonly arrivals: Stream.Stream<number>
    /**
     * `executionId` is final or suspended (committed): wake the pods waiting for it. `row`, when
     * given, makes its final row as JSON: a waiting pod may take the result from it without a read.
     * Call it only to send the row (a pod with no peer never pays for the encoding).
     */
    readonly settle: (
      executionId: string,
      row?: (() => string | undefined) | undefined
    ) => Effect.Effect<void>
    /** Executions that settled, as announced to this pod (with their final row, when sent). */
    readonly settlements: Stream.Stream<string | Settlement>
  }
>()("effect-cluster/sharding/PodTransport") {}

/**
 * A transport between the pods of one process: every announcement reaches every pod (each ignores
 * what is not its own). Share one value between the engines of a test.
 *
 * @example
 * ```ts
 * const transport = yield* PodTransport.inProcess
 * const engine = yield* WorkflowEngine.makeScoped(workflows).pipe(
 *   Effect.provideService(PodTransport.PodTransport, transport)
 * )
 * ```
 */
export const inProcess: Effect.Effect<PodTransport["Service"]> = Effect.gen(function* () {
  const shards = yield* PubSub.unbounded<number>()
  const settled = yield* PubSub.unbounded<string>()
  return PodTransport.of({
    announce: (shard) => Effect.asVoid(PubSub.publish(shards, shard)),
    arrivals: Stream.fromPubSub(shards),
    settle: (executionId) => Effect.asVoid(PubSub.publish(settled, executionId)),
    settlements: Stream.fromPubSub(settled)
  })
})
