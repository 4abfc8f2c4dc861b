/**
 * The native Deno UDP driver: `Deno.listenDatagram`, which exists only when Deno runs with `--unstable-net`
 * (or `"unstable": ["net"]` in deno.json). Without it the endpoints use the node:dgram driver instead.
 *
 * Reads call `receive()` into one reused 64 KiB buffer (large enough for any UDP payload, so nothing is
 * truncated) and hand the sink a copy (`retainableChunks`: packages may be views of it). Copies are packed one
 * after another into a 64 KiB slab that no later datagram overwrites, so most datagrams cost no allocation (with a
 * buffer per datagram, V8's garbage-collector threads took a sixth of the CPU samples on 8 KiB datagrams). With the
 * session option `reuseReadBuffer`, once the session has released a few datagrams in a row (nothing of them kept),
 * datagrams are handed over uncopied, as views of the receive buffer (8 KiB echo, one core to itself: 1.15–1.45× the
 * datagrams per second); a session that keeps one after all leaves that buffer to it. While the session is
 * paused the reader simply stops calling `receive()`: the kernel's receive buffer is the backlog and drops what
 * does not fit, so `pausedBacklog` does not apply (one datagram already received when the pause came is held).
 * Writes are `send()` calls, one in flight at a time (the session awaits each, which keeps them in order). After
 * delivering a datagram the reader waits for the send the session started meanwhile to an address (typically an
 * answer) before its next `receive()` (why: see {@link DenoUdpSocket.#handle}). The reader is a chain of
 * callbacks, not an `async` loop, which costs less per datagram (bench/micro_udp_deno.ts: 482 → 390–450 ns, the
 * raw loop 370–395; one core against the loop: 1.025× the datagrams per second on 64-byte echo, 1.033× on 8 KiB).
 * `listenDatagram` has no `connect`: a connected socket is emulated (writes go to the peer, datagrams from
 * other addresses are dropped as `"foreign"`).
 *
 * Runtime facts verified for this driver (Deno 2.9.6) beyond `runtime-notes.md`:
 * - Concurrent `send()` calls are not delivered in call order (the session awaits each write, so a session's
 *   own datagrams stay ordered). Measured on 3,000 datagrams over loopback: 1,536 inversions when all are issued
 *   at once, 1 when they go out two at a time with a macrotask between pairs, none in groups of 8–128 on a socket
 *   that had sent before; but the first burst of a fresh socket (10 sends) went out in exactly reverse order, and
 *   so did a burst under a window of 64 sends in flight (tried for speed, and not needed: a plain server that
 *   awaits each send runs at the speed of one that does not, 0.995× on one core with 8 KiB datagrams).
 * - `send()` to a host whose port is closed resolves; nothing is ever reported (no ICMP errors at all).
 * - `send()` to `::1` from an IPv4 socket rejects with "Address family not supported by protocol (os error 97)";
 *   port 0 rejects with a `TypeError` "Invalid argument (os error 22)"; after `close()` with `BadResource`.
 * - A `send()` pending when the socket is closed still resolves.
 * - A socket bound to `::` is dual-stack: IPv4 senders appear as `::ffff:a.b.c.d`, and it can send to plain IPv4.
 * - After `close()` the port stays bound while a `receive()` is pending, until that receive has rejected with
 *   `Interrupted`: binding the same port at once fails with `AddrInUse` (hence `released`).
 *
 * @module
 */
import { formatAddr, type PeerAddress, type TransportSink } from "../transport.ts";
import { ipFamily, isLastPeer, normalizeHost, peer, samePeer } from "../udp/address.ts";
import {
  lookupPeer,
  MAX_UDP_PAYLOAD,
  type UdpAdapter,
  type UdpBindOptions,
  type UdpSocket,
  type UdpSocketEvents,
} from "../udp/adapter.ts";

function ignore(): void {}

const RECEIVE_BUFFER_SIZE = 64 * 1024;
/**
 * Released datagrams in a row after which the next ones are handed over uncopied (session option
 * `reuseReadBuffer`). A few, so that a session that keeps every other datagram does not cost a new receive
 * buffer each time.
 */
const RELEASED_BEFORE_VIEWS = 4;

/** Size of the slabs received datagrams are copied into (a larger datagram gets a buffer of its own size). */
const COPY_SLAB_SIZE = 64 * 1024;

function closedError(): Error {
  return Object.assign(new Error("UDP socket is closed"), { code: "ERR_SOCKET_CLOSED" });
}

/** Whether this Deno process has the native UDP API (`--unstable-net`). */
function hasListenDatagram(): boolean {
  const d = (globalThis as { Deno?: { listenDatagram?: unknown } }).Deno;
  return typeof d?.listenDatagram === "function";
}

