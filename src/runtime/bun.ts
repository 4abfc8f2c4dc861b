/**
 * The Bun adapter: TCP and TLS on `Bun.listen` / `Bun.connect`. The only file in `src/` that touches the `Bun`
 * global.
 *
 * Bun's `socket.write()` is unbuffered: it returns how many bytes the kernel took (possibly fewer, `0` when
 * full, `-1` when closed). The adapter keeps the unwritten tail and continues from the `drain` handler.
 * One handler object serves every socket of a listener; the socket's {@link BunTransport} lives in
 * `socket.data`.
 *
 * Runtime facts verified for this adapter (Bun 1.4.5) beyond `runtime-notes.md`:
 * - `Bun.connect` with `tls: { ca, serverName, rejectUnauthorized: true }` verifies the host name too: a
 *   `serverName` not in the certificate gives `handshake(socket, false, err)` with
 *   `err.code === "ERR_TLS_CERT_ALTNAME_INVALID"`; an unknown issuer gives `UNABLE_TO_VERIFY_LEAF_SIGNATURE`.
 *   The client socket then closes by itself. With a `handshake` handler, `open` fires before the handshake.
 * - On the server side `handshake(socket, success, err)` has `success === true` for a completed handshake
 *   (with the meaningless "unable to get issuer certificate" as `err`), and `success === false` when the client
 *   gave up ("Client network socket disconnected before secure TLS connection was established").
 * - `socket.end()` releases the socket at once (`readyState` -1; for TCP the `close` handler runs inside
 *   `end()`); bytes already accepted by `write()` still reach the peer, followed by FIN (TLS: close_notify).
 * - TLS sockets have the same partial `write()` as TCP; retrying the tail from `drain` keeps the stream intact.
 * - `setNoDelay(true)` works on TLS sockets too (no Nagle stall on write-write-read).
 * - `Bun.connect` has no way to cancel a dial; after an abort the adapter terminates the socket if it opens.
 * - `Bun.connect` needs a `data` or `drain` handler, else it throws `ERR_INVALID_ARG_TYPE`.
 * - `socket.write(buf, byteOffset, byteLength)` writes `buf[byteOffset, byteOffset + byteLength)`, offsets
 *   counted from the view's start (not its ArrayBuffer's), on TCP and TLS alike; with an offset and no length it
 *   throws `ERR_OUT_OF_RANGE` (the view's whole length is checked against what is left), so both are always given.
 *
 * @module
 */
import { formatAddr } from "../transport.ts";
import type {
  ConnectOptions,
  ListenOptions,
  RuntimeAdapter,
  Transport,
  TransportListener,
  TransportSink,
} from "../transport.ts";

type BunSocket = Bun.Socket<BunTransport | undefined>;
type Handlers = Bun.SocketHandler<BunTransport | undefined>;

/** The empty held-data list every transport starts with (never pushed to: replaced on the first hold). */
const NONE_HELD: Uint8Array[] = [];

function closedError(cause?: unknown): Error {
  return Object.assign(new Error("connection is closed", { cause }), { code: "ERR_SOCKET_CLOSED" });
}

/** One Bun socket as a {@link Transport}. Bun's handlers call the `on*` methods. */
class BunTransport implements Transport {
  readonly framing = "stream";
  /** Bun hands each `data` event a fresh buffer (verified), so the session need not copy it. */
  readonly retainableChunks = true;
  readonly localAddr: string;
  readonly remoteAddr: string;
  readonly #socket: BunSocket;
  #sink?: TransportSink;
  /** Set by `close()` or once the end was reported: no more I/O, no more sink calls. */
  #done = false;
  #paused = false;
  /** Whether `socket.pause()` is in force (also before `start()`, while early data is held). */
  #socketPaused = false;
  /** Data that arrived before `start()` or while paused; delivered in order on start/resume. */
  #held: Uint8Array[] = NONE_HELD;
  /** The socket ended (`error` undefined = clean EOF); reported to the sink after the held data. */
  #ended?: { error?: unknown };
  /** The part of the current write the kernel has not taken yet, and its promise. */
  #tail?: Uint8Array;
  #pending?: { resolve(): void; reject(error: unknown): void };

  constructor(socket: BunSocket) {
    this.#socket = socket;
    socket.setNoDelay(true);
    this.localAddr = formatAddr(socket.localAddress, socket.localPort);
    this.remoteAddr = formatAddr(socket.remoteAddress, socket.remotePort);
  }

