/**
 * Per-peer mode of a UDP endpoint: one virtual datagram transport per remote address, writing through the
 * endpoint's shared socket. Each gets its own Session (codec state, attributes, timers, listener).
 *
 * @module
 */
import { scheduler, type Timed } from "../scheduler.ts";
import { formatAddr, type PeerAddress, type Transport, type TransportSink } from "../transport.ts";
import { peerKey } from "./address.ts";
import type { UdpSocket } from "./adapter.ts";
import { DatagramInbox } from "./inbox.ts";

function closedError(): Error {
  return Object.assign(new Error("UDP peer session is closed"), { code: "ERR_SOCKET_CLOSED" });
}

/** What a {@link PeerTransport} reports to its endpoint. */
export interface PeerHost {
  /** The transport was closed (its session is gone). */
  closed(transport: PeerTransport): void;
  /** Nothing arrived from the peer for `idleTimeout` ms. */
  idle(transport: PeerTransport): void;
  /** A datagram for this peer was dropped (backlog full). */
  dropped(): void;
}

/**
 * One remote address as a datagram {@link Transport}: writes go to that peer through the shared socket
 * (`to` is ignored), and datagrams from it are pushed in by the endpoint. While its session is paused (or
 * still opening) up to `backlog` datagrams are held, later ones dropped; the other peers are not affected.
 */
export class PeerTransport implements Transport, Timed {
  readonly framing = "datagram";
  /** The shared socket delivers fresh buffers, passed on as they are. */
  readonly retainableChunks = true;
  readonly maxWriteSize: number | undefined;
  /** As the shared socket's. */
  readonly writeTakesCopy: boolean;
  /** As the shared socket's. */
  readonly readsInTurns: boolean;
  readonly localAddr: string;
  readonly remoteAddr: string;
  /** The peer. */
  readonly peer: PeerAddress;
  /** The peer's map key. */
  readonly key: string;
  /** @internal scheduler bucket. */
  _bucket?: number = undefined;
  /** @internal slot in the scheduler bucket (declared here so scheduling never changes the object's shape). */
  _slot?: number = undefined;
  /** When the last datagram from the peer arrived, ms since epoch. */
  lastSeen: number = Date.now();
  readonly #socket: UdpSocket;
  readonly #inbox: DatagramInbox;
  readonly #host: PeerHost;
  readonly #idleTimeout: number;
  #closed = false;

  /** A transport for `peer` on `socket`; evicted after `idleTimeout` ms of silence (0 = never). */
  constructor(socket: UdpSocket, peer: PeerAddress, backlog: number, idleTimeout: number, host: PeerHost) {
    this.#socket = socket;
    this.peer = peer;
    this.key = peerKey(peer);
    this.#host = host;
    this.#idleTimeout = idleTimeout;
    this.#inbox = new DatagramInbox(backlog, () => host.dropped());
    this.maxWriteSize = socket.maxWriteSize;
    this.writeTakesCopy = socket.writeTakesCopy === true;
    this.readsInTurns = socket.readsInTurns === true;
    this.localAddr = socket.localAddr;
    this.remoteAddr = formatAddr(peer.hostname, peer.port);
    if (idleTimeout > 0) scheduler.schedule(this, this.lastSeen + idleTimeout);
  }

  start(sink: TransportSink): void {
    this.#inbox.start(sink);
  }

  pause(): void {
    this.#inbox.pause();
  }

  resume(): void {
    this.#inbox.resume();
  }

  write(chunk: Uint8Array): true | Promise<void> {
    if (this.#closed) return Promise.reject(closedError());
    return this.#socket.write(chunk, this.peer);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#inbox.close();
    scheduler.cancel(this);
    this.#host.closed(this);
  }

  /** A datagram from the peer (the endpoint demultiplexes the socket). */
  receive(chunk: Uint8Array, from: PeerAddress): void {
    if (this.#closed) return;
    this.lastSeen = Date.now();
    this.#inbox.push(chunk, from);
  }

  /** Ends the session as if the peer had closed (after the held datagrams). */
  evict(): void {
    scheduler.cancel(this);
    this.#inbox.end();
  }

  /** @internal Called by the shared scheduler: evicts after `idleTimeout` of silence, else re-arms. */
  onTimer(now: number): void {
    if (this.#closed) return;
    const due = this.lastSeen + this.#idleTimeout;
    if (now >= due) this.#host.idle(this);
    else scheduler.schedule(this, due);
  }
}
