/**
 * The internal transport contract: the one interface a runtime adapter implements for each connection.
 * The Session core drives it; nothing else in `src/` touches a socket. Kept deliberately narrow:
 *
 * - reading is push-based (`start` hands over a sink) with `pause`/`resume` for flow control, which maps to
 *   Bun's handler callbacks and `pause()`, and to a `read()` loop on Deno;
 * - writing hands over whole buffers; the adapter owns partial writes (Bun's unbuffered `write`, Deno's
 *   partial `write`) and must never drop or reorder bytes;
 * - `framing` says whether a chunk is a slice of a byte stream (TCP, TLS: the codec finds frames) or one
 *   whole message (UDP datagram, WebSocket message: one package per chunk).
 *
 * @module
 */

/** Receives what a transport reads. Each method is called synchronously from the adapter's I/O callback. */
export interface TransportSink {
  /**
   * Bytes from the peer. For `stream` framing, a slice of the byte stream; for `message` framing, one whole
   * message (a `string` for a WebSocket text message). `from` is the sender of a datagram. Returns true when the
   * sink is done with the chunk's bytes (a session says so only with its `reuseReadBuffer` option): the adapter
   * may then read over them or detach them; otherwise a {@link Transport.retainableChunks} adapter must leave them
   * as they are.
   */
  data(chunk: Uint8Array | string, from?: PeerAddress): boolean | void;
  /**
   * The connection ended on the peer's or the network's side: `error` undefined means a clean end
   * (EOF / normal close). `info` carries a WebSocket close code and reason. Called at most once, never after
   * `close()` was called on the transport.
   */
  closed(error?: unknown, info?: CloseFrame): void;
  /** The runtime drained its send buffer (optional hint for message transports with their own queue). */
  drain?(): void;
  /** The peer answered a heartbeat (a WebSocket pong): the session counts as active. */
  pong?(): void;
}

/**
 * How a transport delimits its data:
 * - `stream`: bytes without boundaries (TCP, TLS); the codec finds frames, and bad input closes the session;
 * - `message`: one chunk is one message (WebSocket); bad input closes the session (1009 / 1007);
 * - `datagram`: one chunk is one datagram (UDP); a bad datagram is dropped and reported, the session lives.
 */
export type Framing = "stream" | "message" | "datagram";

/** A peer's address (UDP). */
export interface PeerAddress {
  /** Host name or IP literal. */
  readonly hostname: string;
  /** Port. */
  readonly port: number;
}

/** A WebSocket close code and reason. */
export interface CloseFrame {
  /** Close code (1000 normal, 1001 going away, 1006 abnormal, 1009 too big, …). */
  readonly code?: number;
  /** Close reason. */
  readonly reason?: string;
}

