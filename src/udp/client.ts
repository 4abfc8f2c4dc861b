/**
 * The UDP client (getty's `UDP_CLIENT`): `connectionNumber` connected sockets to one server, one session each.
 *
 * @module
 */
import { type EndPoint, EndPointType } from "../endpoint.ts";
import { EndpointCore, type EndpointOptions, type NewSessionCallback } from "../endpoint_core.ts";
import { ConnectError, EndpointClosedError, InvalidOptionError } from "../errors.ts";
import { checkKnownKeys, checkPort, checkString, optInt } from "../options.ts";
import type { Session } from "../session.ts";
import { formatAddr } from "../transport.ts";
import { ipFamily, isLoopback, resolveHost } from "./address.ts";
import type { UdpAdapter, UdpSocket } from "./adapter.ts";
import {
  errorText,
  type ResolvedSocketOptions,
  resolveSocketOptions,
  SOCKET_KEYS,
  UdpCounters,
  type UdpSocketOptions,
  type UdpStats,
} from "./common.ts";
import { udpAdapter } from "./select.ts";

/** Options of {@link UdpClient}. */
export interface UdpClientOptions extends EndpointOptions, UdpSocketOptions {
  /** Server host name or address (resolved once, with node:dns, when the client starts). */
  readonly host: string;
  /** Server port. */
  readonly port: number;
  /** Sessions (each with its own socket and local port). Default 1. */
  readonly connectionNumber?: number;
  /**
   * Local address to bind. Default: `127.0.0.1` / `::1` when the server is on loopback, else `0.0.0.0` / `::`
   * (matching the server's address family).
   */
  readonly localHost?: string;
  /** @internal Use another driver than the selected one (tests). */
  readonly adapter?: UdpAdapter;
}

const KNOWN = [
  "host",
  "port",
  "connectionNumber",
  "localHost",
  "session",
  "sessionName",
  "maxConcurrentHandlers",
  ...SOCKET_KEYS,
  "adapter",
];

/**
 * A UDP client: `connectionNumber` sockets connected to one server, one session each. `writePkg(pkg)` sends
 * one datagram to the server (a `to` option is ignored); only the server's datagrams are received.
 *
 * UDP has no connection to lose, so there is no reconnecting: a session ends only when you close it, when
 * its `readTimeout` expires (the way to notice a server that went away — ICMP "port unreachable" reports are
 * ignored on every runtime), or with the client. Closed sessions are not replaced; `sessions` lists the open
 * ones. No probe datagram is sent on start (getty sends a magic `"connect-ping"`; this library sends only
 * what you write).
 *
 * @example
 * ```ts
 * import { LengthFieldCodec, UdpClient } from "@getty/getty";
 * const client = new UdpClient<Uint8Array>({ host: "127.0.0.1", port: 8000 });
 * await client.runEventLoop((session) => {
 *   session.setPkgHandler(new LengthFieldCodec());
 *   session.setEventListener({ onMessage: (_s, pkg) => console.log(pkg) });
 * });
 * await client.sessions[0].writePkg(new TextEncoder().encode("hello"));
 * await client.close();
 * ```
 */
export class UdpClient<P = Uint8Array> implements EndPoint {
  /** Always `UDP_CLIENT`. */
  readonly endPointType: EndPointType = EndPointType.UDP_CLIENT;
  readonly #core: EndpointCore<P>;
  readonly #hostname: string;
  readonly #port: number;
  readonly #connectionNumber: number;
  readonly #localHost: string | undefined;
  readonly #socketOptions: ResolvedSocketOptions;
  readonly #adapter: UdpAdapter | undefined;
  readonly #counters: UdpCounters;
  readonly #sockets = new Set<UdpSocket>();
  #started = false;
  #closed = false;
  #closing: Promise<void> | undefined;

