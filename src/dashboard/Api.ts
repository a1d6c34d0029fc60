/**
 * The dashboard's JSON API: each route decodes its query or body with a schema (`Requests.ts`),
 * asks `Admin`, and answers JSON. A failure is answered `{ "error": { "_tag", "message" } }` with
 * the status its kind calls for (400 bad input, 404 unknown id, 503 store unreachable, 500 else).
 */
import { Effect, Layer, Option, Schema } from "effect"
import { HttpRouter, type HttpServerRequest, HttpServerResponse } from "effect/http"
import { Admin } from "../admin/Admin.ts"
import * as ExecutionTimeline from "../admin/ExecutionTimeline.ts"
import { InvalidRequestError } from "./DashboardErrors.ts"
import * as Requests from "./Requests.ts"

const STATUS_OF_TAG: Readonly<Record<string, number>> = {
  InvalidRequestError: 400,
  InvalidArgumentError: 400,
  InvalidCursorError: 400,
  InvalidIdentifierError: 400,
  InvalidSignalPayloadError: 400,
  UnsupportedByStoreError: 400,
  ExecutionNotFoundError: 404,
  DeadLetterNotFoundError: 404,
  StoreUnavailableError: 503
}

/** The JSON error response of a failure. */
export const errorResponse = (error: unknown, status?: number): HttpServerResponse.HttpServerResponse => {
  const tag =
    typeof error === "object" && error !== null && "_tag" in error && typeof error._tag === "string"
      ? error._tag
      : "Error"
  const message = error instanceof Error ? error.message : String(error)
  const own =
    typeof error === "object" && error !== null && "status" in error && typeof error.status === "number"
      ? error.status
      : undefined
  return HttpServerResponse.jsonUnsafe(
    { error: { _tag: tag, message } },
    { status: status ?? own ?? STATUS_OF_TAG[tag] ?? 500 }
  )
}

const json = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  effect.pipe(
    Effect.map((body) => HttpServerResponse.jsonUnsafe(body)),
    Effect.catch((error) => Effect.succeed(errorResponse(error))),
    Effect.catchDefect((defect) => Effect.succeed(errorResponse(defect, 500)))
  )

const decode =
  <S extends Schema.Top & { readonly DecodingServices: never }>(schema: S, part: string) =>
  (input: unknown): Effect.Effect<S["Type"], InvalidRequestError> =>
    Schema.decodeUnknownEffect(schema)(input).pipe(
      Effect.mapError((error) => new InvalidRequestError({ part, detail: error.message }))
    )

/** The query parameters of a request (a repeated parameter is an error: which one is meant?). */
const queryOf = (request: HttpServerRequest.HttpServerRequest) =>
  Effect.suspend(() => {
    const params = new URL(request.url, "http://dashboard").searchParams
    const query: Record<string, string> = {}
    for (const [key, value] of params) {
      if (key in query) {
        return Effect.fail(
          new InvalidRequestError({ part: "query", detail: `the parameter ${key} is given twice` })
        )
      }
      query[key] = value
    }
    return Effect.succeed(query)
  })

const query = <S extends Schema.Top & { readonly DecodingServices: never }>(
  request: HttpServerRequest.HttpServerRequest,
  schema: S
) => Effect.flatMap(queryOf(request), decode(schema, "query"))

const body = <S extends Schema.Top & { readonly DecodingServices: never }>(
  request: HttpServerRequest.HttpServerRequest,
  schema: S
) =>
  request.json.pipe(
    Effect.mapError(() => new InvalidRequestError({ part: "body", detail: "expected a JSON object" })),
    Effect.flatMap(decode(schema, "body"))
  )

const nextOf = (next: Option.Option<string>) => Option.getOrNull(next)

/** The API routes (they need `Admin`). */
export const routes = Layer.mergeAll(
  HttpRouter.add("GET", "/api/executions", (request) =>
    json(
      Effect.gen(function* () {
        const admin = yield* Admin
        const q = yield* query(request, Requests.ExecutionsQuery)
        const since = q.since === undefined ? undefined : Requests.instantMillis(q.since)
        const page = yield* admin.executions({
          workflow: q.workflow,
          status: q.status,
          since,
          limit: q.limit ?? 25,
          cursor: q.cursor
        })
        const counts = yield* admin.counts({ workflow: q.workflow, since })
        return { executions: page.executions, next: nextOf(page.next), counts }
      })
    )
  ),
  HttpRouter.add("GET", "/api/execution", (request) =>
    json(
      Effect.gen(function* () {
        const admin = yield* Admin
        const { id } = yield* query(request, Requests.ExecutionQuery)
        // One read of the journal for both views, so the timeline and the document agree.
        const journal = yield* admin.exportJournal(id)
        return { ...ExecutionTimeline.fromJournal(journal), journal }
      })
    )
  ),
  HttpRouter.add("POST", "/api/execution/resume", (request) =>
    json(
      Effect.gen(function* () {
        const { id } = yield* body(request, Requests.ExecutionBody)
        return yield* (yield* Admin).resume(id)
      })
    )
  ),
  HttpRouter.add("POST", "/api/execution/interrupt", (request) =>
    json(
      Effect.gen(function* () {
        const { id } = yield* body(request, Requests.ExecutionBody)
        return yield* (yield* Admin).interrupt(id)
      })
    )
  ),
  HttpRouter.add("POST", "/api/execution/signal", (request) =>
    json(
      Effect.gen(function* () {
        const { id, name, payload } = yield* body(request, Requests.SignalBody)
        return yield* (yield* Admin).signal(id, name, payload)
      })
    )
  ),
  HttpRouter.add(
    "GET",
    "/api/cluster",
    json(
      Effect.gen(function* () {
        const admin = yield* Admin
        const pods = yield* admin.pods()
        const shards = yield* admin.shards()
        return { clustered: pods.clustered || shards.clustered, pods: pods.pods, shards: shards.shards }
      })
    )
  ),
  HttpRouter.add("GET", "/api/entity", (request) =>
    json(
      Effect.gen(function* () {
        const { type, id } = yield* query(request, Requests.EntityQuery)
        return yield* (yield* Admin).entity(type, id)
      })
    )
  ),
  HttpRouter.add("GET", "/api/dead-letters", (request) =>
    json(
      Effect.gen(function* () {
        const q = yield* query(request, Requests.DeadLettersQuery)
        const page = yield* (yield* Admin).deadLetters({
          entityType: q.type,
          limit: q.limit ?? 50,
          cursor: q.cursor
        })
        return { deadLetters: page.deadLetters, next: nextOf(page.next) }
      })
    )
  ),
  HttpRouter.add("POST", "/api/dead-letters/replay", (request) =>
    json(
      Effect.gen(function* () {
        const { key } = yield* body(request, Requests.ReplayBody)
        yield* (yield* Admin).replayDeadLetter(key)
        return { _tag: "Replayed", key }
      })
    )
  )
)
