/**
 * The cumulation buffer for stream transports (Netty's ByteToMessageDecoder cumulation): holds the bytes of
 * an incomplete frame between reads. It grows to the declared frame size at most once, compacts instead of
 * growing when it can, and releases its memory when it empties, so an idle session holds no buffer.
 *
 * @module
 */

const EMPTY = new Uint8Array(0);
/** Buffers up to this size are kept when they empty; larger ones are released. */
const KEEP_BYTES = 16 * 1024;

/** A growable byte queue with a contiguous view of its content. */
export class ReadBuffer {
  #buf: Uint8Array = EMPTY;
  #start = 0;
  #end = 0;

  /** Bytes held. */
  get length(): number {
    return this.#end - this.#start;
  }

  /** Appends a copy of `chunk`. */
  append(chunk: Uint8Array): void {
    this.reserve(this.length + chunk.length);
    this.#buf.set(chunk, this.#end);
    this.#end += chunk.length;
  }

  /** Makes room for `total` bytes of content without moving again. */
  reserve(total: number): void {
    if (this.#start + total <= this.#buf.length) return;
    const length = this.length;
    if (total <= this.#buf.length) {
      this.#buf.copyWithin(0, this.#start, this.#end);
    } else {
      const next = new Uint8Array(Math.max(total, Math.min(this.#buf.length * 2, total * 2), 1024));
      next.set(this.#buf.subarray(this.#start, this.#end));
      this.#buf = next;
    }
    this.#start = 0;
    this.#end = length;
  }

  /** The content, as a view valid until the next call. */
  view(): Uint8Array {
    return this.#buf.subarray(this.#start, this.#end);
  }

  /** Drops the first `n` bytes. */
  consume(n: number): void {
    this.#start += n;
    if (this.#start >= this.#end) this.clear();
  }

  /** Drops everything, releasing a large buffer. */
  clear(): void {
    this.#start = 0;
    this.#end = 0;
    if (this.#buf.length > KEEP_BYTES) this.#buf = EMPTY;
  }
}
