/**
 * Sagas: activities paired with their compensations. Inside `Saga.run`, each `Saga.step` runs its
 * action and, once the action succeeded, registers its compensation. If the saga then fails or is
 * interrupted (`WorkflowEngine.interrupt`), the compensations of the completed steps run in reverse
 * order; if it succeeds, none runs.
 *
 * Compensations are activities too, so they are durable like the rest of the workflow: a crash in
 * the middle of compensating resumes the compensation where it stopped — a recorded compensation
 * is not run again (I1), the interrupted one runs again with the next attempt number (I2), the
 * remaining ones run after it — it is neither restarted nor skipped. A compensation that fails for
 * good is logged and the others still run; the saga keeps its original failure.
 *
 * @example
 * ```ts
 * const trip = Saga.run(
 *   Effect.gen(function* () {
 *     const hotel = yield* Saga.step(reserveHotel(request), (booking) => cancelHotel(booking))
 *     const flight = yield* Saga.step(reserveFlight(request), (booking) => cancelFlight(booking))
 *     yield* chargeCard(request) // fails: cancelFlight, then cancelHotel
 *     return { hotel, flight }
 *   })
 * )
 * ```
 */
import { Cause, Context, Effect, Exit, Scope } from "effect"

/** The compensations registered by the steps of the enclosing `Saga.run`. */
export class SagaScope extends Context.Service<SagaScope, Scope.Scope>()(
  "effect-cluster/workflow/SagaScope"
) {}

/**
 * Runs `action`; once it succeeded, registers `compensate(result)` to run if the enclosing saga
 * fails or is interrupted. Use activities for both.
 */
export const step = <A, E, R, R2>(
  action: Effect.Effect<A, E, R>,
  compensate: (result: A) => Effect.Effect<unknown, unknown, R2>
): Effect.Effect<A, E, R | R2 | SagaScope> =>
  Effect.flatMap(SagaScope, (scope) =>
    // Registration cannot be skipped by an interruption that lands just after the action.
    Effect.uninterruptibleMask((restore) =>
      Effect.tap(restore(action), (result) =>
        Effect.flatMap(Effect.context<R2>(), (context) =>
          Scope.addFinalizerExit(scope, (exit) =>
            Exit.isSuccess(exit)
              ? Effect.void
              : compensate(result).pipe(
                  Effect.provideContext(context),
                  Effect.catchCause((cause) =>
                    Cause.hasInterruptsOnly(cause)
                      ? Effect.interrupt
                      : Effect.logError("a saga compensation failed; the others still run", cause)
                  )
                )
          )
        )
      )
    )
  )

/**
 * Runs `body` as a saga: when it fails or is interrupted, the compensations its steps registered run
 * in reverse order, then the failure (or interruption) goes on.
 */
export const run = <A, E, R>(body: Effect.Effect<A, E, R>): Effect.Effect<A, E, Exclude<R, SagaScope>> =>
  Effect.flatMap(Scope.make("sequential"), (scope) =>
    Effect.onExit(Effect.provideService(body, SagaScope, scope), (exit) => Scope.close(scope, exit))
  ) as Effect.Effect<A, E, Exclude<R, SagaScope>>
