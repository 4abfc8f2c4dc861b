/**
 * The receive side shared by the UDP transports that cannot stop their runtime from reading (Bun's
 * `udpSocket`, node:dgram, and the per-peer virtual transports): datagrams go straight to the sink while it
 * reads, and are held (at most `limit`) while it is paused or not started yet; more are dropped. Chunks must
 * be owned (fresh buffers nobody reuses): they are held as they are, not copied.
 *
 * @module
 */
import type { PeerAddress, TransportSink } from "../transport.ts";

interface Held {
  readonly chunk: Uint8Array;
  readonly from: PeerAddress | undefined;
}

/** A bounded hold queue in front of a {@link TransportSink}. */
export class DatagramInbox {
  readonly #limit: number;
  readonly #onDrop: () => void;
  #sink: TransportSink | undefined;
  #paused = false;
  #closed = false;
  #held: Held[] = [];
  /** An end to report once the held datagrams were delivered (`error` undefined = clean end). */
  #ended: { error?: unknown } | undefined;

  /** Holds at most `limit` datagrams; `onDrop` is called for each one dropped. */
  constructor(limit: number, onDrop: () => void) {
    this.#limit = limit;
    this.#onDrop = onDrop;
  }

  /** Datagrams currently held. */
  get held(): number {
    return this.#held.length;
  }

  /** Starts delivering (held datagrams first). */
  start(sink: TransportSink): void {
    if (this.#sink || this.#closed) return;
    this.#sink = sink;
    this.#flush();
  }

  /** Stops delivering; datagrams are held from now on. */
  pause(): void {
    this.#paused = true;
  }

  /** Delivers what was held, then delivers directly again. */
  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#flush();
  }

  /** One received datagram, in a buffer nobody else reuses. */
  push(chunk: Uint8Array, from: PeerAddress | undefined): void {
    if (this.#closed || this.#ended) return;
    if (!this.#sink || this.#paused || this.#held.length > 0) {
      if (this.#held.length >= this.#limit) this.#onDrop();
      else this.#held.push({ chunk, from });
      return;
    }
    this.#sink.data(chunk, from);
  }

  /** The source ended: reports `closed(error)` to the sink after the held datagrams. */
  end(error?: unknown): void {
    if (this.#closed || this.#ended) return;
    this.#ended = { error };
    this.#flush();
  }

  /** Stops everything: held datagrams are discarded and the sink is never called again. */
  close(): void {
    this.#closed = true;
    this.#held = [];
  }

  #flush(): void {
    while (this.#sink && !this.#paused && !this.#closed && this.#held.length > 0) {
      const { chunk, from } = this.#held.shift()!;
      this.#sink.data(chunk, from);
    }
    const ended = this.#ended;
    if (ended && this.#sink && !this.#paused && !this.#closed && this.#held.length === 0) {
      this.#closed = true;
      if (ended.error === undefined) this.#sink.closed();
      else this.#sink.closed(ended.error);
    }
  }
}
