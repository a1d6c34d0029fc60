/**
 * The talk's Counter entity, as on the slides (with effect 4's names), persisted: the count is
 * stored with every message it processes, so it survives a `kill -9`, a failover and passivation.
 * Without `{ state: Schema.Number }` it is the slide's in-memory counter, which forgets.
 */
import { Effect, Option, pipe, Ref, Schema } from "effect"
import { Message, MessageState, RecipientBehaviour, RecipientType } from "effect-cluster"

export class Increment extends Schema.TaggedClass<Increment>()("Increment", {
  messageId: Schema.String
}) {}

export class Decrement extends Schema.TaggedClass<Decrement>()("Decrement", {
  messageId: Schema.String
}) {}

export class GetCurrent extends Message.TaggedRequest<GetCurrent>()("GetCurrent", {
  failure: Schema.Never,
  success: Schema.Number,
  payload: { messageId: Schema.String }
}) {}

export const CounterMsg = Schema.Union([Increment, Decrement, GetCurrent])
export type CounterMsg = typeof CounterMsg.Type

export const CounterEntity = RecipientType.makeEntityType("Counter", CounterMsg, (_) => _.messageId, {
  state: Schema.Number
})

/** The slide's handler: what the counter does with each message. */
const handle = (message: CounterMsg, stateRef: Ref.Ref<number>) => {
  switch (message._tag) {
    case "Increment":
      return pipe(
        Ref.update(stateRef, (count) => count + 1),
        Effect.as(MessageState.Processed(Option.none()))
      )
    case "Decrement":
      return pipe(
        Ref.update(stateRef, (count) => count - 1),
        Effect.as(MessageState.Processed(Option.none()))
      )
    case "GetCurrent":
      return pipe(
        Ref.get(stateRef),
        Effect.exit,
        Effect.map((result) => MessageState.Processed(Option.some(result)))
      )
  }
}

/**
 * The slide's behaviour. `observe` sees each message the handler runs for (the demo's ledger);
 * `delay` makes each message take a while (so a kill lands mid-stream).
 */
export const counterBehaviour = (
  observe: (entityId: string, message: CounterMsg) => void = () => {},
  delay: Effect.Effect<void> = Effect.void
) =>
  RecipientBehaviour.fromFunctionEffectStateful(
    () => Effect.succeed(0),
    (entityId, message: CounterMsg, stateRef: Ref.Ref<number>) =>
      delay.pipe(
        Effect.andThen(Effect.sync(() => observe(entityId, message))),
        Effect.andThen(handle(message, stateRef))
      )
  )

/** The demo's messages: number `i` goes to `counter-(i mod counters)`; every third one decrements. */
export const planned = (i: number, counters: number) => ({
  entityId: `counter-${i % counters}`,
  message: i % 3 === 0 ? new Decrement({ messageId: `m-${i}` }) : new Increment({ messageId: `m-${i}` })
})

/** What each counter must read after messages `0 .. total-1`. */
export const expectedCounts = (total: number, counters: number): Record<string, number> => {
  const counts: Record<string, number> = {}
  for (let c = 0; c < counters; c++) counts[`counter-${c}`] = 0
  for (let i = 0; i < total; i++) {
    const { entityId, message } = planned(i, counters)
    counts[entityId]! += message._tag === "Increment" ? 1 : -1
  }
  return counts
}
