/**
 * The Deno adapter: TCP and TLS on `Deno.listen` / `Deno.listenTls` / `Deno.connect` + `Deno.startTls`.
 * The only file in `src/` that touches the `Deno` global.
 *
 * Reads use `conn.read()` (never `conn.readable`: it closes the whole resource at EOF, and costs ~3× on small
 * packages) into the free part of a read buffer, and hand the bytes read over as they are: each read lands
 * after the previous one, so a chunk is never overwritten and the session need not copy it (packages are
 * views of it). When the session says it is done with a chunk (its `reuseReadBuffer` option, and nothing of
 * the chunk kept), the next read goes to the same place: the buffer stays in the CPU cache and lasts longer. A
 * new buffer is allocated when the free part gets small; its size adapts to the reads, like Netty's adaptive
 * receive buffer: 64 KiB while reads fill the buffer, down to 8 KiB while they are small, so an idle connection
 * holds a small buffer. Writes loop over `conn.write()`, which may accept only part of a
 * buffer.
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

/** Read buffer sizes: the first one, and the bounds of the adaptive size. */
const READ_BUFFER_INITIAL = 16 * 1024;
const READ_BUFFER_MIN = 8 * 1024;
const READ_BUFFER_MAX = 64 * 1024;
/** A new read buffer is taken when less than this is free (or less than the last read needed). */
const READ_ROOM_MIN = 2 * 1024;
/** Reads handed back by the session between two checks of a reused buffer's size against them. */
const RELEASED_READS_PER_CHECK = 16;
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

/** One Deno connection (`TcpConn` or `TlsConn`) as a {@link Transport}. */
class DenoTransport implements Transport {
  readonly framing = "stream";
  /** Every chunk is a part of a read buffer that no later read touches. */
  readonly retainableChunks = true;
  readonly reclaimsReleasedChunks = true;
  readonly localAddr: string;
  readonly remoteAddr: string;
  readonly #conn: Deno.Conn;
  /** The current read buffer, where its free part starts, and the size of the next one. */
  #buf: Uint8Array | undefined;
  #bufUsed = 0;
  #bufSize = READ_BUFFER_INITIAL;
  /** Largest read into the current buffer (to shrink the next one). */
  #biggestRead = 0;
  /** Reads handed back since the size was last checked against them. */
  #releasedReads = 0;
  #sink?: TransportSink;
  /** Set by `close()` or when the connection ended: no more I/O, no more sink calls. */
  #done = false;
  #paused = false;
  #wake?: () => void;

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
    return this.#conn.write(chunk).then(
      (n) => n === chunk.length ? undefined : this.#writeRest(chunk, n),
      (error) => this.#writeFailed(error),
    );
  }

  /** {@link write} of a view: on V8 a view costs little, and `conn.write` takes nothing else. */
  writeRange(buf: Uint8Array, start: number, end: number): true | Promise<void> {
    return this.write(buf.subarray(start, end));
  }

  close(): void {
    if (this.#done) return;
    this.#done = true;
    closeQuietly(this.#conn); // a pending write rejects (Interrupted): reported as closed, below
    this.#wakeUp();
  }

  /** Half-close: FIN after the bytes already written; reading goes on. */
  closeWrite(): void {
    if (this.#done) return;
    this.#conn.closeWrite().catch(() => {});
  }

  /** Continues a partial write. */
  async #writeRest(chunk: Uint8Array, offset: number): Promise<void> {
    try {
      while (offset < chunk.length) {
        if (this.#done) throw closedError();
        offset += await this.#conn.write(chunk.subarray(offset));
      }
    } catch (error) {
      this.#writeFailed(error);
    }
  }

  /** A failed write means the connection is gone: reported like a read error; the write rejects. */
  #writeFailed(error: unknown): never {
    if (this.#done) throw closedError();
    this.#end(error);
    throw error;
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
    /** The session handed the last read back: the next read goes to the same place, unless the size changes. */
    let released = false;
    while (!this.#done) {
      while (this.#paused && !this.#done) await this.#resumed();
      if (this.#done) return;
      const buf = this.#readTarget(released);
      const start = this.#bufUsed;
      let n: number | null;
      let failure: { error: unknown } | undefined;
      try {
        n = await this.#conn.read(start === 0 ? buf : buf.subarray(start));
      } catch (error) {
        n = null;
        failure = { error };
      }
      while (this.#paused && !this.#done) await this.#resumed();
      if (this.#done) return; // closed locally: Interrupted / BadResource from our own close are not reported
      if (failure) return this.#end(failure.error);
      if (n === null) return this.#eof();
      this.#bufUsed = start + n;
      if (n > this.#biggestRead) this.#biggestRead = n;
      // A read that filled the free part may have left bytes behind: the next buffer is bigger.
      if (start + n === buf.length && this.#bufSize < READ_BUFFER_MAX) this.#bufSize *= 2;
      try {
        // true: the session is done with these bytes (reuseReadBuffer), so the next read goes to the same place.
        released = this.#sink!.data(buf.subarray(start, start + n)) === true;
        if (released) this.#bufUsed = start;
      } catch (error) {
        return this.#end(error);
      }
      // One microtask before the next read(). Measured (A/B on one core, saturated 64-byte echo): ~6 % more
      // packages per CPU second than calling read() at once. Why is not established (Deno's op scheduling?).
      await null;
    }
  }

  /**
   * The buffer to read into: the current one while enough of it is free, else a new one. A buffer the session keeps
   * handing back is reused as long as it has the adaptive size: that grows at once (a read filled the free part) and
   * shrinks after {@link RELEASED_READS_PER_CHECK} reads that all stayed small, so a reused buffer still follows the
   * traffic (an idle connection keeps a small one) without a new buffer for every small read among large ones.
   */
  #readTarget(released: boolean): Uint8Array {
    const buf = this.#buf;
    if (buf !== undefined) {
      const free = buf.length - this.#bufUsed;
      if (released) {
        if (++this.#releasedReads >= RELEASED_READS_PER_CHECK) {
          this.#releasedReads = 0;
          // Every one stayed under an eighth of the buffer: halve it (as often as that still holds).
          while (this.#biggestRead * 8 <= this.#bufSize && this.#bufSize > READ_BUFFER_MIN) this.#bufSize /= 2;
          this.#biggestRead = 0;
        }
        if (buf.length === this.#bufSize && free >= READ_ROOM_MIN) return buf;
      } else {
        if (free >= READ_ROOM_MIN && free >= this.#biggestRead) return buf;
        // Reads stayed small: the next buffer is smaller.
        if (this.#biggestRead * 8 <= this.#bufSize && this.#bufSize > READ_BUFFER_MIN) this.#bufSize /= 2;
      }
    }
    this.#biggestRead = 0;
    this.#bufUsed = 0;
    return (this.#buf = new Uint8Array(this.#bufSize));
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
