/**
 * The codec contract (getty's ReadWriter): a {@link Reader} cuts packages out of received bytes, a
 * {@link Writer} turns a package into bytes.
 *
 * @module
 */
import type { Session } from "./session.ts";

/**
 * What {@link Reader.read} returns:
 * - `undefined`: not enough bytes to know anything yet ("need more");
 * - `{ declared }`: the header is parsed and the whole frame will be `declared` bytes long, but the body
 *   has not arrived. The session checks `declared` against `maxMsgLen` before buffering the body;
 * - `{ pkg, length }`: one package, decoded from the first `length` bytes (`length >= 1`).
 */
export type ReadResult<P> =
  | undefined
  | { readonly declared: number }
  | { readonly pkg: P; readonly length: number };

/**
 * Decodes packages from bytes. `session` is the session the bytes came from, or `undefined` when the
 * codec runs outside a session (as a TransformStream, see `decodeStream`).
 */
export interface Reader<P> {
  /**
   * Decodes at most one package from the start of `data`. `data` belongs to the caller, who never changes
   * it afterwards, so a package may be a view of it (`subarray`, as the built-in codecs return: no copy per
   * package; on Bun they copy packages of up to 256 bytes, which costs less there than a view). Throw (ideally a
   * {@link CodecError}) for input that can never become a package; the session then closes.
   */
  read(session: Session<P> | undefined, data: Uint8Array): ReadResult<P>;
  /**
   * Optional fast path: the same as `read(session, data.subarray(offset))`, with `length` and `declared`
   * counted from `offset`. Stream sessions use it to walk the packages of one read without a view per step.
   */
  readAt?(session: Session<P> | undefined, data: Uint8Array, offset: number): ReadResult<P>;
}

/** Encodes packages to bytes. */
export interface Writer<P> {
  /**
   * Encodes one package. The bytes are queued as-is; do not reuse the returned buffer. A `string` is sent as
   * a text message on WebSocket sessions and as UTF-8 bytes elsewhere.
   */
  write(session: Session<P> | undefined, pkg: P): Uint8Array | string;
  /**
   * Optional fast path, with {@link encodeInto}: the exact number of bytes `pkg` encodes to. Validate here
   * (throw as `write` would). With both methods, stream sessions encode packages straight into their
   * outbound buffer instead of allocating one buffer per package.
   */
  encodedLength?(session: Session<P> | undefined, pkg: P): number;
  /** Optional fast path: writes exactly `encodedLength(pkg)` bytes of `pkg` into `target` at `offset`. */
  encodeInto?(session: Session<P> | undefined, pkg: P, target: Uint8Array, offset: number): void;
}

/** A reader and a writer for the same package type (getty's ReadWriter). */
export interface Codec<P> extends Reader<P>, Writer<P> {}
