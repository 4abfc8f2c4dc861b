/**
 * What the UDP endpoint and client share: their common options, the counters behind `stats()`, and the
 * destination check of writes on an unconnected endpoint session.
 *
 * @module
 */
import type { EndpointStats } from "../endpoint_core.ts";
import { ConnectionError, describe, InvalidOptionError } from "../errors.ts";
import { getLogger } from "../logger.ts";
import { checkFunction, optInt } from "../options.ts";
import { rejected } from "../outbound.ts";
import { Session, type WriteOptions, type WriteResult } from "../session.ts";
import { formatAddr, type PeerAddress } from "../transport.ts";
import { ipFamily, isLastPeer, normalizeHost, resolveHost } from "./address.ts";
import type { DropReason, UdpSocketEvents } from "./adapter.ts";
import { resolveUdpDriver, type UdpDriver, type UdpDriverName } from "./select.ts";

/** Options the UDP endpoint and client share. */
export interface UdpSocketOptions {
  /**
   * Which UDP implementation to use: `"auto"` (default: `Deno.listenDatagram` on Deno started with
   * `--unstable-net`, else node:dgram; `Bun.udpSocket` on Bun), `"native"` (the runtime's own API; on Deno this
   * needs `--unstable-net`) or `"node"` (node:dgram, no flag on either runtime). Read the choice from `driver`.
   */
  readonly driver?: UdpDriver;
  /**
   * Datagrams held for a session that is not reading (its inbound queue is full, or it is still opening);
   * later ones are dropped and counted in `stats().dropped`. Default 256. (With `Deno.listenDatagram` the
   * kernel's receive buffer plays this part while a session is paused.)
   */
  readonly pausedBacklog?: number;
  /**
   * Called when a datagram could not be sent (unreachable or invalid destination, failed host name lookup).
   * UDP gives no delivery guarantee, so such a write still resolves; this callback (and
   * `stats().sendErrors`) is how to notice. Errors of the socket itself (ICMP "port unreachable" reports,
   * which only Bun surfaces) are counted in `stats().socketErrors` and logged at debug level.
   */
  readonly onSendError?: (error: ConnectionError, to: PeerAddress | undefined) => void;
}

/** Names of the {@link UdpSocketOptions} keys, for `checkKnownKeys`. */
export const SOCKET_KEYS = ["driver", "pausedBacklog", "onSendError"] as const;

/** Counters of a UDP endpoint or client, on top of the {@link EndpointStats}. */
export interface UdpStats extends EndpointStats {
  /**
   * Received datagrams discarded before reaching a session: backlog full while paused, from a foreign address
   * on a connected socket, truncated, or from a peer refused in per-peer mode.
   */
  readonly dropped: number;
  /** Datagrams that could not be sent (see `onSendError`). */
  readonly sendErrors: number;
  /** Non-fatal errors the runtime reported for the socket (ICMP errors on Bun). */
  readonly socketErrors: number;
}

/** Default of `pausedBacklog`. */
export const DEFAULT_PAUSED_BACKLOG = 256;

/** The validated socket options. */
export interface ResolvedSocketOptions {
  readonly driver: UdpDriverName;
  readonly pausedBacklog: number;
  readonly onSendError: ((error: ConnectionError, to: PeerAddress | undefined) => void) | undefined;
}

/** Validates the {@link UdpSocketOptions} of `where` (e.g. `UdpEndpoint`). */
export function resolveSocketOptions(where: string, options: UdpSocketOptions): ResolvedSocketOptions {
  const driver = resolveUdpDriver(`${where}.driver`, options.driver);
  const pausedBacklog = optInt(`${where}.pausedBacklog`, options.pausedBacklog, DEFAULT_PAUSED_BACKLOG, 0);
  if (options.onSendError !== undefined) checkFunction(`${where}.onSendError`, options.onSendError);
  return { driver, pausedBacklog, onSendError: options.onSendError };
}

/** The UDP-specific counters, fed by a socket's {@link UdpSocketEvents}. */
export class UdpCounters {
  dropped = 0;
  sendErrors = 0;
  socketErrors = 0;
  readonly #what: string;
  readonly #onSendError: ResolvedSocketOptions["onSendError"];

  /** `what` names the owner in log lines (e.g. `UdpEndpoint 3`). */
  constructor(what: string, onSendError: ResolvedSocketOptions["onSendError"]) {
    this.#what = what;
    this.#onSendError = onSendError;
  }

