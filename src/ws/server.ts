/**
 * getty's standalone WebSocket servers, WS_SERVER and WSS_SERVER: the runtime's own HTTP server (`Deno.serve` /
 * `Bun.serve`) answering upgrades on one path, with the registry, connection cap and graceful shutdown of
 * {@link TcpServer}.
 *
 * @module
 */
import { type EndPoint, EndPointType } from "../endpoint.ts";
import { EndpointCore, type EndpointOptions, type EndpointStats, type NewSessionCallback } from "../endpoint_core.ts";
import { EndpointClosedError, InvalidOptionError } from "../errors.ts";
import { checkKnownKeys, checkPort, checkString, optInt } from "../options.ts";
import type { Session } from "../session.ts";
import { checkServerTls } from "../tcp_server.ts";
import { formatAddr, type ServerTlsOptions } from "../transport.ts";
import type { WsMessage } from "./handler.ts";
import { resolveUpgradeOptions, UPGRADE_KEYS, type UpgradeConfig, type WsUpgradeOptions } from "./options.ts";
import { wsRuntime } from "./runtime.ts";
import type { WsListener } from "./types.ts";
import { Upgrader } from "./upgrade.ts";

/** Options of {@link WsServer}. */
export interface WsServerOptions extends EndpointOptions, WsUpgradeOptions {
  /** Interface to bind. Default `127.0.0.1` (pass `0.0.0.0` or `::` to accept remote peers). */
  readonly host?: string;
  /** Port; 0 (default) picks a free one — read it from `server.port` after `runEventLoop`. */
  readonly port?: number;
  /** The path upgrades are answered on; other paths get 404. Default `/ws`. */
  readonly path?: string;
  /** Serve WSS with this certificate and key (PEM). */
  readonly tls?: ServerTlsOptions;
  /**
   * Bun only: largest message the runtime accepts before closing with 1009 (reported to the session as a
   * `MessageTooLongError`, as on Deno where the session checks `maxMsgLen` itself). Default: the session
   * `maxMsgLen` (4 MiB unless set), so oversized messages are refused before they are buffered.
   */
  readonly maxPayloadLength?: number;
}

const KNOWN = [
  ...UPGRADE_KEYS,
  "host",
  "port",
  "path",
  "tls",
  "maxPayloadLength",
  "session",
  "sessionName",
  "maxConcurrentHandlers",
];

function notFound(): Response {
  return new Response("not found\n", { status: 404, headers: { "content-type": "text/plain; charset=utf-8" } });
}

/**
 * A standalone WebSocket server (`WSS_SERVER` with `tls`). Same Session API on Deno and Bun.
 *
 * @example
 * ```ts
 * import { WsServer } from "@getty/getty";
 * const server = new WsServer({ port: 0, path: "/ws" });
 * await server.runEventLoop((session) => {
 *   session.setEventListener({ onMessage: (s, msg) => void s.writePkg(msg) }); // echo, text stays text
 * });
 * console.log(`ws://127.0.0.1:${server.port}/ws`);
 * await server.close();
 * ```
 */
export class WsServer<P = WsMessage> implements EndPoint {
  /** `WS_SERVER`, or `WSS_SERVER` with `tls`. */
  readonly endPointType: EndPointType;
  readonly #core: EndpointCore<P>;
  readonly #config: UpgradeConfig;
  readonly #host: string;
  readonly #port: number;
  readonly #path: string;
  readonly #tls: ServerTlsOptions | undefined;
  readonly #maxPayloadLength: number;
  #upgrader: Upgrader<P> | undefined;
  #listener: WsListener | undefined;
  #running = false;
  #closed = false;
  #closing: Promise<void> | undefined;

  /** Validates the options; nothing listens until {@link runEventLoop}. */
  constructor(options: WsServerOptions = {}) {
    if (typeof options !== "object" || options === null) throw new InvalidOptionError("WsServer", "options");
    checkKnownKeys("WsServer", options, KNOWN);
    this.#host = options.host === undefined ? "127.0.0.1" : checkString("WsServer.host", options.host);
    this.#port = options.port === undefined ? 0 : checkPort("WsServer.port", options.port);
    this.#path = options.path === undefined ? "/ws" : checkString("WsServer.path", options.path);
    if (!this.#path.startsWith("/")) throw new InvalidOptionError("WsServer.path", "must start with /");
    checkServerTls("WsServer.tls", options.tls);
    this.#tls = options.tls;
    this.#config = resolveUpgradeOptions("WsServer", options);
    this.endPointType = options.tls ? EndPointType.WSS_SERVER : EndPointType.WS_SERVER;
    this.#core = new EndpointCore<P>("WsServer", this, options, options.tls ? "wss-session" : "ws-session");
    this.#maxPayloadLength = optInt(
      "WsServer.maxPayloadLength",
      options.maxPayloadLength,
      this.#core.config.maxMsgLen,
      1,
      2 ** 32 - 1,
    );
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

  /** The URL clients dial (`ws://host:port/path` or `wss://…`); undefined before listening. */
  get url(): string | undefined {
    if (!this.#listener) return undefined;
    return `${this.#tls ? "wss" : "ws"}://${formatAddr(this.#listener.hostname, this.#listener.port)}${this.#path}`;
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
   * Starts the HTTP server; resolves once listening. `newSession` runs for every upgraded connection before
   * it opens: set the codec and listener there; throwing refuses that connection only.
   */
  async runEventLoop(newSession: NewSessionCallback<P>): Promise<void> {
    if (typeof newSession !== "function") throw new InvalidOptionError("newSession", "must be a function");
    if (this.#closed) throw new EndpointClosedError("WsServer is closed");
    if (this.#running) throw new EndpointClosedError("WsServer.runEventLoop was already called");
    this.#running = true;
    this.#core.started();
    const runtime = await wsRuntime();
    const listener = await runtime.serve({
      hostname: this.#host,
      port: this.#port,
      tls: this.#tls,
      maxPayloadLength: this.#maxPayloadLength,
      idleTimeout: this.#config.idleTimeout,
      fetch: (request, server) => {
        const upgrader = this.#upgrader;
        if (!upgrader || new URL(request.url).pathname !== this.#path) return Promise.resolve(notFound());
        return upgrader.fetch(request, server);
      },
    });
    const local = formatAddr(listener.hostname, listener.port);
    this.#upgrader = new Upgrader("WsServer", this.#core, this.#config, newSession, local);
    this.#listener = listener;
    if (this.#closed) {
      await listener.close();
      throw new EndpointClosedError("WsServer was closed while starting");
    }
  }

  /**
   * Refuses new upgrades, closes every live session gracefully (queued writes flush for up to each session's
   * waitTime), then stops the HTTP server. Resolves once all are closed. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#closed = true;
      if (this.#upgrader) await this.#upgrader.close();
      else await this.#core.closeAll();
      await this.#listener?.close();
    })();
    return this.#closing;
  }
}
