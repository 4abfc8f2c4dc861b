/**
 * The TCP (and TLS) server: listens, turns each connection into a Session, keeps a registry of live
 * sessions, caps connections, and shuts down gracefully.
 *
 * @module
 */
import { type EndPoint, EndPointType } from "./endpoint.ts";
import { EndpointCore, type EndpointOptions, type EndpointStats, type NewSessionCallback } from "./endpoint_core.ts";
import { EndpointClosedError, InvalidOptionError } from "./errors.ts";
import { getLogger } from "./logger.ts";
import { checkKnownKeys, checkPort, checkString, optInt, optMs } from "./options.ts";
import { runtimeAdapter } from "./runtime/select.ts";
import type { Session } from "./session.ts";
import type { RuntimeAdapter, ServerTlsOptions, Transport, TransportListener } from "./transport.ts";

/** Options of {@link TcpServer}. */
export interface TcpServerOptions extends EndpointOptions {
  /** Interface to bind. Default `127.0.0.1` (pass `0.0.0.0` or `::` to accept remote peers). */
  readonly host?: string;
  /** Port; 0 (default) picks a free one — read it from `server.port` after `runEventLoop`. */
  readonly port?: number;
  /** Serve TLS with this certificate and key (PEM). */
  readonly tls?: ServerTlsOptions;
  /** Refuse connections beyond this many live sessions. Default unbounded. */
  readonly maxConnections?: number;
  /** TLS: close a connection whose handshake has not completed after this many ms. Default 10,000. */
  readonly handshakeTimeout?: number;
  /** @internal Use another adapter than the current runtime's (tests). */
  readonly adapter?: RuntimeAdapter;
}

const KNOWN = [
  "host",
  "port",
  "tls",
  "maxConnections",
  "handshakeTimeout",
  "session",
  "sessionName",
  "maxConcurrentHandlers",
  "adapter",
];

/** Validates TLS server material. */
export function checkServerTls(where: string, tls: ServerTlsOptions | undefined): void {
  if (tls === undefined) return;
  if (typeof tls !== "object" || tls === null) throw new InvalidOptionError(where, "must be an object { cert, key }");
  for (const k of ["cert", "key"] as const) {
    const v = checkString(`${where}.${k}`, tls[k]);
    if (!v.includes("-----BEGIN")) throw new InvalidOptionError(`${where}.${k}`, "must be PEM text (-----BEGIN …)");
  }
}

/**
 * A TCP server (TLS when `tls` is given). Same Session API on Deno and Bun.
 *
 * @example
 * ```ts
 * import { LengthFieldCodec, TcpServer } from "@getty/getty";
 * const server = new TcpServer<Uint8Array>({ host: "127.0.0.1", port: 0 });
 * await server.runEventLoop((session) => {
 *   session.setPkgHandler(new LengthFieldCodec());
 *   session.setEventListener({ onMessage: (s, pkg) => void s.writePkg(pkg) });
 * });
 * console.log(`listening on ${server.port}`);
 * await server.close();
 * ```
 */
export class TcpServer<P = Uint8Array> implements EndPoint {
  /** Always `TCP_SERVER`. */
  readonly endPointType: EndPointType = EndPointType.TCP_SERVER;
  readonly #core: EndpointCore<P>;
  readonly #host: string;
  readonly #port: number;
  readonly #tls: ServerTlsOptions | undefined;
  readonly #maxConnections: number;
  readonly #handshakeTimeout: number;
  readonly #adapter: RuntimeAdapter | undefined;
  #listener: TransportListener | undefined;
  #running = false;
  #closed = false;
  #closing: Promise<void> | undefined;

  /** Validates the options; nothing listens until {@link runEventLoop}. */
  constructor(options: TcpServerOptions = {}) {
    checkKnownKeys("TcpServer", options, KNOWN);
    this.#host = options.host === undefined ? "127.0.0.1" : checkString("TcpServer.host", options.host);
    this.#port = options.port === undefined ? 0 : checkPort("TcpServer.port", options.port);
    checkServerTls("TcpServer.tls", options.tls);
    this.#tls = options.tls;
    this.#maxConnections = optInt("TcpServer.maxConnections", options.maxConnections, Infinity, 1);
    this.#handshakeTimeout = optMs("TcpServer.handshakeTimeout", options.handshakeTimeout, 10_000, false);
    this.#adapter = options.adapter;
    this.#core = new EndpointCore<P>("TcpServer", this, options, options.tls ? "tls-session" : "tcp-session");
  }

  /** Process-unique endpoint id. */
  get id(): number {
    return this.#core.id;
  }

  /** The bound port (the real one when 0 was asked for); 0 before listening. */
  get port(): number {
    return this.#listener?.port ?? 0;
  }

  /** The bound address, `{ hostname, port }`; undefined before listening. */
  get addr(): { hostname: string; port: number } | undefined {
    return this.#listener ? { hostname: this.#listener.hostname, port: this.#listener.port } : undefined;
  }

  /** Live sessions. */
  get sessions(): IterableIterator<Session<P>> {
    return this.#core.sessions.values();
  }

  /** Number of live sessions. */
  get sessionCount(): number {
    return this.#core.sessions.size;
  }

  /** Counters: sessions open, opened and refused; bytes, packages and errors over all sessions. */
  stats(): EndpointStats {
    return this.#core.stats();
  }

  /** Whether close() was called. */
  isClosed(): boolean {
    return this.#closed;
  }

  /**
   * Starts listening; resolves once bound. `newSession` runs for every connection before it opens: set the
   * codec and listener there; throwing refuses that connection only.
   */
  async runEventLoop(newSession: NewSessionCallback<P>): Promise<void> {
    if (typeof newSession !== "function") throw new InvalidOptionError("newSession", "must be a function");
    if (this.#closed) throw new EndpointClosedError("TcpServer is closed");
    if (this.#running) throw new EndpointClosedError("TcpServer.runEventLoop was already called");
    this.#running = true;
    this.#core.started();
    const adapter = this.#adapter ?? await runtimeAdapter();
    const listener = await adapter.listenTcp({
      hostname: this.#host,
      port: this.#port,
      tls: this.#tls,
      handshakeTimeout: this.#handshakeTimeout,
      onConnection: (transport) => this.#accept(transport, newSession),
      onAcceptError: (error) => getLogger().debug("accept failed", { server: this.id, error }),
    });
    if (this.#closed) {
      listener.close();
      throw new EndpointClosedError("TcpServer was closed while starting");
    }
    this.#listener = listener;
  }

  #accept(transport: Transport, newSession: NewSessionCallback<P>): void {
    if (this.#closed || this.#core.sessions.size >= this.#maxConnections) {
      this.#core.refused++;
      transport.close();
      return;
    }
    void this.#core.open(transport, newSession);
  }

  /**
   * Stops listening and closes every live session gracefully (queued writes flush for up to each session's
   * waitTime, then the connection is forced). Resolves once all are closed. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#closed = true;
      this.#listener?.close();
      // Sessions still opening are in the registry too; their _open returns as soon as they are closed.
      await this.#core.closeAll();
    })();
    return this.#closing;
  }
}