  start(sink: TransportSink): void {
    if (this.#sink) return;
    this.#sink = sink;
    this.#flush();
  }

  pause(): void {
    this.#paused = true;
    this.#syncSocketPause();
  }

  resume(): void {
    this.#paused = false;
    this.#flush();
  }

  write(chunk: Uint8Array): true | Promise<void> {
    return this.#write(chunk, 0, chunk.length);
  }

  /** `socket.write(buf, offset, length)`: no view of the outbound slab per write. */
  writeRange(buf: Uint8Array, start: number, end: number): true | Promise<void> {
    return this.#write(buf, start, end);
  }

  #write(buf: Uint8Array, start: number, end: number): true | Promise<void> {
    if (this.#done || this.#ended) return Promise.reject(closedError(this.#ended?.error));
    const len = end - start;
    // Bun checks offset and length against the view (both must be given: a lone offset is checked with the
    // view's whole length).
    const n = this.#socket.write(buf, start, len);
    if (n === len) return true;
    if (n < 0) return Promise.reject(closedError());
    this.#tail = buf.subarray(start + n, end);
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    this.#pending = { resolve, reject };
    return promise;
  }

  close(): void {
    if (this.#done) return;
    this.#done = true;
    this.#held = NONE_HELD;
    this.#socket.end();
    this.#failWrite(closedError());
  }

  /** Half-close: FIN after the bytes already accepted (`shutdown`, not `end`, which also stops reading). */
  closeWrite(): void {
    if (this.#done) return;
    this.#socket.shutdown();
  }

  /** Closes abruptly (RST); used for connections that never reached the session. */
  terminate(): void {
    this.#done = true;
    this.#socket.terminate();
    this.#failWrite(closedError());
  }

  onData(chunk: Uint8Array): void {
    if (this.#done) return;
    if (!this.#sink || this.#paused || this.#held.length > 0) {
      if (this.#held === NONE_HELD) this.#held = [];
      this.#held.push(chunk);
      this.#syncSocketPause();
      return;
    }
    this.#deliver(chunk);
  }

  onDrain(): void {
    const tail = this.#tail;
    if (!tail || this.#done) return;
    const n = this.#socket.write(tail);
    if (n < 0) return this.#failWrite(closedError());
    if (n < tail.length) {
      this.#tail = tail.subarray(n);
      return;
    }
    const pending = this.#pending;
    this.#tail = undefined;
    this.#pending = undefined;
    pending?.resolve();
  }

  /** The socket ended (peer FIN, reset, TLS failure): release it now, tell the sink after any held data. */
  onEnd(error?: unknown): void {
    if (this.#done || this.#ended) return;
    this.#ended = { error };
    this.#socket.end();
    this.#failWrite(closedError(error));
    this.#flush();
  }

  #failWrite(error: unknown): void {
    const pending = this.#pending;
    this.#tail = undefined;
    this.#pending = undefined;
    pending?.reject(error);
  }

  #deliver(chunk: Uint8Array): void {
    try {
      this.#sink!.data(chunk);
    } catch (error) {
      // A throwing sink ends the connection with that error (Bun would route it to `error` and keep going).
      this.#held = NONE_HELD;
      this.onEnd(error);
    }
  }

  /** Delivers held data (and then a held end) as long as started, not paused and not closed. */
  #flush(): void {
    while (this.#sink && !this.#paused && !this.#done && this.#held.length > 0) {
      this.#deliver(this.#held.shift()!);
    }
    const ended = this.#ended;
    if (ended && this.#sink && !this.#paused && !this.#done && this.#held.length === 0) {
      this.#done = true;
      if (ended.error === undefined) this.#sink.closed();
      else this.#sink.closed(ended.error);
      return;
    }
    this.#syncSocketPause();
  }

  /** Reads from the socket only while data can be delivered right away. */
  #syncSocketPause(): void {
    if (this.#done || this.#ended) return;
    const pause = !this.#sink || this.#paused || this.#held.length > 0;
    if (pause === this.#socketPaused) return;
    this.#socketPaused = pause;
    if (pause) this.#socket.pause();
    else this.#socket.resume();
  }
}

/** Handlers shared by all sockets: forward to the socket's transport. */
const forward = {
  binaryType: "uint8array",
  data(socket: BunSocket, data: Uint8Array) {
    socket.data?.onData(data);
  },
  drain(socket: BunSocket) {
    socket.data?.onDrain();
  },
  end(socket: BunSocket) {
    socket.data?.onEnd();
  },
  close(socket: BunSocket, error?: Error) {
    socket.data?.onEnd(error);
  },
  error(socket: BunSocket, error: Error) {
    socket.data?.onEnd(error);
  },
} satisfies Handlers;

/** Handlers for one listener: hand each connection over (TLS: once its handshake succeeded). */
function listenHandlers(options: ListenOptions, pending: Set<BunSocket>): Handlers {
  const tls = options.tls !== undefined;
  const acceptFailed = (socket: BunSocket, error: unknown) => {
    if (!pending.delete(socket)) return;
    socket.data?.terminate();
    options.onAcceptError(error);
  };
  return {
    ...forward,
    open(socket) {
      const transport = new BunTransport(socket);
      socket.data = transport;
      if (!tls) return options.onConnection(transport);
      pending.add(socket);
      // A peer that never completes its handshake must not hold the connection forever (slow-loris).
      const limit = options.handshakeTimeout;
      if (limit) {
        const timer = setTimeout(() => {
          acceptFailed(socket, new Error(`TLS handshake not completed within ${limit} ms`));
        }, limit);
        (timer as { unref?: () => void }).unref?.();
      }
    },
    handshake(socket, success, authorizationError) {
      // Server side: no client certificate is requested, so `authorizationError` is meaningless; `success`
      // says whether the handshake completed.
      if (!success) return acceptFailed(socket, authorizationError ?? new Error("TLS handshake failed"));
      if (pending.delete(socket) && socket.data) options.onConnection(socket.data);
    },
    close(socket, error) {
      acceptFailed(socket, error ?? new Error("connection closed during the TLS handshake"));
      forward.close(socket, error);
    },
    error(socket, error) {
      acceptFailed(socket, error);
      forward.error(socket, error);
    },
  };
}

/** {@link RuntimeAdapter} for Bun: `Bun.listen` and `Bun.connect`, with `tls` options for TLS. */
export const bunAdapter: RuntimeAdapter = {
  name: "bun",

  listenTcp(options: ListenOptions): Promise<TransportListener> {
    const { hostname, port, tls } = options;
    /** TLS sockets still in their handshake: not handed over yet, so closed with the listener. */
    const pending = new Set<BunSocket>();
    let server: Bun.TCPSocketListener<BunTransport | undefined>;
    try {
      server = Bun.listen<BunTransport | undefined>({
        hostname,
        port,
        tls: tls ? { cert: tls.cert, key: tls.key } : undefined,
        socket: listenHandlers(options, pending),
      });
    } catch (error) {
      return Promise.reject(error); // EADDRINUSE, bad PEM, … are thrown synchronously
    }
    let closed = false;
    return Promise.resolve({
      hostname: server.hostname,
      port: server.port,
      close() {
        if (closed) return;
        closed = true;
        server.stop(); // without `true`: accepted connections stay open
        for (const socket of pending) socket.data?.terminate();
        pending.clear();
      },
    });
  },

  connectTcp({ hostname, port, tls, signal }: ConnectOptions): Promise<Transport> {
    signal.throwIfAborted();
    const { promise, resolve, reject } = Promise.withResolvers<Transport>();
    let transport: BunTransport | undefined;
    let settled = false;
    const settle = (error?: unknown) => {
      if (settled) return;
      settled = true;
      signal.removeEventListener("abort", onAbort);
      if (error === undefined && transport) return resolve(transport);
      transport?.terminate();
      reject(error);
    };
    const onAbort = () => settle(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    const handlers: Handlers = {
      ...forward,
      open(socket) {
        if (settled) return socket.terminate(); // aborted while connecting
        transport = new BunTransport(socket);
        socket.data = transport;
        if (!tls) settle();
      },
      handshake(socket, success, authorizationError) {
        // Client side: the server must be verified (chain and name), never just "handshake completed".
        if (success && socket.authorized) settle();
        else settle(authorizationError ?? socket.getAuthorizationError() ?? new Error("TLS verification failed"));
      },
      close(socket, error) {
        settle(error ?? closedError());
        forward.close(socket, error);
      },
      error(socket, error) {
        settle(error);
        forward.error(socket, error);
      },
      connectError(_socket, error) {
        settle(error);
      },
    };
    Bun.connect<BunTransport | undefined>({
      hostname,
      port,
      socket: handlers,
      tls: tls
        ? {
          ca: tls.caCerts ? [...tls.caCerts] : undefined,
          serverName: tls.serverName ?? hostname,
          rejectUnauthorized: true,
        }
        : undefined,
    }).catch(settle);
    return promise;
  },
};