class DenoUdpSocket implements UdpSocket {
  readonly framing = "datagram";
  readonly retainableChunks = true;
  readonly reclaimsReleasedChunks = true;
  readonly maxWriteSize = MAX_UDP_PAYLOAD;
  readonly hostname: string;
  readonly port: number;
  readonly family: 4 | 6;
  readonly localAddr: string;
  readonly remoteAddr: string;
  readonly #conn: Deno.DatagramConn;
  readonly #connect: PeerAddress | undefined;
  readonly #events: UdpSocketEvents;
  /** Where `receive()` writes; replaced when the session keeps a datagram handed over uncopied. */
  #buf = new Uint8Array(RECEIVE_BUFFER_SIZE);
  /**
   * Consecutive datagrams the session released (`reuseReadBuffer`), up to {@link RELEASED_BEFORE_VIEWS}: from
   * there on datagrams are handed over uncopied, as views of {@link #buf}.
   */
  #releasedInRow = 0;
  /** Where received datagrams are copied, and how much of it is taken (allocated at the first datagram). */
  #copySlab: Uint8Array | undefined;
  #copyUsed = 0;
  #sink: TransportSink | undefined;
  #done = false;
  #paused = false;
  /** A `receive()` is pending (it cannot be cancelled; until it settles after `close()` the port stays bound). */
  #receiving = false;
  /** A datagram that arrived while paused: handled once resumed. */
  #held: [Uint8Array, Deno.Addr] | undefined;
  /** The last send to an IP address, until the reader has waited for it (see {@link #handle}). */
  #lastSend: Promise<void> | undefined;
  readonly #released = Promise.withResolvers<void>();
  readonly #onReceived = (received: [Uint8Array, Deno.Addr]): void => {
    this.#receiving = false;
    if (this.#done) return this.#released.resolve();
    if (this.#paused) this.#held = received;
    else this.#handle(received);
  };
  readonly #onReceiveFailed = (error: unknown): void => {
    this.#receiving = false;
    if (this.#done) return this.#released.resolve(); // Interrupted / BadResource from our own close
    this.#fail(error); // not caused by close(): the socket is unusable
  };
  readonly #afterSend = (): void => this.#receiveNext();
  readonly #resumeReading = (): void => {
    const held = this.#held;
    if (this.#paused || this.#done) return;
    this.#held = undefined;
    if (held === undefined) this.#receiveNext();
    else this.#handle(held);
  };

  constructor(conn: Deno.DatagramConn, options: UdpBindOptions) {
    this.#conn = conn;
    this.#connect = options.connect;
    this.#events = options.events;
    const addr = conn.addr as Deno.NetAddr;
    this.hostname = addr.hostname;
    this.port = addr.port;
    this.family = ipFamily(addr.hostname) === 6 ? 6 : 4;
    this.localAddr = formatAddr(addr.hostname, addr.port);
    this.remoteAddr = options.connect ? formatAddr(options.connect.hostname, options.connect.port) : "";
  }

  get released(): Promise<void> {
    return this.#released.promise;
  }

  start(sink: TransportSink): void {
    if (this.#sink || this.#done) return;
    this.#sink = sink;
    this.#receiveNext();
  }

  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    // Not from inside the session's own call: a held datagram reaches it in a task of its own, as any other.
    queueMicrotask(this.#resumeReading);
  }

  write(chunk: Uint8Array, to?: PeerAddress): true | Promise<void> {
    if (this.#done) return Promise.reject(closedError());
    const dest = this.#connect ?? to;
    if (!dest) {
      this.#events.sendFailed(new Error("no destination for a datagram on an unconnected socket"), undefined);
      return true;
    }
    if (!isLastPeer(dest) && ipFamily(dest.hostname) === 0) return this.#sendNamed(chunk, dest);
    return (this.#lastSend = this.#send(chunk, dest.hostname, dest));
  }

  /** A datagram to a host name: looked up first (cached per host). */
  async #sendNamed(chunk: Uint8Array, dest: PeerAddress): Promise<void> {
    const found = await lookupPeer(dest, this.family, this.#events, () => this.#done ? closedError() : undefined);
    if (found) return this.#send(chunk, found.hostname, dest);
  }

  /** Resolves once sent or failed (a failure is reported, not thrown); rejects only once the socket is closed. */
  #send(chunk: Uint8Array, hostname: string, dest: PeerAddress): Promise<void> {
    if (this.#done) return Promise.reject(closedError());
    let sending: Promise<number>;
    try {
      sending = this.#conn.send(chunk, { transport: "udp", hostname, port: dest.port });
    } catch (error) {
      sending = Promise.reject(error);
    }
    return sending.then(ignore, (error) => {
      if (this.#done) throw closedError();
      this.#events.sendFailed(error, dest);
    });
  }

  close(): void {
    if (this.#done) return;
    this.#done = true;
    try {
      this.#conn.close();
    } catch {
      // already closed
    }
    this.#held = undefined;
    // A pending receive() holds the port until it is cancelled (it then rejects with Interrupted).
    if (!this.#receiving) this.#released.resolve();
  }

  /** Closes the socket and reports `error` to the sink as the end of the connection. */
  #fail(error: unknown): void {
    this.close();
    this.#sink!.closed(error);
  }

  /** Starts the next `receive()` unless one is pending, or reading is paused, waits for sends, or is over. */
  #receiveNext(): void {
    if (this.#receiving || this.#paused || this.#done || this.#held !== undefined) return;
    this.#receiving = true;
    let receiving: Promise<[Uint8Array, Deno.Addr]>;
    try {
      receiving = this.#conn.receive(this.#buf);
    } catch (error) {
      receiving = Promise.reject(error);
    }
    receiving.then(this.#onReceived, this.#onReceiveFailed);
  }

  /** One received datagram (not while paused): delivered, then the next `receive()` (see below when). */
  #handle(received: [Uint8Array, Deno.Addr]): void {
    const addr = received[1] as Deno.NetAddr;
    const from = peer(addr.hostname, addr.port);
    if (this.#connect && !samePeer(from, this.#connect)) {
      this.#events.dropped("foreign");
      return this.#receiveNext();
    }
    try {
      this.#deliver(received[0], from);
    } catch (error) {
      return this.#fail(error); // the sink failed: the socket is no use to it any more
    }
    // The sends the session started meanwhile (an answer, typically) settle before the next receive(), as in a
    // plain `receive(); await send()` loop. Deno settles a send an event-loop turn after it went out; receiving
    // at once instead found the socket empty now and then (8 KiB echo: 8,900 epoll_waits in 3 s against 170,
    // one failed recvfrom each) and let answers queue behind the send in flight. Waiting: 8 KiB echo 0.86× →
    // 1.00× the raw server on one core (1.10–1.14× the previous driver). A send to a host name is not waited
    // for: its lookup can take seconds. (The session's outbound buffer reacted to that send first: its next
    // write is under way, if it had one, when the next datagram comes.)
    const sending = this.#lastSend;
    if (sending === undefined) return this.#receiveNext();
    this.#lastSend = undefined;
    sending.then(this.#afterSend, this.#afterSend); // rejects only once closed: then nothing is received
  }

  /**
   * Hands `data` (a view of the receive buffer) to the sink: a copy, as the next `receive()` reuses the buffer,
   * unless the session released the last few datagrams. Then the view itself goes, and should the session keep
   * it after all, the next `receive()` gets a new buffer and copies resume until it releases again.
   */
  #deliver(data: Uint8Array, from: PeerAddress): void {
    const uncopied = this.#releasedInRow === RELEASED_BEFORE_VIEWS;
    if (this.#sink!.data(uncopied ? data : this.#copy(data), from) === true) {
      if (!uncopied) this.#releasedInRow++;
      return;
    }
    if (uncopied) this.#buf = new Uint8Array(RECEIVE_BUFFER_SIZE);
    this.#releasedInRow = 0;
  }

  /** A copy of `data` in the part of the copy slab no datagram used yet. */
  #copy(data: Uint8Array): Uint8Array {
    const n = data.length;
    let slab = this.#copySlab;
    let start = this.#copyUsed;
    if (slab === undefined || start + n > slab.length) {
      slab = this.#copySlab = new Uint8Array(Math.max(COPY_SLAB_SIZE, n));
      start = 0;
    }
    slab.set(data, start);
    this.#copyUsed = start + n;
    return slab.subarray(start, start + n);
  }
}

/** {@link UdpAdapter} on `Deno.listenDatagram` (needs `--unstable-net`). */
export const denoUdpAdapter: UdpAdapter = {
  name: "deno",
  bind(options: UdpBindOptions): Promise<UdpSocket> {
    if (!hasListenDatagram()) {
      return Promise.reject(new Error("Deno.listenDatagram is not available: run Deno with --unstable-net"));
    }
    let conn: Deno.DatagramConn;
    try {
      conn = Deno.listenDatagram({ transport: "udp", hostname: options.hostname, port: options.port });
    } catch (error) {
      return Promise.reject(error); // AddrInUse, … are thrown synchronously
    }
    const connect = options.connect
      ? { hostname: normalizeHost(options.connect.hostname), port: options.connect.port }
      : undefined;
    return Promise.resolve(new DenoUdpSocket(conn, { ...options, connect }));
  },
};