/** One connection, as the Session core sees it. */
export interface Transport {
  /** How data is delimited; see {@link Framing}. */
  readonly framing: Framing;
  /** Largest chunk `write` accepts (a datagram's payload limit); larger writes fail before reaching it. */
  readonly maxWriteSize?: number;
  /**
   * True when every chunk passed to `sink.data` is a fresh buffer the transport never touches again (Bun's
   * data events; Deno's adapter, which never reads over a chunk it handed out). Otherwise (a reused read
   * buffer) the session copies each chunk once.
   */
  readonly retainableChunks?: boolean;
  /**
   * True when the transport acts on {@link TransportSink.data}'s answer: once the sink released a chunk, it may
   * read over its bytes or detach them (Deno's TCP/TLS adapter and UDP driver, the standard `WebSocket`). Only
   * then does a session with `reuseReadBuffer` copy a pending write that is a view of the chunk.
   */
  readonly reclaimsReleasedChunks?: boolean;
  /**
   * True when `write` is done with `chunk` once it returns, whatever it returns: it sent the bytes or copied
   * them (Bun's `ServerWebSocket.send`, a WebSocket's `send`). A message transport's session then hands a
   * caller's buffer straight to it, without a copy of its own.
   */
  readonly writeTakesCopy?: boolean;
  /**
   * Message and datagram transports: true when the runtime calls `sink.data` once per message, many times in one
   * turn of the event loop (Bun's `ServerWebSocket` and UDP socket handlers). The session then stamps those reads
   * with a read turn (see `read_turn.ts`) instead of reading the clock for each. Where every read is an event-loop
   * task of its own (Deno's ops), a turn costs more than the clock read it saves.
   */
  readonly readsInTurns?: boolean;
  /** Local address as `host:port`. */
  readonly localAddr: string;
  /** Remote address as `host:port`. */
  readonly remoteAddr: string;
  /** Starts delivering data to `sink`. Called exactly once, after the session opened. */
  start(sink: TransportSink): void;
  /** Stops reading from the socket (the peer feels TCP backpressure). Idempotent. */
  pause(): void;
  /** Resumes reading. Idempotent. */
  resume(): void;
  /**
   * Hands `chunk` to the socket (to `to` on an unconnected datagram socket; a `string` is a WebSocket text
   * message and only reaches message transports). Returns `true` when every byte was accepted synchronously, or a promise
   * that resolves once every byte was accepted and rejects if the connection fails first. The caller never
   * issues a second write before the previous promise settled, and does not touch `chunk` until then; once
   * `true` was returned or the promise resolved, the transport holds no reference to `chunk` (the caller
   * reuses it for later writes).
   * May be called before `start` (a session can write from `onOpen`).
   */
  write(chunk: Uint8Array | string, to?: PeerAddress): true | Promise<void>;
  /**
   * Optional, stream transports: {@link write} of `buf[start, end)`, with the same contract, without the caller
   * making a view of it. The outbound buffer writes a batch from its slab this way when the transport has it: on
   * JavaScriptCore (Bun) a view costs as much as a small allocation, once per socket write.
   */
  writeRange?(buf: Uint8Array, start: number, end: number): true | Promise<void>;
  /**
   * Optional half-close: sends FIN after the bytes already accepted, and keeps reading. A graceful local close
   * uses it to linger: it flushes, half-closes, then keeps delivering what the peer sent until the peer's own
   * FIN (or waitTime), so nothing the peer wrote before it saw our FIN is lost to a reset.
   */
  closeWrite?(): void;
  /**
   * Optional heartbeat, called on every cron tick of the session (a WebSocket ping where the runtime can send
   * one). Sessions with a `ping` are scheduled for cron even without an `onCron` listener.
   */
  ping?(): void;
  /**
   * Releases the connection now (bytes already accepted by `write` are still sent by the kernel). Idempotent.
   * Message transports send `code`/`reason` in their close frame.
   */
  close(code?: number, reason?: string): void;
}

/** A listening socket that produces transports. */
export interface TransportListener {
  /** Bound host as given (or resolved) by the runtime. */
  readonly hostname: string;
  /** Bound port (the real port when 0 was asked for). */
  readonly port: number;
  /** Stops accepting. Live transports are not touched. Idempotent. */
  close(): void;
}

/** TLS material for a listening socket (PEM text). */
export interface ServerTlsOptions {
  /** Certificate chain, PEM. */
  readonly cert: string;
  /** Private key, PEM. */
  readonly key: string;
}

/** TLS settings for a client connection. The server is always verified. */
export interface ClientTlsOptions {
  /** Extra trusted CA certificates, PEM. When absent the runtime's default roots are used. */
  readonly caCerts?: readonly string[];
  /** Name to verify the server certificate against (and send as SNI); defaults to the dialled host. */
  readonly serverName?: string;
}

/** What an adapter needs to listen for TCP (optionally TLS) connections. */
export interface ListenOptions {
  readonly hostname: string;
  readonly port: number;
  readonly tls?: ServerTlsOptions;
  /** TLS: a connection whose handshake has not completed after this many ms is closed (an accept error). */
  readonly handshakeTimeout?: number;
  /** Called for every accepted connection. */
  readonly onConnection: (transport: Transport) => void;
  /** Called for an accept-level failure that does not stop the listener (e.g. a failed TLS handshake). */
  readonly onAcceptError: (error: unknown) => void;
}

/** What an adapter needs to dial a TCP (optionally TLS) connection. */
export interface ConnectOptions {
  readonly hostname: string;
  readonly port: number;
  readonly tls?: ClientTlsOptions;
  /** Aborts the dial (timeout or client close). */
  readonly signal: AbortSignal;
}

/** The per-runtime adapter: the only place that touches `Deno` or `Bun`. */
export interface RuntimeAdapter {
  /** `"deno"`, `"bun"` or `"memory"`. */
  readonly name: string;
  /** Listens for TCP or TLS connections; resolves once bound. Rejects with the runtime's error. */
  listenTcp(options: ListenOptions): Promise<TransportListener>;
  /**
   * Dials a TCP or TLS connection; resolves once connected (and, for TLS, once the handshake succeeded and
   * the server was verified). Rejects with the runtime's error.
   */
  connectTcp(options: ConnectOptions): Promise<Transport>;
}

/** Formats `host:port`, bracketing IPv6 literals. */
export function formatAddr(hostname: string, port: number): string {
  return hostname.includes(":") ? `[${hostname}]:${port}` : `${hostname}:${port}`;
}
