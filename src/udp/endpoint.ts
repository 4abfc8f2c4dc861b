/**
 * The UDP endpoint (getty's `UDP_ENDPOINT`): one bound socket serving many peers, either through ONE session
 * for the whole socket (getty's model, the default) or, opt-in, through one session per remote address.
 *
 * @module
 */
import { type EndPoint, EndPointType } from "../endpoint.ts";
import { EndpointCore, type EndpointOptions, type NewSessionCallback } from "../endpoint_core.ts";
import { ConnectionError, EndpointClosedError, GettyError, InvalidOptionError } from "../errors.ts";
import { getLogger } from "../logger.ts";
import { checkKnownKeys, checkPort, checkString, optInt, optMs } from "../options.ts";
import type { Session } from "../session.ts";
import { formatAddr, type PeerAddress, type TransportSink } from "../transport.ts";
import { peerKey, resolveHost } from "./address.ts";
import type { UdpAdapter, UdpSocket } from "./adapter.ts";
import {
  errorText,
  requireDestination,
  type ResolvedSocketOptions,
  resolveSocketOptions,
  SOCKET_KEYS,
  UdpCounters,
  type UdpSocketOptions,
  type UdpStats,
} from "./common.ts";
import { type PeerHost, PeerTransport } from "./peer.ts";
import { udpAdapter } from "./select.ts";

/** Settings of per-peer mode (see {@link UdpEndpointOptions.perPeer}). */
export interface UdpPerPeerOptions {
  /**
   * Close a peer's session after this many ms without a datagram from it (0 = never). The session ends as if
   * the peer had closed: `onClose` gets `{ initiator: "peer" }`, without an error and without `onError`; packages
   * already received are handled first. Counted in `stats().evicted`. Default 60,000.
   */
  readonly idleTimeout?: number;
  /**
   * Most peers with a session at once. A datagram from a new peer beyond this is dropped and counted in
   * `stats().refused` and `stats().dropped`. Default 10,000.
   */
  readonly maxPeers?: number;
}

/** Options of {@link UdpEndpoint}. */
export interface UdpEndpointOptions extends EndpointOptions, UdpSocketOptions {
  /** Interface to bind. Default `127.0.0.1` (`0.0.0.0` for every IPv4 interface, `::` for dual-stack). */
  readonly host?: string;
  /** Port; 0 (default) picks a free one — read it from `endpoint.port` after `runEventLoop`. */
  readonly port?: number;
  /**
   * Off by default: ONE session serves the whole socket (getty's model): `onMessage(s, pkg, from)` tells the
   * sender, and every write names its destination with `writePkg(pkg, { to })`.
   *
   * `true` or `{ idleTimeout, maxPeers }`: each remote address gets its OWN session (own codec state,
   * attributes, cron, read timeout, `onOpen`/`onClose`; `remoteAddr` is the peer), created by its first
   * datagram; `writePkg(pkg)` answers that peer. Refusing a session in `newSession` or `onOpen` drops that
   * peer's datagrams only (its next datagram tries again).
   */
  readonly perPeer?: boolean | UdpPerPeerOptions;
  /** @internal Use another driver than the selected one (tests). */
  readonly adapter?: UdpAdapter;
}

/** Counters of a {@link UdpEndpoint}. */
export interface UdpEndpointStats extends UdpStats {
  /** Per-peer sessions closed after `idleTimeout` of silence. */
  readonly evicted: number;
}

const KNOWN = [
  "host",
  "port",
  "perPeer",
  "session",
  "sessionName",
  "maxConcurrentHandlers",
  ...SOCKET_KEYS,
  "adapter",
];

interface PerPeerConfig {
  readonly idleTimeout: number;
  readonly maxPeers: number;
}

function resolvePerPeer(where: string, value: unknown): PerPeerConfig | undefined {
  if (value === undefined || value === false) return undefined;
  const o = (value === true ? {} : value) as UdpPerPeerOptions;
  if (typeof o !== "object" || o === null || Array.isArray(o)) {
    throw new InvalidOptionError(where, "must be true, false or { idleTimeout, maxPeers }");
  }
  checkKnownKeys(where, o, ["idleTimeout", "maxPeers"]);
  return {
    idleTimeout: optMs(`${where}.idleTimeout`, o.idleTimeout, 60_000, true),
    maxPeers: optInt(`${where}.maxPeers`, o.maxPeers, 10_000, 1),
  };
}

