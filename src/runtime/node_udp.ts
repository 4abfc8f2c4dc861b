/**
 * The node:dgram UDP driver. It needs no flag on either runtime, so it is what Deno uses without
 * `--unstable-net`, and it can be chosen on Bun too (`driver: "node"`).
 *
 * - `send(msg, …, callback)`: the write resolves in the callback. An error there (or thrown synchronously:
 *   bad port, …) is a per-datagram failure, reported as `sendFailed`; the write still resolves.
 * - node:dgram cannot pause reading: while the session is paused datagrams are held up to `pausedBacklog`.
 * - Connected sockets use `socket.connect()`. Datagrams from other addresses are dropped (`"foreign"`) by the
 *   driver too, because Deno's node:dgram `connect()` does not connect the OS socket.
 *
 * Runtime facts verified for this driver (Deno 2.9.6, Bun 1.4.5) beyond `runtime-notes.md`:
 * - A `send()` still pending when the socket is closed never calls its callback, on both runtimes: the driver
 *   settles such writes itself on `close()`.
 * - On Bun, a *connected* node:dgram socket does emit `'error'` (`ECONNREFUSED`) after sending to a closed
 *   port; Deno's does not. An `'error'` listener is always installed.
 * - Deno's `connect()` is emulated: the socket still receives datagrams from any address (Bun's filters them),
 *   and its `address()` stays the bound wildcard `0.0.0.0` (Bun reports the routed local IP).
 * - A `udp6` socket bound to `::` sends to plain IPv4 literals; IPv4 senders appear as `::ffff:a.b.c.d`.
 * - Every `'message'` gets a fresh Buffer; on Bun it is right-sized, on Deno it sits in its own 64 KiB
 *   ArrayBuffer whatever the datagram's size.
 * - A burst of datagrams far beyond the receive buffer is mostly dropped by the kernel (3,000 × 1 KB sent in
 *   one go on loopback: ~1,000 arrived on Deno, ~70 on Bun): UDP senders must pace themselves.
 *
 * @module
 */
import dgram from "node:dgram";
import { formatAddr, type PeerAddress, type TransportSink } from "../transport.ts";
import { ipFamily, normalizeHost, peer, resolveHost, samePeer } from "../udp/address.ts";
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

class NodeUdpSocket implements UdpSocket {
  readonly framing = "datagram";
  readonly retainableChunks = true;
  readonly maxWriteSize = MAX_UDP_PAYLOAD;
  readonly hostname: string;
  readonly port: number;
  readonly family: 4 | 6;
  readonly localAddr: string;
  readonly remoteAddr: string;
  readonly #socket: dgram.Socket;
  readonly #connected: boolean;
  readonly #connect: PeerAddress | undefined;
  readonly #events: UdpSocketEvents;
  readonly #inbox: DatagramInbox;
  /** Rejecters of writes whose callback has not run yet (settled on close: node never calls them then). */
  readonly #pending = new Set<(error: unknown) => void>();
  #done = false;
  readonly #released = Promise.withResolvers<void>();

  constructor(socket: dgram.Socket, options: UdpBindOptions, family: 4 | 6) {
    this.#socket = socket;
    this.#connected = options.connect !== undefined;
    this.#connect = options.connect;
    this.#events = options.events;
    this.#inbox = new DatagramInbox(options.pausedBacklog, () => options.events.dropped("backlog"));
    const address = socket.address();
    this.hostname = address.address;
    this.port = address.port;
    this.family = family;
    this.localAddr = formatAddr(address.address, address.port);
    this.remoteAddr = options.connect ? formatAddr(options.connect.hostname, options.connect.port) : "";
    socket.on("message", (msg: Uint8Array, rinfo: dgram.RemoteInfo) => {
      if (this.#done) return;
      const from = peer(rinfo.address, rinfo.port);
      if (this.#connect && !samePeer(from, this.#connect)) return this.#events.dropped("foreign"); // Deno: see above
      // Each message has its own buffer, but on Deno it is 64 KiB whatever the datagram's size: copy those to
      // the right size (a package that is a view would pin 64 KiB). Otherwise a plain Uint8Array view.
      const own = msg.byteOffset === 0 && msg.buffer.byteLength === msg.byteLength;
      this.#inbox.push(own ? new Uint8Array(msg.buffer, 0, msg.byteLength) : new Uint8Array(msg), from);
    });
    socket.on("error", (error: Error) => {
      if (!this.#done) this.#events.socketError(error);
    });
    socket.on("close", () => {
      this.#released.resolve();
      if (this.#done) return;
      this.#shutdown();
      this.#inbox.end(closedError()); // closed by someone else: the session ends with an error
    });
  }

  get released(): Promise<void> {
    return this.#released.promise;
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
    if (this.#connected) return this.#send(chunk, undefined);
    if (!to) {
      this.#events.sendFailed(new Error("no destination for a datagram on an unconnected socket"), undefined);
      return true;
    }
    if (ipFamily(to.hostname) === 0) return this.#resolveThenSend(chunk, to);
    return this.#send(chunk, to);
  }

  async #resolveThenSend(chunk: Uint8Array, to: PeerAddress): Promise<void> {
    const found = await lookupPeer(to, this.family, this.#events, () => this.#done ? closedError() : undefined);
    if (!found) return;
    if (this.#done) throw closedError();
    await this.#send(chunk, found);
  }

  #send(chunk: Uint8Array, to: PeerAddress | undefined): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const settle = (error: Error | null) => {
        if (!this.#pending.delete(reject)) return;
        if (error) this.#events.sendFailed(error, to);
        resolve();
      };
      this.#pending.add(reject);
      try {
        if (to) this.#socket.send(chunk, to.port, to.hostname, settle);
        else this.#socket.send(chunk, settle);
      } catch (error) {
        settle(error instanceof Error ? error : new Error(String(error)));
      }
    });
  }

  close(): void {
    if (this.#done) return;
    this.#shutdown();
    this.#inbox.close();
    try {
      this.#socket.close();
    } catch {
      this.#released.resolve(); // already closed
    }
  }

  #shutdown(): void {
    this.#done = true;
    const pending = [...this.#pending];
    this.#pending.clear();
    for (const reject of pending) reject(closedError());
  }
}

/** Waits for `event` on `socket`, rejecting on its `'error'` event. */
function once(socket: dgram.Socket, start: (done: () => void) => void): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onError = (error: Error) => reject(error);
    socket.once("error", onError);
    start(() => {
      socket.off("error", onError);
      resolve();
    });
  });
}

/** {@link UdpAdapter} on node:dgram (no flag needed on Deno or Bun). */
export const nodeUdpAdapter: UdpAdapter = {
  name: "node",
  async bind(options: UdpBindOptions): Promise<UdpSocket> {
    const family = ipFamily(options.hostname) === 6 ? 6 : 4;
    const socket = dgram.createSocket({ type: family === 6 ? "udp6" : "udp4" });
    try {
      await once(socket, (done) => socket.bind({ port: options.port, address: options.hostname }, done));
      let connect: PeerAddress | undefined;
      if (options.connect) {
        const c = { hostname: normalizeHost(options.connect.hostname), port: options.connect.port };
        const hostname = ipFamily(c.hostname) === 0 ? await resolveHost(c.hostname, family === 4 ? 4 : 0) : c.hostname;
        connect = { hostname, port: c.port };
        await once(socket, (done) => socket.connect(c.port, hostname, done));
      }
      return new NodeUdpSocket(socket, { ...options, connect }, family);
    } catch (error) {
      try {
        socket.close();
      } catch {
        // never bound
      }
      throw error;
    }
  },
};
