/**
 * The request that starts a workflow: a tagged schema class carrying its payload fields plus the
 * schemas of the workflow's success and failure (effect 3's `Schema.TaggedRequest`, which
 * effect 4 no longer has).
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { Workflow } from "effect-cluster"
 *
 * class ProcessPaymentRequest extends Workflow.TaggedRequest<ProcessPaymentRequest>()("ProcessPaymentRequest", {
 *   failure: Schema.Never,
 *   success: Schema.Boolean,
 *   payload: { orderId: Schema.String, cardNumber: Schema.String }
 * }) {}
 * ```
 */
import { Schema } from "effect"
import type { AnyCodec } from "./internal/codec.ts"

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
      {}
    >
    // A fresh class per call, so adding statics to it touches nothing shared.
    return Object.assign(base, { tag, success: options.success, failure: options.failure }) as typeof base & {
      readonly tag: Tag
      readonly success: S
      readonly failure: F
    }
  }

/** What the engine needs of a request class (any `TaggedRequest` class has it). */
export interface AnyRequestClass extends AnyCodec {
  readonly tag: string
  readonly success: AnyCodec
  readonly failure: AnyCodec
  new (...args: any): { readonly _tag: string }
}

/** The instance type of a request class. */
export type RequestOf<C extends AnyRequestClass> = InstanceType<C>
/** The success type of a request class. */
export type SuccessOf<C extends AnyRequestClass> = C["success"]["Type"]
/** The failure type of a request class. */
export type FailureOf<C extends AnyRequestClass> = C["failure"]["Type"]
