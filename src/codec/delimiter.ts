/**
 * Delimiter framing: {@link DelimiterCodec} for bytes (Netty's `DelimiterBasedFrameDecoder`) and
 * {@link LineCodec} for UTF-8 text lines (`\n` or `\r\n`).
 *
 * @module
 */
import type { Codec, ReadResult } from "../codec.ts";
import { CodecError, InvalidOptionError, MessageTooLongError } from "../errors.ts";
import { checkKnownKeys, optInt } from "../options.ts";
import type { Session } from "../session.ts";
import { packageBytes } from "./package_bytes.ts";

/** A delimiter: a non-empty string (UTF-8 encoded) or byte sequence. */
export type Delimiter = string | Uint8Array;

/** Options of {@link DelimiterCodec}. Every field is optional. */
export interface DelimiterCodecOptions {
  /**
   * One delimiter or several. A frame ends at the earliest delimiter; at one position the longest wins.
   * `write` appends the first one. Default `"\n"`.
   */
  readonly delimiters?: Delimiter | readonly Delimiter[];
  /** Whether packages exclude their delimiter. Default `true`. */
  readonly stripDelimiter?: boolean;
  /** Largest frame in bytes, delimiter excluded. Default `Number.MAX_SAFE_INTEGER`. */
  readonly maxFrameLength?: number;
}

/** Options of {@link LineCodec}. */
export interface LineCodecOptions {
  /** Largest line in UTF-8 bytes, line ending excluded. Default `Number.MAX_SAFE_INTEGER`. */
  readonly maxLineLength?: number;
}

const MAX = Number.MAX_SAFE_INTEGER;
const LF = 0x0a;
const CR = 0x0d;
const encoder = new TextEncoder();

function checkOptions(where: string, options: unknown, known: readonly string[]): void {
  if (typeof options !== "object" || options === null) {
    throw new InvalidOptionError(where, "options must be an object");
  }
  checkKnownKeys(where, options, known);
}

/** Index of the first occurrence of `needle` in `data` at or before `last` (a start index), or -1. */
function find(data: Uint8Array, needle: Uint8Array, last: number): number {
  const first = needle[0];
  last = Math.min(last, data.length - needle.length);
  for (let i = data.indexOf(first); i !== -1 && i <= last; i = data.indexOf(first, i + 1)) {
    let j = 1;
    while (j < needle.length && data[i + j] === needle[j]) j++;
    if (j === needle.length) return i;
  }
  return -1;
}

/**
 * Splits a byte stream at delimiters. A frame ends at the earliest delimiter; when several match at the
 * same position the longest wins. If the data ends inside a delimiter that could still win once more
 * bytes arrive, `read` waits for them, so the result never depends on how the stream was chunked.
 *
 * @example NUL-terminated messages
 * ```ts
 * import { DelimiterCodec } from "./mod.ts";
 *
 * const codec = new DelimiterCodec({ delimiters: new Uint8Array([0]) });
 * const bytes = codec.write(undefined, new TextEncoder().encode("hi")); // [104, 105, 0]
 * const result = codec.read(undefined, bytes); // { pkg: Uint8Array [104, 105], length: 3 }
 * ```
 */
export class DelimiterCodec implements Codec<Uint8Array> {
  readonly #delimiters: readonly Uint8Array[];
  readonly #strip: boolean;
  readonly #maxFrame: number;
  readonly #longest: number;

