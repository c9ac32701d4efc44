export {
  DEFAULT_MAX_DEPTH,
  DEFAULT_MAX_INBOUND_BYTES,
  type DecodeOptions,
  decode,
} from "./decode.ts";
export { DEFAULT_MAX_OUTBOUND_BYTES, encode } from "./encode.ts";
export type * from "./types.ts";
export { CODEC_ERROR_CODES } from "./types.ts";
export {
  buildFields,
  childElement,
  childText,
  childTexts,
  childValue,
  type FieldValue,
  readFields,
} from "./xml-tree.ts";