/**
 * A UDP endpoint: a bound socket that serves many peers. Same Session API on Deno and Bun.
 *
 * Default mode (getty's): one session for the socket. Every datagram is decoded whole into one package
 * (empty, oversized or undecodable datagrams are dropped and reported to `onError`; the session stays open),
 * `onMessage(s, pkg, from)` gets the sender, and a write must name its destination: `writePkg(pkg, { to })`,
 * `writeBytes(bytes, { to })`, `send(pkg, { to })`. Without a valid `to` the write rejects with
 * {@link InvalidOptionError} (option `to`, `to.hostname` or `to.port`; `send` returns false) and is not
 * reported to `onError`; the session stays open. A host name in `to` is resolved first (node:dns; a failed
 * lookup rejects with {@link ConnectionError}), which may reorder it after later writes to IP literals.
 * `writeBytesArray` always rejects (it cannot name a destination). The endpoint lives as long as that
 * session: if it closes (your `close()`, `readTimeout`), the endpoint closes too.
 *
 * Per-peer mode (`perPeer`): see {@link UdpEndpointOptions.perPeer}.
 *
 * @example
 * ```ts
 * import { LengthFieldCodec, UdpEndpoint } from "@getty/getty";
 * const endpoint = new UdpEndpoint<Uint8Array>({ host: "127.0.0.1", port: 0 });
 * await endpoint.runEventLoop((session) => {
 *   session.setPkgHandler(new LengthFieldCodec());
 *   session.setEventListener({ onMessage: (s, pkg, from) => void s.writePkg(pkg, { to: from }) });
 * });
 * console.log(`udp echo on port ${endpoint.port}`);
 * await endpoint.close();
 * ```
 */
export class UdpEndpoint<P = Uint8Array> implements EndPoint {
  /** Always `UDP_ENDPOINT`. */
  readonly endPointType: EndPointType = EndPointType.UDP_ENDPOINT;
  readonly #core: EndpointCore<P>;
  readonly #host: string;
  readonly #port: number;
  readonly #perPeer: PerPeerConfig | undefined;
  readonly #socketOptions: ResolvedSocketOptions;
  readonly #adapter: UdpAdapter | undefined;
  readonly #counters: UdpCounters;
  readonly #peers = new Map<string, PeerTransport>();
  readonly #opening = new Set<Promise<unknown>>();
  #socket: UdpSocket | undefined;
  #single: Session<P> | undefined;
  #running = false;
  #closed = false;
  #closing: Promise<void> | undefined;
  #evicted = 0;

