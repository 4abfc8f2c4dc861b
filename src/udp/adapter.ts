/**
 * The UDP adapter contract: one datagram {@link Transport} per bound socket. Three drivers implement it:
 * `Deno.listenDatagram` (Deno with `--unstable-net`), `Bun.udpSocket` (Bun) and `node:dgram` (both runtimes,
 * no flag). The endpoints in this folder are the only users.
 *
 * Rules every driver follows (they differ underneath; see each driver's header):
 * - `write(chunk, to)` sends one datagram. It resolves (or returns `true`) once the runtime took it, and waits
 *   while the runtime signals backpressure. A datagram the network refuses (unreachable destination, wrong
 *   address family, …) is **dropped and reported** through {@link UdpSocketEvents.sendFailed}; the write still
 *   resolves, so one bad destination never fails the session that shares the socket. Writes reject only once
 *   the socket is closed. Unlike a stream transport, `write` may be called again before an earlier write
 *   settled (per-peer sessions share one socket).
 * - Received datagrams reach the sink whole, each in its own right-sized buffer that the driver never touches
 *   again (`retainableChunks`: packages may be views of it, no copy in the session), with the sender as `from`
 *   (IPv4-mapped IPv6 senders such as `::ffff:127.0.0.1` are reported as plain IPv4). While paused (or before
 *   `start`), a bounded number of datagrams is held and later ones are dropped and reported through
 *   {@link UdpSocketEvents.dropped}.
 * - ICMP errors (a peer's port is closed) never stop the socket; where the runtime reports them (Bun) they go
 *   to {@link UdpSocketEvents.socketError}.
 *
 * @module
 */
import type { PeerAddress, Transport } from "../transport.ts";
import { resolveHost } from "./address.ts";

/** Largest UDP payload over IPv4 (65,535 − 8-byte UDP header − 20-byte IP header). */
export const MAX_UDP_PAYLOAD = 65_507;

/** Why a received datagram was dropped before it reached a session. */
export type DropReason =
  /** The session was not reading (paused or not started yet) and `pausedBacklog` datagrams were already held. */
  | "backlog"
  /** A datagram from another address reached an emulated connected socket (Deno's `listenDatagram` has no `connect`). */
  | "foreign"
  /** The runtime truncated the datagram (larger than its receive buffer). */
  | "truncated"
  /** A UDP endpoint in per-peer mode refused the sender (`maxPeers`) or was closing. */
  | "refused";

/** What a UDP socket reports besides data. Each callback is called synchronously from the driver. */
export interface UdpSocketEvents {
  /** A received datagram was discarded. */
  dropped(reason: DropReason): void;
  /** A datagram could not be sent (the write resolved anyway): `error` is the runtime's error. */
  sendFailed(error: unknown, to: PeerAddress | undefined): void;
  /** The runtime reported an error that does not stop the socket (ICMP errors on Bun, …). */
  socketError(error: unknown): void;
}

/** What a driver needs to bind a socket. */
export interface UdpBindOptions {
  /** Local IP literal to bind (`0.0.0.0` / `::` for every interface). */
  readonly hostname: string;
  /** Local port; 0 = any free port. */
  readonly port: number;
  /**
   * Connect the socket to this peer (IP literal): every write goes there, and only its datagrams are received.
   * Where the runtime has no connected UDP sockets (Deno's `listenDatagram`), the driver emulates it.
   */
  readonly connect?: PeerAddress;
  /** Datagrams held while the sink is paused or not started; later ones are dropped (`"backlog"`). */
  readonly pausedBacklog: number;
  /** Reports drops, send failures and non-fatal socket errors. */
  readonly events: UdpSocketEvents;
}

/** A bound UDP socket as a datagram {@link Transport}. */
export interface UdpSocket extends Transport {
  /** Always `datagram`. */
  readonly framing: "datagram";
  /** Always true: every datagram is delivered in a fresh buffer. */
  readonly retainableChunks: true;
  /** The bound IP (as bound: `0.0.0.0` for the wildcard). */
  readonly hostname: string;
  /** The bound port. */
  readonly port: number;
  /** Address family of the socket: 6 for a socket bound to an IPv6 address (dual-stack for `::`). */
  readonly family: 4 | 6;
  /**
   * Resolves once the socket was closed AND the runtime released its port (a pending receive may hold it for a
   * moment after `close()`). Never rejects.
   */
  readonly released: Promise<void>;
}

/** A UDP driver. */
export interface UdpAdapter {
  /** `"deno"` (Deno.listenDatagram), `"bun"` (Bun.udpSocket) or `"node"` (node:dgram), or a test double's name. */
  readonly name: string;
  /** Binds (and optionally connects) a socket; resolves once bound. Rejects with the runtime's error. */
  bind(options: UdpBindOptions): Promise<UdpSocket>;
}

/**
 * `to` with its host name looked up for a socket of `family` (for a `to` that is not an IP address). A failed
 * lookup is reported as a failed send (`sendFailed`) and gives undefined; but when the socket closed meanwhile,
 * `closed()` gives the error that is thrown instead.
 */
export async function lookupPeer(
  to: PeerAddress,
  family: 4 | 6,
  events: UdpSocketEvents,
  closed: () => Error | undefined,
): Promise<PeerAddress | undefined> {
  try {
    return { hostname: await resolveHost(to.hostname, family === 4 ? 4 : 0), port: to.port };
  } catch (error) {
    const closedError = closed();
    if (closedError) throw closedError;
    events.sendFailed(error, to);
    return undefined;
  }
}
