/**
 * The native Bun UDP driver: `Bun.udpSocket`.
 *
 * - `send()` is synchronous: `true` = the kernel took the datagram; `false` = it did not (the send buffer is
 *   full) and the datagram must be sent again after the `drain` handler ran. The driver keeps a FIFO of such
 *   datagrams and returns a promise for each, so writers wait instead of losing data.
 * - `send()` throws synchronously for a datagram that can never go (`EMSGSIZE`, `EAFNOSUPPORT` for an IPv6
 *   destination on an IPv4 socket, "Invalid address" for a host name): reported as `sendFailed`, dropped.
 * - The `error` handler is mandatory: without it an ICMP error (a peer's closed port) is an uncaught exception
 *   that ends the process. It is called with ONE argument (the error), not `(socket, error)` as typed.
 * - Bun cannot pause a UDP socket: while the session is paused datagrams are held up to `pausedBacklog`.
 *
 * Runtime facts verified for this driver (Bun 1.4.5) beyond `runtime-notes.md`:
 * - An ICMP error is followed by a spurious `drain` call.
 * - `EMSGSIZE` is reported twice: thrown by `send()` and again through the `error` handler ("…, recv").
 * - Empty datagrams are delivered (a zero-length `Uint8Array`). Each datagram arrives in its own right-sized
 *   buffer (with `binaryType: "uint8array"`), so the driver passes it on without a copy.
 * - A dual-stack socket (`::`) can send to plain IPv4 literals and sees IPv4 senders as `::ffff:a.b.c.d`.
 * - `udpSocket({ connect })` resolves a host name for `connect` itself, but binds `0.0.0.0` unless told
 *   otherwise, so connecting to `::1` fails with `EAFNOSUPPORT`; bind `::` (or `::1`) for IPv6 peers.
 * - A connected socket's `send(data, port, address)` throws "Cannot specify destination on connected socket".
 * - Binding a port in use throws `EADDRINUSE` (a rejected promise from `udpSocket`).
 *
 * @module
 */
import { formatAddr, type PeerAddress, type TransportSink } from "../transport.ts";
import { ipFamily, normalizeHost, peer } from "../udp/address.ts";
import {
  lookupPeer,
  MAX_UDP_PAYLOAD,
  type UdpAdapter,
  type UdpBindOptions,
  type UdpSocket,
  type UdpSocketEvents,
} from "../udp/adapter.ts";
import { DatagramInbox } from "../udp/inbox.ts";

function closedError(): Error {
  return Object.assign(new Error("UDP socket is closed"), { code: "ERR_SOCKET_CLOSED" });
}

/** The part of a Bun UDP socket (connected or not) the driver uses; tests substitute a fake. */
export interface BunUdpLike {
  /** Sends one datagram: to `port`/`address` on an unconnected socket, without them on a connected one. */
  send(data: Uint8Array, port?: number, address?: string): boolean;
  /** Closes the socket. */
  close(): void;
  /** The bound address. */
  readonly address: { readonly address: string; readonly port: number };
}

interface Queued {
  readonly chunk: Uint8Array;
  readonly dest: PeerAddress | undefined;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

/** One Bun UDP socket as a {@link UdpSocket}. Exported for tests (with a fake {@link BunUdpLike}). */
export class BunUdpSocket implements UdpSocket {
  readonly framing = "datagram";
  /** Bun hands each `data` call a fresh, right-sized buffer (verified). */
  readonly retainableChunks = true;
  /** `send()` is synchronous; a datagram the kernel could not take yet is queued as a copy. */
  readonly writeTakesCopy = true;
  /** Bun calls `data` once per datagram, one after another for what one wake-up brought. */
  readonly readsInTurns = true;
  readonly maxWriteSize = MAX_UDP_PAYLOAD;
  readonly hostname: string;
  readonly port: number;
  readonly family: 4 | 6;
  readonly localAddr: string;
  readonly remoteAddr: string;
  readonly #socket: BunUdpLike;
  readonly #connected: boolean;
  readonly #events: UdpSocketEvents;
  readonly #inbox: DatagramInbox;
  /** Datagrams waiting for `drain`, in write order. */
  #queue: Queued[] = [];
  #done = false;
  /** Bun releases the port inside `close()`. */
  readonly released: Promise<void> = Promise.resolve();

  /** Wraps `socket`; `boundHost` is the host it was bound to (Bun reports `0.0.0.0` for connected sockets). */
  constructor(socket: BunUdpLike, options: UdpBindOptions, boundHost: string) {
    this.#socket = socket;
    this.#connected = options.connect !== undefined;
    this.#events = options.events;
    this.#inbox = new DatagramInbox(options.pausedBacklog, () => options.events.dropped("backlog"));
    const address = socket.address;
    this.hostname = address.address || boundHost;
    this.port = address.port;
    this.family = ipFamily(boundHost) === 6 ? 6 : 4;
    this.localAddr = formatAddr(this.hostname, this.port);
    this.remoteAddr = options.connect ? formatAddr(options.connect.hostname, options.connect.port) : "";
  }

