/**
 * Codecs as web streams: {@link decodeStream} turns bytes into packages with any {@link Reader},
 * {@link encodeStream} turns packages into bytes with any {@link Writer}. The codec gets `undefined` as
 * its session.
 *
 * @module
 */
import type { Reader, Writer } from "../codec.ts";
import { CodecError, InvalidOptionError, MessageTooLongError } from "../errors.ts";
import { checkKnownKeys, optInt } from "../options.ts";

/** Options of {@link decodeStream}. */
export interface DecodeStreamOptions {
  /**
   * Largest package in bytes (frame as consumed by the reader), checked against declared lengths as soon
   * as the header is read and against undecoded data. Default `Number.MAX_SAFE_INTEGER`.
   */
  readonly maxMsgLen?: number;
}

/**
 * A stream that decodes bytes into packages with `reader`. Chunks are accumulated until a frame can be
 * complete and every complete package is emitted (packages may be views of the received bytes). The stream errors with {@link MessageTooLongError} above `maxMsgLen`,
 * with {@link CodecError} when the reader returns an invalid result or the input ends inside a frame, and
 * with whatever the reader throws.
 *
 * @example
 * ```ts
 * import { decodeStream, LineCodec } from "./mod.ts";
 *
 * const bytes = ReadableStream.from([new TextEncoder().encode("a\nb\n")]);
 * for await (const line of bytes.pipeThrough(decodeStream(new LineCodec()))) console.log(line);
 * ```
 */
export function decodeStream<P>(reader: Reader<P>, options: DecodeStreamOptions = {}): TransformStream<Uint8Array, P> {
  if (typeof options !== "object" || options === null) {
    throw new InvalidOptionError("decodeStream", "options must be an object");
  }
  checkKnownKeys("decodeStream", options, ["maxMsgLen"]);
  const max = optInt("maxMsgLen", options.maxMsgLen, Number.MAX_SAFE_INTEGER, 1);
  // Bytes of an incomplete frame, kept as owned chunks and joined only once the frame can be complete:
  // packages may be views of the joined bytes, so they are never reused.
  let parts: Uint8Array[] = [];
  let pending = 0;
  let need = 0;

  /** Emits every complete package at the start of `data`; returns how many bytes were consumed. */
  const drain = (data: Uint8Array, controller: TransformStreamDefaultController<P>): number => {
    let offset = 0;
    while (offset < data.length) {
      const view = data.subarray(offset);
      const result = reader.read(undefined, view);
      if (result === undefined) {
        if (view.length > max) throw new MessageTooLongError(view.length, max, "undecoded data");
        break;
      }
      if ("declared" in result) {
        const declared: unknown = result.declared;
        if (typeof declared !== "number" || !Number.isInteger(declared)) {
          throw new CodecError(`reader declared an invalid frame length ${String(declared)}`);
        }
        if (declared > max) throw new MessageTooLongError(declared, max, "declared frame");
        if (declared <= view.length) {
          throw new CodecError(`reader declared a ${declared}-byte frame but ${view.length} bytes are available`);
        }
        need = declared;
        break;
      }
      const length: unknown = result.length;
      if (typeof length !== "number" || !Number.isInteger(length) || length < 1 || length > view.length) {
        throw new CodecError(`reader returned length ${String(length)} with ${view.length} bytes available`);
      }
      if (length > max) throw new MessageTooLongError(length, max);
      controller.enqueue(result.pkg);
      offset += length;
    }
    return offset;
  };

  return new TransformStream<Uint8Array, P>({
    transform(chunk, controller) {
      let data = chunk;
      if (pending > 0) {
        parts.push(chunk);
        pending += chunk.length;
        if (pending < need) return; // the pending frame is still incomplete
        data = new Uint8Array(pending);
        let offset = 0;
        for (const p of parts) {
          data.set(p, offset);
          offset += p.length;
        }
      }
      need = 0;
      const used = drain(data, controller);
      parts = used < data.length ? [data.subarray(used)] : [];
      pending = data.length - used;
    },
    flush() {
      if (pending > 0) throw new CodecError(`stream ended inside a frame (${pending} bytes pending)`);
    },
  });
}

/**
 * A stream that encodes each package with `writer`; the stream errors with whatever the writer throws.
 *
 * @example
 * ```ts
 * import { encodeStream, LengthFieldCodec } from "./mod.ts";
 *
 * const frames = ReadableStream.from([new Uint8Array([1, 2])]).pipeThrough(encodeStream(new LengthFieldCodec()));
 * ```
 */
export function encodeStream<P>(writer: Writer<P>): TransformStream<P, Uint8Array> {
  return new TransformStream<P, Uint8Array>({
    transform(pkg, controller) {
      const out = writer.write(undefined, pkg);
      controller.enqueue(typeof out === "string" ? new TextEncoder().encode(out) : out);
    },
  });
}
