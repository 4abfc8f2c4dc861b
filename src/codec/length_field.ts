/**
 * Length-prefixed framing with the semantics of Netty's `LengthFieldBasedFrameDecoder` (decoding) and
 * `LengthFieldPrepender` (encoding).
 *
 * @module
 */
import type { Codec, ReadResult } from "../codec.ts";
import { CodecError, InvalidOptionError, MessageTooLongError } from "../errors.ts";
import { checkKnownKeys, checkOneOf, optInt } from "../options.ts";
import { markExactWriter } from "./exact.ts";
import { packageBytes } from "./package_bytes.ts";
import type { Session } from "../session.ts";

/** Options of {@link LengthFieldCodec}. Every field is optional. */
export interface LengthFieldCodecOptions {
  /** Offset of the length field from the start of the frame, in bytes. Default `0`. */
  readonly lengthFieldOffset?: number;
  /** Width of the length field in bytes: 1, 2, 3, 4 or 8. Default `4`. */
  readonly lengthFieldLength?: 1 | 2 | 3 | 4 | 8;
  /** Byte order of the length field. Default `"big"` (network order). */
  readonly byteOrder?: "big" | "little";
  /**
   * Added to the length field's value to get the number of bytes that follow the field (may be negative).
   * Default `0`. Example: `-4` with a 4-byte field means "the value counts the header too".
   */
  readonly lengthAdjustment?: number;
  /**
   * Bytes dropped from the start of each frame to make the package. Default
   * `lengthFieldOffset + lengthFieldLength` (the package is the body); `0` keeps the whole frame.
   */
  readonly initialBytesToStrip?: number;
  /** Largest accepted frame, header included. Default `Number.MAX_SAFE_INTEGER`. */
  readonly maxFrameLength?: number;
}

const KNOWN = [
  "lengthFieldOffset",
  "lengthFieldLength",
  "byteOrder",
  "lengthAdjustment",
  "initialBytesToStrip",
  "maxFrameLength",
] as const;
const WIDTHS = [1, 2, 3, 4, 8] as const;
const MAX = Number.MAX_SAFE_INTEGER;

/**
 * Frames packages with a length field. Decoding: the frame is
 * `lengthFieldOffset + lengthFieldLength + value + lengthAdjustment` bytes long and the package is the
 * frame without its first `initialBytesToStrip` bytes. Encoding (only for `lengthFieldOffset` 0 with
 * `initialBytesToStrip === lengthFieldLength`) prepends the field so that decoding gives the package back.
 *
 * @example Two-byte big-endian length prefix
 * ```ts
 * import { LengthFieldCodec } from "./mod.ts";
 *
 * const codec = new LengthFieldCodec({ lengthFieldLength: 2 });
 * const frame = codec.write(undefined, new Uint8Array([7, 8, 9])); // [0, 3, 7, 8, 9]
 * const result = codec.read(undefined, frame); // { pkg: Uint8Array [7, 8, 9], length: 5 }
 * ```
 */
export class LengthFieldCodec implements Codec<Uint8Array> {
  readonly #offset: number;
  readonly #width: number;
  readonly #little: boolean;
  readonly #adjustment: number;
  readonly #strip: number;
  readonly #maxFrame: number;
  readonly #headerEnd: number;
  /** Largest value the length field holds. */
  readonly #limit: number;
  /** Whether `write` can produce this layout (offset 0, the header stripped). */
  readonly #encodable: boolean;

