/**
 * JSON encoding and decoding of journal payloads with the user's schemas, reporting the path of
 * the first bad field. Everything the engine stores goes through here.
 */
import { Effect, Schema, SchemaIssue } from "effect"

/** A schema whose encoding and decoding need no services: what can be journaled. */
export type AnyCodec = Schema.Codec<any, any, never, never>

/** Why a value did not encode or decode: the field path and a readable message. */
export interface CodecFailure {
  /** The path of the first bad field as JSON, e.g. `["order","amount"]`, or `<root>`. */
  readonly path: string
  readonly segments: ReadonlyArray<string>
  readonly message: string
}

const formatter = SchemaIssue.makeFormatterStandardSchemaV1()

const failureAt = (segments: ReadonlyArray<string>, message: string): CodecFailure => ({
  path: segments.length === 0 ? "<root>" : JSON.stringify(segments),
  segments,
  message
})

const toFailure = (error: Schema.SchemaError): CodecFailure => {
  const first = formatter(error.issue).issues[0]
  return failureAt((first?.path ?? []).map(String), error.message)
}

/**
 * Drops the `Exit` envelope from a failure's path (`value`, or `cause, n, error`), so that errors
 * name the field of the user's value.
 */
export const withoutExitEnvelope = (failure: CodecFailure): CodecFailure => {
  const [head, , kind] = failure.segments
  if (head === "value") return failureAt(failure.segments.slice(1), failure.message)
  if (head === "cause" && (kind === "error" || kind === "defect")) {
    return failureAt(failure.segments.slice(3), failure.message)
  }
  return failure
}

/** A JSON codec for `schema`, cached per schema object. */
const jsonCodecs = new WeakMap<object, AnyCodec>()
export const jsonCodec = (schema: AnyCodec): AnyCodec => {
  let codec = jsonCodecs.get(schema)
  if (codec === undefined) {
    codec = Schema.toCodecJson(schema)
    jsonCodecs.set(schema, codec)
  }
  return codec
}

/** Encodes `value` to JSON text with `schema`. */
export const encodeJson = (schema: AnyCodec, value: unknown): Effect.Effect<string, CodecFailure> =>
  Schema.encodeUnknownEffect(jsonCodec(schema))(value).pipe(
    Effect.map((encoded) => JSON.stringify(encoded)),
    Effect.mapError(toFailure)
  )

/** Decodes JSON text with `schema`. Malformed JSON is reported at the root. */
export const decodeJson = <A>(
  schema: Schema.Codec<A, any, never, never>,
  text: string
): Effect.Effect<A, CodecFailure> =>
  Effect.suspend(() => {
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
    } catch (cause) {
      return Effect.fail(failureAt([], `malformed JSON: ${String(cause)}`))
    }
    return Schema.decodeUnknownEffect(jsonCodec(schema))(parsed).pipe(Effect.mapError(toFailure))
  })

const exitSchemas = new WeakMap<object, WeakMap<object, AnyCodec>>()
/** The schema of an `Exit` with typed failures and structured defects, cached per pair. */
export const exitSchema = (success: AnyCodec, failure: AnyCodec): AnyCodec => {
  let byFailure = exitSchemas.get(success)
  if (byFailure === undefined) {
    byFailure = new WeakMap()
    exitSchemas.set(success, byFailure)
  }
  let schema = byFailure.get(failure)
  if (schema === undefined) {
    schema = Schema.Exit(success, failure, Schema.Defect())
    byFailure.set(failure, schema)
  }
  return schema
}
