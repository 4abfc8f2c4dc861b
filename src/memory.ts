/**
 * An in-process transport: two connected sessions without sockets (Netty's EmbeddedChannel is the model;
 * getty has none). Use it to test handlers and codecs. It behaves like a stream socket: bytes arrive
 * asynchronously, in order, possibly coalesced; a paused reader holds at most `window` bytes before the
 * writer's `write` stops completing, so water marks and backpressure can be tested too.
 *
 * @module
 */
import { type EndPoint, EndPointType } from "./endpoint.ts";
import { EndpointCore, type EndpointOptions, type NewSessionCallback } from "./endpoint_core.ts";
import { SessionClosedError } from "./errors.ts";
import { optInt } from "./options.ts";
import type { Session } from "./session.ts";
import type { CloseFrame, Framing, Transport, TransportSink } from "./transport.ts";

/** Options of {@link createMemorySessionPair}. */
export interface MemoryPairOptions<P> extends EndpointOptions {
  /** Configures the first session (set its codec and listener here). */
  readonly a?: NewSessionCallback<P>;
  /** Configures the second session. */
  readonly b?: NewSessionCallback<P>;
  /** Bytes a paused reader holds before the writer is held back. Default 64 KiB. */
  readonly window?: number;
  /**
   * `stream` (default, like TCP), `message` (like WebSocket: one package per write, strings are text
   * messages, close codes reach the peer) or `datagram` (like a connected UDP socket).
   */
  readonly framing?: Framing;
}

class MemoryTransport implements Transport {
  readonly framing: Framing;
  /** Chunks are copies of what the writer wrote, or fresh joins. */
  readonly retainableChunks = true;
  /** `write` copies what it is given. */
  readonly writeTakesCopy = true;
  /** Messages and datagrams are delivered by calls, several in one turn: stamped with a read turn, like Bun's. */
  readonly readsInTurns: boolean;
  readonly localAddr: string;
  readonly remoteAddr: string;
  peer!: MemoryTransport;
  #sink: TransportSink | undefined;
  #held: Array<Uint8Array | string> = [];
  #heldBytes = 0;
  #paused = false;
  #closed = false;
  #peerEnded: CloseFrame | undefined;
  #delivering = false;
  #window: number;
  #waiters: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];

  constructor(framing: Framing, local: string, remote: string, window: number) {
    this.framing = framing;
    this.readsInTurns = framing !== "stream";
    this.localAddr = local;
    this.remoteAddr = remote;
    this.#window = window;
  }

  start(sink: TransportSink): void {
    this.#sink = sink;
    this.#schedule();
  }

  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#schedule();
  }

  write(chunk: Uint8Array | string): true | Promise<void> {
    if (this.#closed) return Promise.reject(new SessionClosedError("memory transport closed"));
    if (this.peer.#closed) return Promise.reject(new Error("broken pipe: peer closed"));
    // A copy: the writer may reuse its buffer once write() returned (the transport contract).
    this.peer.#receive(typeof chunk === "string" ? chunk : chunk.slice());
    if (this.peer.#heldBytes <= this.#window) return true;
    return new Promise((resolve, reject) => this.peer.#waiters.push({ resolve, reject }));
  }

  close(code?: number, reason?: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#held = [];
    this.#heldBytes = 0;
    this.#failWaiters(new Error("memory transport closed"));
    this.peer.#ended(this.framing === "message" ? { code, reason } : {});
  }

  #receive(chunk: Uint8Array | string): void {
    if (this.#closed) return;
    this.#held.push(chunk);
    this.#heldBytes += chunk.length;
    this.#schedule();
  }

  #ended(frame: CloseFrame): void {
    this.#peerEnded = frame;
    this.#failWaiters(new Error("broken pipe: peer closed"));
    this.#schedule();
  }

  #schedule(): void {
    if (this.#delivering || !this.#sink) return;
    this.#delivering = true;
    queueMicrotask(() => this.#deliver());
  }

  #deliver(): void {
    this.#delivering = false;
    const sink = this.#sink;
    if (!sink || this.#closed) return;
    while (!this.#paused && this.#held.length > 0 && !this.#closed) {
      let chunk: Uint8Array | string;
      if (this.framing !== "stream" || this.#held.length === 1) {
        chunk = this.#held.shift()!;
      } else {
        // A stream socket coalesces: hand everything held over in one read.
        const all = this.#held.splice(0) as Uint8Array[];
        chunk = new Uint8Array(all.reduce((n, c) => n + c.length, 0));
        let o = 0;
        for (const c of all) {
          chunk.set(c, o);
          o += c.length;
        }
      }
      this.#heldBytes -= chunk.length;
      sink.data(chunk);
    }
    if (this.#heldBytes <= this.#window) {
      const waiters = this.#waiters.splice(0);
      for (const w of waiters) w.resolve();
    }
    const ended = this.#peerEnded;
    if (ended && this.#held.length === 0 && !this.#closed && !this.#paused) {
      this.#peerEnded = undefined;
      this.#sink = undefined;
      sink.closed(undefined, this.framing === "message" ? ended : undefined);
    }
  }

  #failWaiters(error: Error): void {
    const waiters = this.#waiters.splice(0);
    for (const w of waiters) w.reject(error);
  }
}

/** The endpoint that owns a memory pair. */
class MemoryEndpoint<P> implements EndPoint {
  readonly endPointType: EndPointType = EndPointType.MEMORY;
  readonly core: EndpointCore<P>;
  #closed = false;
  constructor(options: EndpointOptions) {
    this.core = new EndpointCore<P>("createMemorySessionPair", this, options, "memory-session");
  }
  get id(): number {
    return this.core.id;
  }
  isClosed(): boolean {
    return this.#closed;
  }
  async close(): Promise<void> {
    this.#closed = true;
    await this.core.closeAll();
  }
}

/**
 * Creates two connected in-process sessions and opens them (running `a`/`b`, then `onOpen`). Rejects when
 * either side refuses to open.
 *
 * @example
 * ```ts
 * import { createMemorySessionPair, LengthFieldCodec } from "@getty/getty";
 * const codec = new LengthFieldCodec();
 * const [client, server] = await createMemorySessionPair<Uint8Array>({
 *   a: (s) => s.setPkgHandler(codec),
 *   b: (s) => {
 *     s.setPkgHandler(codec);
 *     s.setEventListener({ onMessage: (s, pkg) => void s.writePkg(pkg) });
 *   },
 * });
 * await client.writePkg(new Uint8Array([1, 2, 3]));
 * await client.close();
 * await server.closed;
 * ```
 */
export async function createMemorySessionPair<P = Uint8Array>(
  options: MemoryPairOptions<P> = {},
): Promise<[Session<P>, Session<P>]> {
  const window = optInt("createMemorySessionPair.window", options.window, 64 * 1024, 1);
  const framing = options.framing ?? "stream";
  const endpoint = new MemoryEndpoint<P>(options);
  const ta = new MemoryTransport(framing, "memory:a", "memory:b", window);
  const tb = new MemoryTransport(framing, "memory:b", "memory:a", window);
  ta.peer = tb;
  tb.peer = ta;
  const [a, b] = await Promise.all([
    endpoint.core.open(ta, options.a ?? (() => {})),
    endpoint.core.open(tb, options.b ?? (() => {})),
  ]);
  if (!a || !b) {
    await endpoint.close();
    throw new SessionClosedError("createMemorySessionPair: a session refused to open");
  }
  return [a, b];
}