  /** Validates the options; nothing is bound until {@link runEventLoop}. */
  constructor(options: UdpEndpointOptions = {}) {
    if (typeof options !== "object" || options === null) {
      throw new InvalidOptionError("UdpEndpoint", "must be an object");
    }
    checkKnownKeys("UdpEndpoint", options, KNOWN);
    this.#host = options.host === undefined ? "127.0.0.1" : checkString("UdpEndpoint.host", options.host);
    this.#port = options.port === undefined ? 0 : checkPort("UdpEndpoint.port", options.port);
    this.#perPeer = resolvePerPeer("UdpEndpoint.perPeer", options.perPeer);
    this.#socketOptions = resolveSocketOptions("UdpEndpoint", options);
    this.#adapter = options.adapter;
    this.#core = new EndpointCore<P>("UdpEndpoint", this, options, "udp-session", () => {
      // Default mode: the endpoint lives as long as its one session.
      if (!this.#perPeer && this.#single && !this.#closed) void this.close();
    });
    this.#counters = new UdpCounters(`UdpEndpoint ${this.#core.id}`, this.#socketOptions.onSendError);
  }

  /** Process-unique endpoint id. */
  get id(): number {
    return this.#core.id;
  }

  /** The UDP implementation in use: `"deno"` (Deno.listenDatagram), `"bun"` (Bun.udpSocket) or `"node"` (node:dgram). */
  get driver(): string {
    return this.#adapter?.name ?? this.#socketOptions.driver;
  }

  /** Whether each remote address gets its own session. */
  get perPeer(): boolean {
    return this.#perPeer !== undefined;
  }

  /** The bound port (the real one when 0 was asked for); 0 before binding. */
  get port(): number {
    return this.#socket?.port ?? 0;
  }

  /** The bound address, `{ hostname, port }`; undefined before binding. */
  get addr(): { hostname: string; port: number } | undefined {
    return this.#socket ? { hostname: this.#socket.hostname, port: this.#socket.port } : undefined;
  }

  /** Default mode: the endpoint's session while open; undefined in per-peer mode. */
  get session(): Session<P> | undefined {
    const s = this.#single;
    return s && !s.isClosed() ? s : undefined;
  }

  /** Live sessions: the one session, or one per peer. */
  get sessions(): IterableIterator<Session<P>> {
    return this.#core.sessions.values();
  }

  /** Number of live sessions. */
  get sessionCount(): number {
    return this.#core.sessions.size;
  }

  /** Per-peer mode: the live session of `peer`, if any. */
  sessionFor(peer: PeerAddress): Session<P> | undefined {
    const t = this.#peers.get(peerKey(peer));
    if (!t) return undefined;
    for (const s of this.#core.sessions) if (s.remoteAddr === t.remoteAddr && !s.isClosed()) return s;
    return undefined;
  }

  /** Counters: sessions (open, opened, refused), traffic, errors, plus dropped datagrams, send errors and evictions. */
  stats(): UdpEndpointStats {
    return { ...this.#counters.stats(this.#core.stats()), evicted: this.#evicted };
  }

  /** Whether close() was called (or the endpoint's session closed, in default mode). */
  isClosed(): boolean {
    return this.#closed;
  }

  /**
   * Binds the socket; resolves once bound (default mode: once the session is open). `newSession` configures
   * the session (per-peer mode: every peer's session) before it opens. Rejects with {@link ConnectionError}
   * when binding fails, and with {@link EndpointClosedError} when the (default-mode) session is refused;
   * the endpoint is then closed.
   */
  async runEventLoop(newSession: NewSessionCallback<P>): Promise<void> {
    if (typeof newSession !== "function") throw new InvalidOptionError("newSession", "must be a function");
    if (this.#closed) throw new EndpointClosedError("UdpEndpoint is closed");
    if (this.#running) throw new EndpointClosedError("UdpEndpoint.runEventLoop was already called");
    this.#running = true;
    this.#core.started();
    let socket: UdpSocket;
    try {
      const adapter = this.#adapter ?? await udpAdapter(this.#socketOptions.driver);
      socket = await adapter.bind({
        hostname: await resolveHost(this.#host),
        port: this.#port,
        pausedBacklog: this.#socketOptions.pausedBacklog,
        events: this.#counters.events,
      });
    } catch (error) {
      await this.close();
      if (error instanceof GettyError) throw error;
      throw new ConnectionError(
        `UdpEndpoint: cannot bind ${formatAddr(this.#host, this.#port)}: ${errorText(error)}`,
        { cause: error },
      );
    }
    if (this.#closed) {
      socket.close();
      throw new EndpointClosedError("UdpEndpoint was closed while starting");
    }
    this.#socket = socket;
    if (this.#perPeer) {
      socket.start(this.#demultiplexer(socket, this.#perPeer, newSession));
      return;
    }
    const opening = this.#core.open(socket, (s) => {
      this.#single = s;
      requireDestination(s, socket.family, (error, to) => this.#counters.events.sendFailed(error.cause ?? error, to));
      return newSession(s);
    });
    this.#opening.add(opening);
    const session = await opening.finally(() => this.#opening.delete(opening));
    if (!session) {
      await this.close();
      throw new EndpointClosedError("UdpEndpoint: its session was refused by newSession or onOpen (see onError)");
    }
  }

  /** The sink of the shared socket in per-peer mode: routes each datagram to its peer's transport. */
  #demultiplexer(socket: UdpSocket, config: PerPeerConfig, newSession: NewSessionCallback<P>): TransportSink {
    const host: PeerHost = {
      closed: (t) => {
        if (this.#peers.get(t.key) === t) this.#peers.delete(t.key);
      },
      idle: (t) => {
        if (this.#peers.get(t.key) === t) this.#peers.delete(t.key);
        this.#evicted++;
        t.evict();
      },
      dropped: () => this.#counters.events.dropped("backlog"),
    };
    return {
      data: (chunk, from) => {
        if (!from || typeof chunk === "string") return;
        if (this.#closed) return this.#counters.events.dropped("refused");
        let t = this.#peers.get(peerKey(from));
        if (!t) {
          if (this.#peers.size >= config.maxPeers) {
            this.#core.refused++;
            return this.#counters.events.dropped("refused");
          }
          t = new PeerTransport(socket, from, this.#socketOptions.pausedBacklog, config.idleTimeout, host);
          this.#peers.set(t.key, t);
          const opening = this.#core.open(t, newSession);
          this.#opening.add(opening);
          void opening.finally(() => this.#opening.delete(opening));
        }
        t.receive(chunk, from);
      },
      closed: (error) => {
        getLogger().warn("udp endpoint socket failed; closing the endpoint", { endpoint: this.id, error });
        void this.close();
      },
    };
  }

  /**
   * Closes every session gracefully (queued writes flush for up to each session's waitTime), then the socket.
   * Resolves once all are closed and the port is released. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#closed = true;
      await this.#core.closeAll();
      await Promise.allSettled([...this.#opening]);
      for (const t of [...this.#peers.values()]) t.close();
      this.#socket?.close();
      await this.#socket?.released;
    })();
    return this.#closing;
  }
}
