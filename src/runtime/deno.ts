/**
 * The Deno adapter: TCP and TLS on `Deno.listen` / `Deno.listenTls` / `Deno.connect` + `Deno.startTls`.
 * The only file in `src/` that touches the `Deno` global.
 *
 * Reads use `conn.read()` into one reused 64 KiB buffer (never `conn.readable`: it closes the whole resource at
 * EOF); writes loop over `conn.write()`, which may accept only part of a buffer.
 *
 * Runtime facts verified for this adapter (Deno 2.9.6) beyond `runtime-notes.md`:
 * - A `TlsConn` from `Deno.startTls` has `localAddr`/`remoteAddr` without the `transport` field.
 * - `Deno.connect({ signal })` aborted mid-connect (full backlog) rejects with `signal.reason` itself.
 * - `conn.close()` while a `conn.write()` is pending makes that write reject with `Interrupted`.
 * - A peer reset (RST) is not an error on read: `read()` returns `null` (EOF); the next `write()` throws
 *   `BrokenPipe`. So a reset reaches the sink as a clean `closed()` unless a write notices it first.
 * - Connections accepted by `Deno.listenTls` have Nagle's algorithm on and no `setNoDelay` (write-write-read
 *   stalls ~40 ms on loopback). The client side keeps the `setNoDelay(true)` set before `Deno.startTls`.
 * - Closing a `TlsConn` whose handshake has not finished (either side) rejects `handshake()` with
 *   `Interrupted` but does NOT close the TCP socket: the peer sees nothing until it answers or closes itself.
 * - A dial right after `listener.close()` (with an `accept()` pending) can be reset (ECONNRESET) rather than
 *   refused: the socket is released only when the pending accept is cancelled, a moment later.
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

const READ_BUFFER_SIZE = 64 * 1024;
/** Pause after a failed `accept()` so a persistent error (e.g. EMFILE) does not spin the loop. */
const ACCEPT_RETRY_MS = 10;

function closeQuietly(closer: { close(): void }): void {
  try {
    closer.close();
  } catch {
    // Already closed (BadResource): nothing to release.
  }
}

function closedError(): Error {
  return new Deno.errors.BadResource("connection is closed");
}

/** `host:port` of a connection address. (A `TlsConn` from `Deno.startTls` has addresses without `transport`.) */
function addrOf(addr: Deno.Addr): string {
  const { hostname, port } = addr as Deno.NetAddr;
  return formatAddr(hostname, port);
}

/** The outcome of one `read()`: bytes, EOF (`null`) or an error. */
type ReadResult = { n: number | null } | { error: unknown };

/** One Deno connection (`TcpConn` or `TlsConn`) as a {@link Transport}. */
class DenoTransport implements Transport {
  readonly framing = "stream";
  readonly localAddr: string;
  readonly remoteAddr: string;
  readonly #conn: Deno.Conn;
  readonly #buf = new Uint8Array(READ_BUFFER_SIZE);
  #sink?: TransportSink;
  /** Set by `close()` or when the connection ended: no more I/O, no more sink calls. */
  #done = false;
  #paused = false;
  #wake?: () => void;
  #rejectWrite?: (error: unknown) => void;

  constructor(conn: Deno.Conn) {
    this.#conn = conn;
    this.localAddr = addrOf(conn.localAddr);
    this.remoteAddr = addrOf(conn.remoteAddr);
  }

  start(sink: TransportSink): void {
    if (this.#sink) return;
    this.#sink = sink;
    void this.#readLoop();
  }

  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    this.#paused = false;
    this.#wakeUp();
  }