  /** Validates the options; nothing is bound until {@link runEventLoop}. */
  constructor(options: UdpClientOptions) {
    if (typeof options !== "object" || options === null) throw new InvalidOptionError("UdpClient", "options required");
    checkKnownKeys("UdpClient", options, KNOWN);
    this.#hostname = checkString("UdpClient.host", options.host);
    this.#port = checkPort("UdpClient.port", options.port);
    if (this.#port === 0) throw new InvalidOptionError("UdpClient.port", "must be a port in [1, 65535] (got 0)");
    this.#connectionNumber = optInt("UdpClient.connectionNumber", options.connectionNumber, 1, 1, 10_000);
    this.#localHost = options.localHost === undefined
      ? undefined
      : checkString("UdpClient.localHost", options.localHost);
    this.#socketOptions = resolveSocketOptions("UdpClient", options);
    this.#adapter = options.adapter;
    this.#core = new EndpointCore<P>("UdpClient", this, options, "udp-session");
    this.#counters = new UdpCounters(`UdpClient ${this.#core.id}`, this.#socketOptions.onSendError);
  }

  /** Process-unique endpoint id. */
  get id(): number {
    return this.#core.id;
  }

  /** `host:port` of the server. */
  get address(): string {
    return formatAddr(this.#hostname, this.#port);
  }

  /** The UDP implementation in use: `"deno"` (Deno.listenDatagram), `"bun"` (Bun.udpSocket) or `"node"` (node:dgram). */
  get driver(): string {
    return this.#adapter?.name ?? this.#socketOptions.driver;
  }

  /** The open sessions (a snapshot). */
  get sessions(): Session<P>[] {
    return [...this.#core.sessions].filter((s) => s.state === "open");
  }

  /** Counters: sessions (open, opened, refused), traffic, errors, plus dropped datagrams and send errors. */
  stats(): UdpStats {
    return this.#counters.stats(this.#core.stats());
  }

  /** Whether close() was called. */
  isClosed(): boolean {
    return this.#closed;
  }

  /**
   * Resolves the server's address, binds `connectionNumber` connected sockets and opens a session on each;
   * resolves once all are open. If anything fails (lookup, bind, a session refused by `newSession` or
   * `onOpen`), closes the client and rejects with {@link ConnectError}.
   */
  async runEventLoop(newSession: NewSessionCallback<P>): Promise<void> {
    if (typeof newSession !== "function") throw new InvalidOptionError("newSession", "must be a function");
    if (this.#closed) throw new EndpointClosedError("UdpClient is closed");
    if (this.#started) throw new EndpointClosedError("UdpClient.runEventLoop was already called");
    this.#started = true;
    this.#core.started();
    try {
      let server: string;
      try {
        server = await resolveHost(this.#hostname);
      } catch (error) {
        throw new ConnectError(this.address, `cannot resolve ${this.#hostname}: ${errorText(error)}`, { cause: error });
      }
      const family = ipFamily(server) === 6 ? 6 : 4;
      const local = this.#localHost !== undefined
        ? await resolveHost(this.#localHost, family)
        : isLoopback(server)
        ? (family === 6 ? "::1" : "127.0.0.1")
        : (family === 6 ? "::" : "0.0.0.0");
      const adapter = this.#adapter ?? await udpAdapter(this.#socketOptions.driver);
      const results = await Promise.allSettled(
        Array.from({ length: this.#connectionNumber }, () => this.#openOne(adapter, local, server, newSession)),
      );
      const failed = results.find((r) => r.status === "rejected") as PromiseRejectedResult | undefined;
      if (failed) throw failed.reason;
      if (this.#closed) throw new EndpointClosedError("UdpClient was closed while starting");
    } catch (error) {
      await this.close();
      throw error;
    }
  }

  async #openOne(adapter: UdpAdapter, local: string, server: string, newSession: NewSessionCallback<P>) {
    let socket: UdpSocket;
    try {
      socket = await adapter.bind({
        hostname: local,
        port: 0,
        connect: { hostname: server, port: this.#port },
        pausedBacklog: this.#socketOptions.pausedBacklog,
        events: this.#counters.events,
      });
    } catch (error) {
      throw new ConnectError(this.address, `cannot bind a UDP socket on ${local}: ${errorText(error)}`, {
        cause: error,
      });
    }
    if (this.#closed) {
      socket.close();
      throw new ConnectError(this.address, "client closed");
    }
    this.#sockets.add(socket);
    const session = await this.#core.open(socket, newSession);
    if (!session) throw new ConnectError(this.address, "session refused by newSession or onOpen");
    return session;
  }

  /** Closes every session (and its socket). Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#closed = true;
      await this.#core.closeAll();
      for (const s of this.#sockets) s.close();
      await Promise.all([...this.#sockets].map((s) => s.released));
      this.#sockets.clear();
    })();
    return this.#closing;
  }
}