  start(sink: TransportSink): void {
    if (!this.#done) this.#inbox.start(sink);
  }

  pause(): void {
    this.#inbox.pause();
  }

  resume(): void {
    this.#inbox.resume();
  }

  write(chunk: Uint8Array, to?: PeerAddress): true | Promise<void> {
    if (this.#done) return Promise.reject(closedError());
    const dest = this.#connected ? undefined : to;
    if (!this.#connected) {
      if (!dest) {
        this.#events.sendFailed(new Error("no destination for a datagram on an unconnected socket"), undefined);
        return true;
      }
      if (ipFamily(dest.hostname) === 0) return this.#resolveThenSend(chunk.slice(), dest);
    }
    if (this.#queue.length === 0) {
      const sent = this.#trySend(chunk, dest);
      if (sent) return true;
    }
    // The caller may reuse `chunk` once write() returned (writeTakesCopy): a queued datagram is a copy.
    return new Promise<void>((resolve, reject) => this.#queue.push({ chunk: chunk.slice(), dest, resolve, reject }));
  }

  async #resolveThenSend(chunk: Uint8Array, dest: PeerAddress): Promise<void> {
    const found = await lookupPeer(dest, this.family, this.#events, () => this.#done ? closedError() : undefined);
    if (!found) return;
    const r = this.write(chunk, found);
    if (r !== true) await r;
  }

  /** Sends now: true when done with (sent, or failed and reported), false when the kernel had no room. */
  #trySend(chunk: Uint8Array, dest: PeerAddress | undefined): boolean {
    try {
      return dest ? this.#socket.send(chunk, dest.port, dest.hostname) : this.#socket.send(chunk);
    } catch (error) {
      this.#events.sendFailed(error, dest);
      return true;
    }
  }

  /** Called from Bun's `drain` handler: sends queued datagrams until the kernel is full again. */
  onDrain(): void {
    while (!this.#done && this.#queue.length > 0) {
      const head = this.#queue[0];
      if (!this.#trySend(head.chunk, head.dest)) return;
      this.#queue.shift();
      head.resolve();
    }
  }

  /** Called from Bun's `data` handler. */
  onData(data: Uint8Array, port: number, address: string, truncated: boolean): void {
    if (this.#done) return;
    if (truncated) {
      this.#events.dropped("truncated");
      return;
    }
    this.#inbox.push(data, peer(address, port));
  }

  /** Called from Bun's `error` handler (ICMP errors and the like): the socket keeps working. */
  onError(error: unknown): void {
    if (!this.#done) this.#events.socketError(error);
  }

  close(): void {
    if (this.#done) return;
    this.#done = true;
    this.#inbox.close();
    try {
      this.#socket.close();
    } catch {
      // already closed
    }
    const queue = this.#queue;
    this.#queue = [];
    for (const q of queue) q.reject(closedError());
  }
}

type Binary = "uint8array";

/** {@link UdpAdapter} on `Bun.udpSocket`. */
export const bunUdpAdapter: UdpAdapter = {
  name: "bun",
  async bind(options: UdpBindOptions): Promise<UdpSocket> {
    let target: BunUdpSocket | undefined;
    const early: Array<[Uint8Array, number, string, boolean]> = [];
    const handlers = {
      data(_s: unknown, data: Uint8Array, port: number, address: string, flags?: { truncated?: boolean }) {
        const truncated = flags?.truncated === true;
        if (target) target.onData(data, port, address, truncated);
        else early.push([data, port, address, truncated]);
      },
      drain() {
        target?.onDrain();
      },
      // Called as error.call(socket, err): ONE argument. Without this handler an ICMP error kills the process.
      error(a: unknown, b?: unknown) {
        target?.onError(b ?? a);
      },
    };
    const hostname = options.hostname;
    let socket: BunUdpLike;
    if (options.connect) {
      const connect = { hostname: normalizeHost(options.connect.hostname), port: options.connect.port };
      socket = await Bun.udpSocket<Binary>({
        hostname,
        port: options.port,
        binaryType: "uint8array",
        connect,
        socket: handlers,
      }) as unknown as BunUdpLike;
      target = new BunUdpSocket(socket, { ...options, connect }, hostname);
    } else {
      socket = await Bun.udpSocket<Binary>({
        hostname,
        port: options.port,
        binaryType: "uint8array",
        socket: handlers,
      }) as unknown as BunUdpLike;
      target = new BunUdpSocket(socket, options, hostname);
    }
    for (const [data, port, address, truncated] of early) target.onData(data, port, address, truncated);
    return target;
  },
};