  /** Creates the codec; throws {@link InvalidOptionError} naming the first invalid option. */
  constructor(options: DelimiterCodecOptions = {}) {
    checkOptions("DelimiterCodec", options, ["delimiters", "stripDelimiter", "maxFrameLength"]);
    const given = options.delimiters ?? "\n";
    const list: readonly unknown[] = Array.isArray(given) ? given : [given];
    if (list.length === 0) throw new InvalidOptionError("delimiters", "must not be empty");
    this.#delimiters = list.map((d, i) => {
      const bytes = typeof d === "string" ? encoder.encode(d) : d instanceof Uint8Array ? d.slice() : undefined;
      if (bytes === undefined || bytes.length === 0) {
        throw new InvalidOptionError(
          Array.isArray(given) ? `delimiters[${i}]` : "delimiters",
          "must be a non-empty string or Uint8Array",
        );
      }
      return bytes;
    });
    this.#longest = Math.max(...this.#delimiters.map((d) => d.length));
    const strip = options.stripDelimiter ?? true;
    if (typeof strip !== "boolean") {
      throw new InvalidOptionError("stripDelimiter", `must be a boolean (got ${String(strip)})`);
    }
    this.#strip = strip;
    this.#maxFrame = optInt("maxFrameLength", options.maxFrameLength, MAX, 0);
  }

  /**
   * Decodes one frame from the start of `data` (see {@link ReadResult}). The package is a view of `data` (on Bun, a
   * copy when at most 256 bytes: cheaper there; see codec/package_bytes.ts).
   */
  read(_session: Session<Uint8Array> | undefined, data: Uint8Array): ReadResult<Uint8Array> {
    const { at, size, wait } = this.#search(data);
    if (at === -1) {
      // A delimiter can only start in the last `longest - 1` bytes: the frame is at least this long.
      const atLeast = data.length - this.#longest + 1;
      if (atLeast > this.#maxFrame) throw new MessageTooLongError(atLeast, this.#maxFrame, "frame", "maxFrameLength");
      return undefined;
    }
    if (at > this.#maxFrame) throw new MessageTooLongError(at, this.#maxFrame, "frame", "maxFrameLength");
    if (wait) return undefined;
    return { pkg: packageBytes(data, 0, this.#strip ? at : at + size), length: at + size };
  }

  /**
   * Encodes `pkg` followed by the first delimiter. With `stripDelimiter: false` the package must already
   * end with its delimiter and is written as is. Throws {@link CodecError} when the bytes would not decode
   * back to `pkg` (it contains a delimiter), {@link MessageTooLongError} above `maxFrameLength`.
   */
  write(_session: Session<Uint8Array> | undefined, pkg: Uint8Array): Uint8Array {
    let out: Uint8Array;
    if (this.#strip) {
      out = new Uint8Array(pkg.length + this.#delimiters[0].length);
      out.set(pkg);
      out.set(this.#delimiters[0], pkg.length);
    } else {
      out = pkg.slice();
    }
    const { at, size, wait } = this.#search(out);
    if (at === -1 || wait || at + size !== out.length) {
      throw new CodecError(
        this.#strip
          ? "package contains a delimiter (or the first delimiter is a prefix of another), so it would not " +
            "decode as one frame"
          : "with stripDelimiter false the package must be exactly one frame ending with its delimiter",
      );
    }
    if (at > this.#maxFrame) throw new MessageTooLongError(at, this.#maxFrame, "frame", "maxFrameLength");
    return out;
  }

  /**
   * The earliest (then longest) delimiter: its start `at` (-1 when none) and `size`; `wait` when another
   * delimiter starting at or before `at` is cut off by the end of `data` and could still win.
   */
  #search(data: Uint8Array): { at: number; size: number; wait: boolean } {
    let at = -1;
    let size = 0;
    for (const d of this.#delimiters) {
      const i = find(data, d, at === -1 ? data.length : at);
      if (i !== -1 && (at === -1 || i < at || d.length > size)) {
        at = i;
        size = d.length;
      }
    }
    return { at, size, wait: at !== -1 && this.#delimiters.some((d) => couldEndFirst(data, d, at)) };
  }
}

/**
 * Whether `d` starts at or before `at` but is cut off by the end of `data` (a prefix of it ends `data`):
 * more bytes could make it the frame's delimiter instead of the one found at `at`.
 */
function couldEndFirst(data: Uint8Array, d: Uint8Array, at: number): boolean {
  for (let p = Math.max(0, data.length - d.length + 1); p <= at; p++) {
    let i = p;
    while (i < data.length && data[i] === d[i - p]) i++;
    if (i === data.length) return true;
  }
  return false;
}

/**
 * UTF-8 text lines ending in `\n`; a `\r` before the `\n` is dropped, so `\r\n` lines work too. Invalid
 * UTF-8 is a {@link CodecError}. `write` appends `\n`.
 *
 * @example
 * ```ts
 * import { LineCodec } from "./mod.ts";
 *
 * const codec = new LineCodec({ maxLineLength: 1024 });
 * const bytes = codec.write(undefined, "hello"); // "hello\n" as UTF-8
 * const result = codec.read(undefined, new TextEncoder().encode("hi\r\nrest")); // { pkg: "hi", length: 4 }
 * ```
 */
export class LineCodec implements Codec<string> {
  readonly #maxLine: number;
  readonly #decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

  /** Creates the codec; throws {@link InvalidOptionError} naming the first invalid option. */
  constructor(options: LineCodecOptions = {}) {
    checkOptions("LineCodec", options, ["maxLineLength"]);
    this.#maxLine = optInt("maxLineLength", options.maxLineLength, MAX, 0);
  }

  /** Decodes one line from the start of `data` (see {@link ReadResult}). */
  read(_session: Session<string> | undefined, data: Uint8Array): ReadResult<string> {
    const lf = data.indexOf(LF);
    if (lf === -1) {
      const atLeast = data.length > 0 && data[data.length - 1] === CR ? data.length - 1 : data.length;
      if (atLeast > this.#maxLine) throw new MessageTooLongError(atLeast, this.#maxLine, "line", "maxLineLength");
      return undefined;
    }
    const end = lf > 0 && data[lf - 1] === CR ? lf - 1 : lf;
    if (end > this.#maxLine) throw new MessageTooLongError(end, this.#maxLine, "line", "maxLineLength");
    try {
      return { pkg: this.#decoder.decode(data.subarray(0, end)), length: lf + 1 };
    } catch (error) {
      throw new CodecError("line is not valid UTF-8", { cause: error });
    }
  }

  /**
   * Encodes `line` as UTF-8 followed by `\n`. Throws {@link CodecError} if it contains `\n`, ends with
   * `\r` or holds a lone surrogate (it would not read back the same), {@link MessageTooLongError} above
   * `maxLineLength`.
   */
  write(_session: Session<string> | undefined, line: string): Uint8Array {
    if (line.includes("\n")) throw new CodecError("a line must not contain \\n");
    if (line.endsWith("\r")) throw new CodecError("a line must not end with \\r (it would be read as a \\r\\n ending)");
    if (!line.isWellFormed()) throw new CodecError("a line must not contain lone surrogates (not valid UTF-8)");
    const bytes = encoder.encode(line + "\n");
    if (bytes.length - 1 > this.#maxLine) {
      throw new MessageTooLongError(bytes.length - 1, this.#maxLine, "line", "maxLineLength");
    }
    return bytes;
  }
}