  /** The events object to hand to a driver. */
  readonly events: UdpSocketEvents = {
    dropped: (reason: DropReason) => {
      this.dropped++;
      getLogger().debug("udp datagram dropped", { owner: this.#what, reason });
    },
    sendFailed: (error: unknown, to: PeerAddress | undefined) => {
      this.sendErrors++;
      const dest = to ? formatAddr(to.hostname, to.port) : "(no destination)";
      const wrapped = new ConnectionError(`udp send to ${dest} failed: ${errorText(error)}`, { cause: error });
      getLogger().debug("udp send failed", { owner: this.#what, to: dest, error: wrapped.message });
      if (!this.#onSendError) return;
      try {
        this.#onSendError(wrapped, to);
      } catch (e) {
        getLogger().warn("onSendError threw", { owner: this.#what, error: e });
      }
    },
    socketError: (error: unknown) => {
      this.socketErrors++;
      getLogger().debug("udp socket error (ignored)", { owner: this.#what, error: errorText(error) });
    },
  };

  /** Adds the counters to `base`. */
  stats(base: EndpointStats): UdpStats {
    return { ...base, dropped: this.dropped, sendErrors: this.sendErrors, socketErrors: this.socketErrors };
  }
}

/** `CODE: message` of a runtime error. */
export function errorText(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return typeof code === "string" && !error.message.includes(code) ? `${code}: ${error.message}` : error.message;
  }
  return String(error);
}

const NO_DESTINATION =
  "an unconnected UDP endpoint session needs a destination: writePkg(pkg, { to: { hostname, port } }), e.g. the `from` of onMessage";

/**
 * Where a write goes: an IP literal now (`to` itself when it is one already), a host name being resolved, or a
 * refusal. Nothing is allocated for the common answer to a sender (`{ to: from }`).
 */
function destination(
  options: number | WriteOptions | undefined,
  family: 4 | 6,
): PeerAddress | Promise<PeerAddress> | InvalidOptionError {
  const to = typeof options === "object" && options !== null ? options.to : undefined;
  if (to === undefined) return new InvalidOptionError("to", NO_DESTINATION);
  if (typeof to !== "object" || to === null || typeof to.hostname !== "string" || to.hostname.length === 0) {
    return new InvalidOptionError("to.hostname", "must be a non-empty host name or IP address");
  }
  const port = to.port;
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    return new InvalidOptionError("to.port", `must be an integer in [1, 65535] (got ${String(port)})`);
  }
  // The sender of the datagram being handled: an IP literal, normalised; only its family is left to check.
  if (isLastPeer(to) && (family === 6 || !to.hostname.includes(":"))) return to;
  const hostname = normalizeHost(to.hostname);
  const fam = ipFamily(hostname);
  if (fam === 6 && family === 4) {
    return new InvalidOptionError(
      "to.hostname",
      `IPv6 destination ${hostname} on an IPv4 socket: bind the endpoint to "::"`,
    );
  }
  if (fam !== 0) return hostname === to.hostname ? to : { hostname, port };
  const lookup = resolveHost(hostname, family === 4 ? 4 : 0).then(
    (ip) => ({ hostname: ip, port }),
    (error: unknown) => {
      throw new ConnectionError(`cannot resolve ${hostname}: ${describe(error)}`, { cause: error });
    },
  );
  lookup.catch(() => {});
  return lookup;
}

/** `options` with `to` as destination (`options` itself when that is its `to` already). */
function withTo(options: number | WriteOptions | undefined, to: PeerAddress): WriteOptions {
  if (typeof options !== "object" || options === null) return { to };
  return options.to === to ? options : { ...options, to };
}

/**
 * Makes the writes of an unconnected endpoint session check their destination before anything is queued:
 * a write without `to` (or with an invalid one) rejects with {@link InvalidOptionError} (option `to`,
 * `to.hostname` or `to.port`; `send` returns false) and the session stays open; a host name is resolved first
 * (a failed lookup rejects with {@link ConnectionError}; for `send` it goes to `lookupFailed`).
 * `writeBytesArray` cannot name a destination and always rejects.
 *
 * Done on the instance because the core hands a write without `to` straight to the socket, where a missing
 * destination could only drop the datagram or fail the whole session.
 */
export function requireDestination<P>(
  session: Session<P>,
  family: 4 | 6,
  lookupFailed: (error: ConnectionError, to: PeerAddress) => void,
): void {
  const { writePkg, send, writeBytes, writeBytesArray } = Session.prototype as Session<P>;
  const define = (name: string, value: unknown) =>
    Object.defineProperty(session, name, { value, configurable: true, writable: true, enumerable: false });
  const promised = (
    options: number | WriteOptions | undefined,
    write: (o: WriteOptions) => Promise<WriteResult>,
  ): Promise<WriteResult> => {
    const d = destination(options, family);
    if (d instanceof InvalidOptionError) return rejected(d);
    if (!(d instanceof Promise)) return write(withTo(options, d));
    const p = d.then((to) => write(withTo(options, to)));
    p.catch(() => {});
    return p;
  };
  define("writePkg", (pkg: P, options?: number | WriteOptions): Promise<WriteResult> => {
    if (session.isClosed()) return writePkg.call(session, pkg, options);
    return promised(options, (o) => writePkg.call(session, pkg, o));
  });
  define("writeBytes", (bytes: Uint8Array, options?: number | WriteOptions): Promise<WriteResult> => {
    if (session.isClosed()) return writeBytes.call(session, bytes, options);
    return promised(options, (o) => writeBytes.call(session, bytes, o));
  });
  define("send", (pkg: P, options?: number | WriteOptions): boolean => {
    if (session.isClosed()) return send.call(session, pkg, options);
    const d = destination(options, family);
    if (d instanceof InvalidOptionError) {
      getLogger().debug("udp send refused", { session: session.id, error: d.message });
      return false;
    }
    if (!(d instanceof Promise)) return send.call(session, pkg, withTo(options, d));
    const wanted = (options as WriteOptions).to!;
    d.then(
      (to) => void send.call(session, pkg, withTo(options, to)),
      (error: ConnectionError) => lookupFailed(error, wanted),
    );
    return true;
  });
  define("writeBytesArray", (...buffers: Uint8Array[]): Promise<WriteResult> => {
    if (session.isClosed()) return writeBytesArray.call(session, ...buffers);
    return rejected(
      new InvalidOptionError(
        "to",
        "writeBytesArray cannot name a destination on an unconnected UDP endpoint; use writeBytes(bytes, { to })",
      ),
    );
  });
}
