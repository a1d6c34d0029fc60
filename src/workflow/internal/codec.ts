/** The JSON codecs of the workflow layer: the shared ones (`src/internal/codec.ts`). */
export * from "../../internal/codec.ts"