  /** Creates the codec; throws {@link InvalidOptionError} naming the first invalid option. */
  constructor(options: LengthFieldCodecOptions = {}) {
    if (typeof options !== "object" || options === null) {
      throw new InvalidOptionError("LengthFieldCodec", "options must be an object");
    }
    checkKnownKeys("LengthFieldCodec", options, KNOWN);
    this.#offset = optInt("lengthFieldOffset", options.lengthFieldOffset, 0, 0);
    this.#width = options.lengthFieldLength === undefined
      ? 4
      : checkOneOf("lengthFieldLength", options.lengthFieldLength, WIDTHS);
    this.#little = (options.byteOrder === undefined ? "big" : checkOneOf("byteOrder", options.byteOrder, [
      "big",
      "little",
    ])) === "little";
    this.#adjustment = optInt("lengthAdjustment", options.lengthAdjustment, 0, -MAX);
    this.#headerEnd = this.#offset + this.#width;
    this.#strip = optInt("initialBytesToStrip", options.initialBytesToStrip, this.#headerEnd, 0);
    this.#maxFrame = optInt("maxFrameLength", options.maxFrameLength, MAX, 1);
    this.#limit = this.#width === 8 ? MAX : 2 ** (8 * this.#width) - 1;
    this.#encodable = this.#offset === 0 && this.#strip === this.#width;
    markExactWriter(this);
    if (this.#maxFrame < this.#headerEnd) {
      throw new InvalidOptionError(
        "maxFrameLength",
        `must be >= lengthFieldOffset + lengthFieldLength (${this.#headerEnd}) (got ${this.#maxFrame})`,
      );
    }
  }

  /**
   * Decodes one frame from the start of `data` (see {@link ReadResult}). The package is a view of `data` (on Bun, a
   * copy when at most 256 bytes: cheaper there; see codec/package_bytes.ts).
   */
  read(session: Session<Uint8Array> | undefined, data: Uint8Array): ReadResult<Uint8Array> {
    return this.readAt(session, data, 0);
  }

  /** {@link read} for the bytes of `data` from `offset` on. */
  readAt(_session: Session<Uint8Array> | undefined, data: Uint8Array, offset: number): ReadResult<Uint8Array> {
    const available = data.length - offset;
    if (available < this.#headerEnd) return undefined;
    const value = this.#getValue(data, offset);
    const frameLength = this.#headerEnd + value + this.#adjustment;
    // One range check for the common case; the cold path names what is wrong.
    if (
      !(value <= MAX && frameLength >= this.#strip && frameLength >= this.#headerEnd && frameLength <= this.#maxFrame)
    ) {
      throw this.#frameError(value, frameLength);
    }
    if (available < frameLength) return { declared: frameLength };
    return { pkg: packageBytes(data, offset + this.#strip, offset + frameLength), length: frameLength };
  }

  /** The error for a length field whose frame cannot be decoded (kept out of the hot path). */
  #frameError(value: number, frameLength: number): Error {
    if (!Number.isSafeInteger(value)) {
      return new CodecError(`length field value ${value} exceeds Number.MAX_SAFE_INTEGER`);
    }
    if (frameLength < this.#headerEnd) {
      return new CodecError(
        `invalid frame: length field value ${value} with lengthAdjustment ${this.#adjustment} gives a frame of ` +
          `${frameLength} bytes, shorter than the ${this.#headerEnd}-byte header`,
      );
    }
    if (frameLength > this.#maxFrame) {
      return new MessageTooLongError(frameLength, this.#maxFrame, "frame", "maxFrameLength");
    }
    return new CodecError(`invalid frame: initialBytesToStrip ${this.#strip} exceeds the frame length ${frameLength}`);
  }

  /**
   * Encodes `pkg` as length field + `pkg` in one new buffer. Throws {@link CodecError} when the layout
   * cannot be encoded or the value does not fit the field, {@link MessageTooLongError} above `maxFrameLength`.
   */
  write(session: Session<Uint8Array> | undefined, pkg: Uint8Array): Uint8Array {
    const out = new Uint8Array(this.encodedLength(session, pkg));
    this.encodeInto(session, pkg, out, 0);
    return out;
  }

  /** The encoded size of `pkg` (header + body); validates like {@link write}. */
  encodedLength(_session: Session<Uint8Array> | undefined, pkg: Uint8Array): number {
    const frameLength = this.#width + pkg.length;
    const value = pkg.length - this.#adjustment;
    if (!(this.#encodable && frameLength <= this.#maxFrame && value >= 0 && value <= this.#limit)) {
      throw this.#encodeError(pkg.length, frameLength, value);
    }
    return frameLength;
  }

  /** The error for a package this codec cannot encode (kept out of the hot path). */
  #encodeError(length: number, frameLength: number, value: number): Error {
    if (!this.#encodable) {
      return new CodecError(
        "LengthFieldCodec can only encode frames with lengthFieldOffset 0 and initialBytesToStrip equal to " +
          "lengthFieldLength; supply your own Writer for this layout",
      );
    }
    if (frameLength > this.#maxFrame) {
      return new MessageTooLongError(frameLength, this.#maxFrame, "frame", "maxFrameLength");
    }
    return new CodecError(
      `cannot encode a ${length}-byte package: length field value ${value} does not fit ` +
        `${this.#width} byte(s) (0..${this.#limit})`,
    );
  }

  /** Writes the header and `pkg` into `target` at `offset` (call {@link encodedLength} first to validate). */
  encodeInto(_session: Session<Uint8Array> | undefined, pkg: Uint8Array, target: Uint8Array, offset: number): void {
    const value = pkg.length - this.#adjustment;
    if (this.#width === 4 && !this.#little) {
      target[offset] = value >>> 24;
      target[offset + 1] = (value >>> 16) & 0xff;
      target[offset + 2] = (value >>> 8) & 0xff;
      target[offset + 3] = value & 0xff;
    } else {
      this.#putValue(target, offset, value);
    }
    target.set(pkg, offset + this.#width);
  }

  /** Writes `value` as the length field of any width and byte order (the 4-byte big-endian case is inline). */
  #putValue(target: Uint8Array, offset: number, value: number): void {
    const width = this.#width;
    for (let i = 0; i < width; i++) {
      target[offset + (this.#little ? i : width - 1 - i)] = value % 256;
      value = Math.floor(value / 256);
    }
  }

  /** The length field as an unsigned number (may be unsafe for 8-byte fields; the caller checks). */
  #getValue(data: Uint8Array, offset: number): number {
    const at = offset + this.#offset;
    if (this.#width === 4 && !this.#little) {
      return ((data[at] << 24) | (data[at + 1] << 16) | (data[at + 2] << 8) | data[at + 3]) >>> 0;
    }
    return this.#getValueAnyWidth(data, at);
  }

  /** The length field at `at`, any width and byte order. */
  #getValueAnyWidth(data: Uint8Array, at: number): number {
    let value = 0;
    for (let i = 0; i < this.#width; i++) {
      value = value * 256 + data[at + (this.#little ? this.#width - 1 - i : i)];
    }
    return value;
  }
}
