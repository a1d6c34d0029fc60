/**
 * Signals: durable external events. A workflow waits for a named signal with `receive`; outside
 * code completes it with `engine.signal(executionId, signal, value)`. The value is decoded with the
 * signal's schema, stored once (the first completion wins, later ones are refused), kept if it
 * arrives before the workflow waits for it, and recorded in the execution's journal when received,
 * so a replay returns the same value. While it waits, the execution is parked in the journal with
 * no fiber; sending the signal wakes it.
 *
 * @example
 * ```ts
 * const approval = Signal.make("approval", Schema.Struct({ approvedBy: Schema.String }))
 *
 * // in the workflow
 * const decision = yield* Signal.receive(approval, { timeout: "2 days" })
 * if (Option.isNone(decision)) return yield* escalate(orderId)
 *
 * // anywhere with the engine
 * yield* engine.signal("Order@42", approval, { approvedBy: "ada" })
 * ```
 */
import { Clock, Duration, Effect, type Option, Schema } from "effect"
import type { Schema as ActivitySchema } from "./Activity.ts"
import type { AnyCodec } from "./internal/codec.ts"
import { WorkflowContext } from "./WorkflowContext.ts"

/**
 * A signal: a name, and the schema of its value. A name is completed once per execution: receiving
 * the same name again (in a loop) returns the same value; use a name per occurrence (`approval-1`,
 * `approval-2`, ...) for repeated events.
 */
export interface Signal<A> {
  readonly name: string
  readonly schema: ActivitySchema<A>
}

/** Defines a signal. */
export const make = <S extends AnyCodec>(name: string, schema: S): Signal<S["Type"]> => ({ name, schema })

/** A signal that carries no value. */
export const makeEmpty = (name: string): Signal<void> => ({ name, schema: Schema.Void })

/**
 * Waits durably for `signal`. Without a timeout, returns its value; with one, `Option.none()` if it
 * did not arrive in time (the deadline is recorded: a restart does not extend it).
 */
export function receive<A>(signal: Signal<A>): Effect.Effect<A, never, WorkflowContext>
export function receive<A>(
  signal: Signal<A>,
  options: { readonly timeout: Duration.Input }
): Effect.Effect<Option.Option<A>, never, WorkflowContext>
export function receive<A>(
  signal: Signal<A>,
  options?: { readonly timeout: Duration.Input }
): Effect.Effect<A | Option.Option<A>, never, WorkflowContext> {
  return WorkflowContext.use((ctx): Effect.Effect<A | Option.Option<A>> => {
    if (options === undefined) {
      // Without a deadline the wait ends only with the signal: the option is always some.
      return Effect.map(ctx.runtime.awaitSignal(signal.name, signal.schema, undefined), (value) =>
        value._tag === "Some" ? value.value : (undefined as never)
      )
    }
    const millis = Duration.toMillis(Duration.fromInputUnsafe(options.timeout))
    return Effect.flatMap(
      ctx.runtime.recordLocal(`effect-cluster/signal-deadline/${signal.name}`, Schema.Number, () =>
        Effect.map(Clock.currentTimeMillis, (now) => now + millis)
      ),
      (deadline) => ctx.runtime.awaitSignal(signal.name, signal.schema, deadline)
    )
  })
}
