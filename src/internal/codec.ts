/**
 * JSON encoding and decoding of journal payloads with the user's schemas, reporting the path of
 * the first bad field. Everything the engine stores goes through here.
 */
import { Effect, Result, Schema, SchemaIssue } from "effect"

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

interface Codecs {
  readonly encode: (value: unknown) => Result.Result<unknown, Schema.SchemaError>
  readonly decode: (value: unknown) => Result.Result<unknown, Schema.SchemaError>
}

/** Synchronous JSON codecs of `schema`, built once per schema object (this is on the hot path). */
const codecsCache = new WeakMap<object, Codecs>()
const codecs = (schema: AnyCodec): Codecs => {
  let cached = codecsCache.get(schema)
  if (cached === undefined) {
    const json = Schema.toCodecJson(schema)
    cached = { encode: Schema.encodeUnknownResult(json), decode: Schema.decodeUnknownResult(json) }
    codecsCache.set(schema, cached)
  }
  return cached
}

/** Encodes `value` to JSON text with `schema`. */
export const encodeJsonResult = (schema: AnyCodec, value: unknown): Result.Result<string, CodecFailure> => {
  const encoded = codecs(schema).encode(value)
  return Result.isSuccess(encoded)
    ? Result.succeed(JSON.stringify(encoded.success))
    : Result.fail(toFailure(encoded.failure))
}

/**
 * Encodes `value` to JSON text and decodes it back: the text to store, and the value a replay will
 * see. A lossy schema (one that drops fields, say) must not let the first run see more than the
 * replays do.
 */
export const encodeJsonRoundTrip = (
  schema: AnyCodec,
  value: unknown
): Result.Result<{ readonly json: string; readonly value: unknown }, CodecFailure> => {
  const { encode, decode } = codecs(schema)
  const encoded = encode(value)
  if (Result.isFailure(encoded)) return Result.fail(toFailure(encoded.failure))
  const json = JSON.stringify(encoded.success)
  const decoded = decode(JSON.parse(json))
  return Result.isSuccess(decoded)
    ? Result.succeed({ json, value: decoded.success })
    : Result.fail(toFailure(decoded.failure))
}

/** Decodes JSON text with `schema`. Malformed JSON is reported at the root. */
export const decodeJsonResult = <A>(
  schema: Schema.Codec<A, any, never, never>,
  text: string
): Result.Result<A, CodecFailure> => {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (cause) {
    return Result.fail(failureAt([], `malformed JSON: ${String(cause)}`))
  }
  const decoded = codecs(schema).decode(parsed)
  // The codec decodes with `schema`, whose type is A.
  return Result.isSuccess(decoded)
    ? Result.succeed(decoded.success as A)
    : Result.fail(toFailure(decoded.failure))
}

const toEffect = <A>(result: Result.Result<A, CodecFailure>): Effect.Effect<A, CodecFailure> =>
  Result.isSuccess(result) ? Effect.succeed(result.success) : Effect.fail(result.failure)

/** `encodeJsonResult` as an effect. */
export const encodeJson = (schema: AnyCodec, value: unknown): Effect.Effect<string, CodecFailure> =>
  Effect.suspend(() => toEffect(encodeJsonResult(schema, value)))

/** `decodeJsonResult` as an effect. */
export const decodeJson = <A>(
  schema: Schema.Codec<A, any, never, never>,
  text: string
): Effect.Effect<A, CodecFailure> => Effect.suspend(() => toEffect(decodeJsonResult(schema, text)))

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

/**
 * Stored JSON text (a payload, a state, an outcome) for a reader to show: parsed, or the text as
 * it is when it is not JSON (a reader shows what is stored rather than failing); null for none.
 */
export const parseStored = (text: string | null | undefined): unknown => {
  if (text === null || text === undefined) return null
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}
