/**
 * Messages of entities. A message is any schema class; a **request** is a message with a typed
 * reply: a tagged class that also carries the schemas of its success and failure (effect 3's
 * `Schema.TaggedRequest`, which effect 4 no longer has). `Sharding.messenger(type).send` returns a
 * request's success, or fails with its failure.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { Message } from "effect-cluster"
 *
 * class GetCurrent extends Message.TaggedRequest<GetCurrent>()("GetCurrent", {
 *   failure: Schema.Never,
 *   success: Schema.Number,
 *   payload: { messageId: Schema.String }
 * }) {}
 * ```
 */
import { Schema } from "effect"
import type { AnyCodec } from "../internal/codec.ts"

/** Carries a request's reply types on its instances (types only: no such property exists). */
export declare const ReplyTypes: unique symbol

/** The reply types of a request instance. */
export interface Replies<S, F> {
  readonly [ReplyTypes]?: { readonly success: S; readonly failure: F }
}

/**
 * Defines a request class. Instances are validated by the payload schema when constructed; the
 * class is itself a schema, and carries `tag`, `success` and `failure` as statics.
 */
export const TaggedRequest =
  <Self = never>() =>
  <Tag extends string, const Payload extends Schema.Struct.Fields, S extends AnyCodec, F extends AnyCodec>(
    tag: Tag,
    options: { readonly payload: Payload; readonly success: S; readonly failure: F }
  ) => {
    // The `Self` check of TaggedClass cannot resolve for a generic Self; callers pass their class.
    const base = Schema.TaggedClass<Self>()(tag, options.payload) as unknown as Schema.Class<
      Self,
      Schema.TaggedStruct<Tag, Payload>,
      Replies<S["Type"], F["Type"]>
    >
    // A fresh class per call, so adding statics to it touches nothing shared.
    return Object.assign(base, { tag, success: options.success, failure: options.failure }) as typeof base & {
      readonly tag: Tag
      readonly success: S
      readonly failure: F
    }
  }

/** What a request class has (any `TaggedRequest` class). */
export interface AnyRequestClass extends AnyCodec {
  readonly tag: string
  readonly success: AnyCodec
  readonly failure: AnyCodec
  new (...args: any): { readonly _tag: string }
}

/** The success type of a request instance. */
export type SuccessOf<M> = M extends Replies<infer S, any> ? S : never
/** The failure type of a request instance. */
export type FailureOf<M> = M extends Replies<any, infer F> ? F : never

/** Whether `message` is an instance of a request class: its class carries reply schemas. */
export const requestClassOf = (message: unknown): AnyRequestClass | undefined => {
  if (typeof message !== "object" || message === null) return undefined
  const ctor = (message as { readonly constructor?: unknown }).constructor as
    | Partial<AnyRequestClass>
    | undefined
  return ctor !== undefined &&
    Schema.isSchema(ctor.success) &&
    Schema.isSchema(ctor.failure) &&
    typeof ctor.tag === "string"
    ? (ctor as AnyRequestClass)
    : undefined
}
