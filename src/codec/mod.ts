/**
 * Built-in codecs: length-field framing, delimiter and line framing, and adapters that run any codec as a
 * web `TransformStream`.
 *
 * @module
 */
export { LengthFieldCodec, type LengthFieldCodecOptions } from "./length_field.ts";
export {
  type Delimiter,
  DelimiterCodec,
  type DelimiterCodecOptions,
  LineCodec,
  type LineCodecOptions,
} from "./delimiter.ts";
export { decodeStream, type DecodeStreamOptions, encodeStream } from "./streams.ts";
