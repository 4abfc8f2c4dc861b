/**
 * WebSocket sessions through standard Request upgrades: a handler taking a `Request` and returning a
 * `Response`, to mount in `Deno.serve`, `Bun.serve` (with {@link bunWebSocket}) or a hono app (`./hono`).
 *
 * @module
 */
import { type EndPoint, EndPointType } from "../endpoint.ts";
import { EndpointCore, type EndpointOptions, type EndpointStats, type NewSessionCallback } from "../endpoint_core.ts";
import { InvalidOptionError } from "../errors.ts";
import { checkKnownKeys } from "../options.ts";
import type { Session } from "../session.ts";
import { resolveUpgradeOptions, UPGRADE_KEYS, type WsUpgradeOptions } from "./options.ts";
import { Upgrader } from "./upgrade.ts";

/** A WebSocket package without a codec: a text message is a `string`, a binary one a `Uint8Array`. */
export type WsMessage = string | Uint8Array;

/** Options of {@link WsHandler}. */
export interface WsHandlerOptions extends EndpointOptions, WsUpgradeOptions {}

const KNOWN = [...UPGRADE_KEYS, "session", "sessionName", "maxConcurrentHandlers"];

/**
 * Upgrades standard `Request`s to WebSocket sessions. `fetch(request, server)` answers with the upgrade, or
 * with a 4xx when the request is not a valid or allowed upgrade (405 not GET, 426 not an upgrade or wrong
 * version, 400 bad headers or no supported subprotocol, 403 origin or hook refusal, 503 closed or full).
 * Each message is one package (a `string` for text, a `Uint8Array` for binary; a codec may decode them).
 *
 * The handler is an endpoint (`WS_SERVER`) with a registry of its live sessions: close it to close them.
 * On Bun, the `Bun.serve` must have a getty `websocket` table: {@link bunWebSocket} (or `websocket` from
 * `./hono`).
 *
 * @example Deno
 * ```ts
 * import { WsHandler } from "@getty/getty";
 * const ws = new WsHandler((session) => {
 *   session.setEventListener({ onMessage: (s, msg) => void s.writePkg(msg) });
 * }, { origins: ["https://app.example.com"] });
 * Deno.serve((req, info) => new URL(req.url).pathname === "/ws" ? ws.fetch(req, info) : new Response("hi"));
 * ```
 */
export class WsHandler<P = WsMessage> implements EndPoint {
  /** Always `WS_SERVER`. */
  readonly endPointType: EndPointType = EndPointType.WS_SERVER;
  readonly #core: EndpointCore<P>;
  readonly #upgrader: Upgrader<P>;
  #closing: Promise<void> | undefined;

  /**
   * `newSession` runs for every upgraded connection before its session opens: set the codec and the
   * listener there; throwing refuses that connection only. The handler is live until {@link close}.
   */
  constructor(newSession: NewSessionCallback<P>, options: WsHandlerOptions = {}) {
    if (typeof newSession !== "function") throw new InvalidOptionError("newSession", "must be a function");
    if (typeof options !== "object" || options === null) throw new InvalidOptionError("WsHandler", "options");
    checkKnownKeys("WsHandler", options, KNOWN);
    const config = resolveUpgradeOptions("WsHandler", options);
    this.#core = new EndpointCore<P>("WsHandler", this, options, "ws-session");
    this.#upgrader = new Upgrader("WsHandler", this.#core, config, newSession);
    this.#core.started();
  }

  /**
   * Answers one request. Pass the server's second handler argument: Bun's `Server` (required on Bun, to
   * upgrade) or Deno's `ServeHandlerInfo` (for the remote address). Never throws; resolves with the 101
   * response (on Bun, a placeholder Bun ignores) or a 4xx/5xx.
   */
  readonly fetch = (request: Request, server?: unknown): Promise<Response> => this.#upgrader.fetch(request, server);

  /** Process-unique endpoint id. */
  get id(): number {
    return this.#core.id;
  }

  /** Live sessions. */
  get sessions(): IterableIterator<Session<P>> {
    return this.#core.sessions.values();
  }

  /** Number of live sessions. */
  get sessionCount(): number {
    return this.#core.sessions.size;
  }

  /** Counters: sessions open, opened and refused (upgrades refused by origin, subprotocol, hook or limits); bytes, packages, errors. */
  stats(): EndpointStats {
    return this.#core.stats();
  }

  /** Whether close() was called. */
  isClosed(): boolean {
    return this.#closing !== undefined;
  }

  /**
   * Refuses new upgrades (503) and closes every session gracefully (queued writes flush for up to each
   * session's waitTime). Resolves once all are closed. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= this.#upgrader.close();
    return this.#closing;
  }
}
