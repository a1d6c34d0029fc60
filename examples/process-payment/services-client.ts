/** How the demo's activities call the fake services, printing every attempt on the timeline. */
import { Effect, Schema } from "effect"
import { Activity } from "effect-cluster"

/** Base URL of the fake services (run by the demo's supervisor process). */
export interface Services {
  readonly baseUrl: string
  readonly log: (line: string) => void
  /** How to reach them: the global `fetch` unless given (tests pass an in-memory one). */
  readonly fetch?: ((url: string) => Promise<Response>) | undefined
}

/** A transient failure of a remote API: retried with backoff. */
export class ServiceUnavailable extends Schema.TaggedError<ServiceUnavailable>()("ServiceUnavailable", {
  service: Schema.String,
  status: Schema.Number
}) {}

const Body = Schema.Record(Schema.String, Schema.Unknown)

/** GET `path` on `service`; a non-2xx answer or a network error is a `ServiceUnavailable`. */
export const call = (services: Services, service: string, path: string) =>
  Effect.gen(function* () {
    const attempt = yield* Activity.attempt
    const key = yield* Activity.persistenceId
    services.log(`▶ ${key.split("/")[1]}  attempt ${attempt}`)
    const response = yield* Effect.tryPromise({
      try: () => (services.fetch ?? fetch)(`${services.baseUrl}/${service}${path}`),
      catch: () => new ServiceUnavailable({ service, status: 0 })
    })
    if (!response.ok) {
      services.log(`  ✗ ${service} answered ${response.status}: will retry`)
      return yield* new ServiceUnavailable({ service, status: response.status })
    }
    const body = yield* Effect.tryPromise({
      try: () => response.json(),
      catch: () => new ServiceUnavailable({ service, status: response.status })
    })
    const decoded = yield* Schema.decodeUnknownEffect(Body)(body).pipe(Effect.orDie)
    services.log(`  ✓ ${service}: ${JSON.stringify(decoded)}`)
    return decoded
  })