  write(chunk: Uint8Array): true | Promise<void> {
    if (this.#done) return Promise.reject(closedError());
    if (chunk.length === 0) return true;
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    this.#rejectWrite = reject;
    this.#writeAll(chunk).then(resolve, (error) => {
      // A failed write means the connection is gone: report it like a read error, then reject.
      this.#end(error);
      reject(error);
    }).finally(() => {
      this.#rejectWrite = undefined;
    });
    return promise;
  }

  close(): void {
    if (this.#done) return;
    this.#done = true;
    closeQuietly(this.#conn);
    this.#wakeUp();
    this.#rejectWrite?.(closedError());
  }

  /** Half-close: FIN after the bytes already written; reading goes on. */
  closeWrite(): void {
    if (this.#done) return;
    this.#conn.closeWrite().catch(() => {});
  }

  async #writeAll(chunk: Uint8Array): Promise<void> {
    let offset = 0;
    while (offset < chunk.length) {
      if (this.#done) throw closedError();
      offset += await this.#conn.write(chunk.subarray(offset));
    }
  }

  #wakeUp(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  /** Resolves on the next `resume()` or `close()`. */
  #resumed(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.#wake = resolve;
    });
  }

  /**
   * Reads until EOF, error or close. A `read()` cannot be cancelled, so a result that arrives while paused is
   * held (the buffer is not reused meanwhile) and handled on resume: nothing reaches the sink while paused.
   */
  async #readLoop(): Promise<void> {
    while (!this.#done) {
      while (this.#paused && !this.#done) await this.#resumed();
      if (this.#done) return;
      let result: ReadResult;
      try {
        result = { n: await this.#conn.read(this.#buf) };
      } catch (error) {
        result = { error };
      }
      while (this.#paused && !this.#done) await this.#resumed();
      if (this.#done) return; // closed locally: Interrupted / BadResource from our own close are not reported
      if ("error" in result) return this.#end(result.error);
      if (result.n === null) return this.#eof();
      try {
        this.#sink!.data(this.#buf.subarray(0, result.n));
      } catch (error) {
        return this.#end(error);
      }
    }
  }

  /**
   * The peer half-closed (EOF). The connection stays open for writing: the session flushes its replies and
   * then calls close(). (Closing here lost the replies to the last packages of a peer that sent FIN.)
   */
  #eof(): void {
    if (this.#done) return;
    this.#sink?.closed();
  }

  /** The connection failed on the peer's or the network's side: release it and tell the sink once. */
  #end(error?: unknown): void {
    if (this.#done) return;
    this.close();
    if (error === undefined) this.#sink?.closed();
    else this.#sink?.closed(error);
  }
}

/** Accepts connections until the listener is closed; errors of one connection never stop the loop. */
async function acceptLoop(
  listener: Deno.Listener,
  options: ListenOptions,
  isClosed: () => boolean,
  pending: Set<Deno.Conn>,
): Promise<void> {
  while (!isClosed()) {
    let conn: Deno.Conn;
    try {
      conn = await listener.accept();
    } catch (error) {
      if (isClosed() || error instanceof Deno.errors.BadResource) return;
      options.onAcceptError(error);
      await new Promise((resolve) => setTimeout(resolve, ACCEPT_RETRY_MS));
      continue;
    }
    if (!options.tls) {
      (conn as Deno.TcpConn).setNoDelay(true);
      options.onConnection(new DenoTransport(conn));
      continue;
    }
    // TLS: hand over the connection only once the handshake succeeded; a failed one is an accept error.
    // Deno's TlsConn has no setNoDelay.
    pending.add(conn);
    // A peer that never completes its handshake must not hold the connection forever (slow-loris).
    const deadline = options.handshakeTimeout
      ? setTimeout(() => {
        if (!pending.delete(conn)) return;
        closeQuietly(conn);
        options.onAcceptError(new Error(`TLS handshake not completed within ${options.handshakeTimeout} ms`));
      }, options.handshakeTimeout)
      : undefined;
    (conn as Deno.TlsConn).handshake().then(
      () => {
        clearTimeout(deadline);
        if (!pending.delete(conn)) return closeQuietly(conn);
        if (isClosed()) closeQuietly(conn);
        else options.onConnection(new DenoTransport(conn));
      },
      (error) => {
        clearTimeout(deadline);
        if (!pending.delete(conn)) return;
        closeQuietly(conn);
        if (!isClosed()) options.onAcceptError(error);
      },
    );
  }
}

/** {@link RuntimeAdapter} for Deno: `Deno.listen`/`Deno.listenTls` and `Deno.connect` (+ `Deno.startTls`). */
export const denoAdapter: RuntimeAdapter = {
  name: "deno",

  listenTcp(options: ListenOptions): Promise<TransportListener> {
    const { hostname, port, tls } = options;
    let listener: Deno.Listener;
    try {
      listener = tls
        ? Deno.listenTls({ hostname, port, cert: tls.cert, key: tls.key })
        : Deno.listen({ hostname, port });
    } catch (error) {
      return Promise.reject(error); // AddrInUse, bad PEM, … are thrown synchronously
    }
    const addr = listener.addr as Deno.NetAddr;
    let closed = false;
    /** TLS connections still in their handshake: not handed over yet, so closed with the listener. */
    const pending = new Set<Deno.Conn>();
    void acceptLoop(listener, options, () => closed, pending);
    return Promise.resolve({
      hostname: addr.hostname,
      port: addr.port,
      close() {
        if (closed) return;
        closed = true;
        closeQuietly(listener);
        for (const conn of pending) closeQuietly(conn);
        pending.clear();
      },
    });
  },

  async connectTcp({ hostname, port, tls, signal }: ConnectOptions): Promise<Transport> {
    signal.throwIfAborted();
    const tcp = await Deno.connect({ hostname, port, signal }); // an abort rejects with signal.reason
    let conn: Deno.Conn = tcp;
    const onAbort = () => closeQuietly(conn);
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      signal.throwIfAborted();
      tcp.setNoDelay(true);
      if (tls) {
        // startTls (rather than connectTls) so the verified name may differ from the dialled host.
        const tlsConn = await Deno.startTls(tcp, {
          hostname: tls.serverName ?? hostname,
          caCerts: tls.caCerts ? [...tls.caCerts] : undefined,
        });
        conn = tlsConn;
        signal.throwIfAborted();
        await tlsConn.handshake(); // verifies the chain against caCerts and the name
      }
      signal.throwIfAborted();
    } catch (error) {
      closeQuietly(conn);
      throw signal.aborted ? signal.reason : error;
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
    return new DenoTransport(conn);
  },
};
