/**
 * The server side of a WebSocket upgrade, shared by {@link WsHandler} and {@link WsServer}: checks the request
 * (a 4xx for anything that is not a valid upgrade), applies the origin allow-list, selects the subprotocol,
 * runs the `onUpgrade` hook, enforces `maxConnections`, asks the runtime to upgrade, and turns the open socket
 * into a session of the endpoint.
 *
 * @module
 */
import type { EndpointCore, NewSessionCallback } from "../endpoint_core.ts";
import { getLogger } from "../logger.ts";
import type { MessageTransport } from "./message_transport.ts";
import { normaliseOrigin, type UpgradeAccept, type UpgradeConfig, type UpgradeInfo } from "./options.ts";
import { wsRuntime } from "./runtime.ts";

/** How long closing waits for the close handshakes of its connections before the HTTP server may stop, ms. */
const CLOSE_HANDSHAKE_MS = 1_000;

/** A plain-text response. */
function respond(status: number, text: string, headers: Record<string, string> = {}): Response {
  return new Response(`${text}\n`, { status, headers: { "content-type": "text/plain; charset=utf-8", ...headers } });
}

/** Whether a comma-separated header contains `token` (case-insensitive). */
export function hasToken(value: string | null, token: string): boolean {
  return value !== null && value.split(",").some((v) => v.trim().toLowerCase() === token);
}

/** A 16-byte nonce in base64. */
const KEY = /^[A-Za-z0-9+/]{22}==$/;

/** The response for a request that is not a valid WebSocket upgrade, or undefined when it is one. */
export function checkUpgradeRequest(request: Request): Response | undefined {
  const h = request.headers;
  if (request.method !== "GET") return respond(405, "WebSocket upgrades use GET", { allow: "GET" });
  if (!hasToken(h.get("upgrade"), "websocket")) {
    return respond(426, "this endpoint only speaks WebSocket", { upgrade: "websocket", connection: "Upgrade" });
  }
  if (!hasToken(h.get("connection"), "upgrade")) return respond(400, "the Connection header must include Upgrade");
  if (!KEY.test(h.get("sec-websocket-key")?.trim() ?? "")) return respond(400, "missing or invalid Sec-WebSocket-Key");
  if (h.get("sec-websocket-version")?.trim() !== "13") {
    return respond(426, "unsupported WebSocket version", { "sec-websocket-version": "13" });
  }
  return undefined;
}

/** The subprotocols a request offers, in its order. */
function offeredProtocols(request: Request): string[] {
  const raw = request.headers.get("sec-websocket-protocol");
  if (!raw) return [];
  return raw.split(",").map((p) => p.trim()).filter((p) => p.length > 0);
}

/** Turns upgrade requests into sessions of one endpoint. */
export class Upgrader<P> {
  readonly #where: string;
  readonly #core: EndpointCore<P>;
  readonly #config: UpgradeConfig;
  readonly #newSession: NewSessionCallback<P>;
  readonly #localAddr: string | undefined;
  /** Upgrades answered whose socket is not open yet (they count against maxConnections). */
  #pending = 0;
  #closed = false;
  readonly #opening = new Set<Promise<unknown>>();
  /** Open connections, until their socket is closed. */
  readonly #transports = new Set<MessageTransport>();

  /** `localAddr` is the server's `host:port`; without it, the request URL's host is used. */
  constructor(
    where: string,
    core: EndpointCore<P>,
    config: UpgradeConfig,
    newSession: NewSessionCallback<P>,
    localAddr?: string,
  ) {
    this.#where = where;
    this.#core = core;
    this.#config = config;
    this.#newSession = newSession;
    this.#localAddr = localAddr;
  }

  /** Answers one request: the upgrade, or a 4xx/5xx. Never throws. */
  async fetch(request: Request, server: unknown): Promise<Response> {
    try {
      return await this.#fetch(request, server);
    } catch (error) {
      getLogger().error("WebSocket upgrade failed", { endpoint: this.#where, error });
      return respond(500, "WebSocket upgrade failed");
    }
  }

  async #fetch(request: Request, server: unknown): Promise<Response> {
    if (this.#closed) return respond(503, "server closed");
    const invalid = checkUpgradeRequest(request);
    if (invalid) return invalid;
    const config = this.#config;
    const origin = request.headers.get("origin");
    if (origin !== null && config.origins && !config.origins.has(normaliseOrigin(origin))) {
      return this.#refuse(403, "origin not allowed");
    }
    const offered = offeredProtocols(request);
    let protocol: string | undefined = offered[0];
    if (config.protocols) {
      protocol = config.protocols.find((p) => offered.includes(p));
      if (protocol === undefined && offered.length > 0) return this.#refuse(400, "no supported subprotocol offered");
    }
    if (this.#full()) return this.#refuse(503, "too many connections");
    const runtime = await wsRuntime();
    const remoteAddr = runtime.remoteAddr(request, server) ?? "unknown";
    let accept: UpgradeAccept = {};
    if (config.onUpgrade) {
      const info: UpgradeInfo = { url: new URL(request.url), origin, protocols: offered, protocol, remoteAddr };
      let decision: unknown;
      try {
        decision = await config.onUpgrade(request, info);
      } catch (error) {
        getLogger().warn("onUpgrade threw; upgrade refused", { endpoint: this.#where, error });
        return this.#refuse(500, "upgrade refused");
      }
      if (decision === false) return this.#refuse(403, "upgrade refused");
      if (decision instanceof Response) {
        this.#core.refused++;
        return decision;
      }
      if (typeof decision === "object" && decision !== null) {
        accept = decision as UpgradeAccept;
        if (accept.protocol !== undefined) {
          if (!offered.includes(accept.protocol)) {
            getLogger().error("onUpgrade selected a subprotocol the client did not offer; refused", {
              endpoint: this.#where,
              protocol: accept.protocol,
            });
            return this.#refuse(500, "upgrade refused");
          }
          protocol = accept.protocol;
        }
      }
    }
    if (this.#closed) return this.#refuse(503, "server closed");
    if (this.#full()) return this.#refuse(503, "too many connections");
    this.#pending++;
    let settled = false;
    const settle = () => {
      if (settled) return false;
      settled = true;
      this.#pending--;
      return true;
    };
    // Deno's Request is closed once the response went out: keep a copy of its headers (a Request copy would
    // drop the forbidden `Cookie` header).
    const requestHeaders = new Headers(request.headers);
    let response: Response | undefined;
    try {
      response = runtime.upgrade({
        request,
        requestHeaders,
        server,
        localAddr: this.#localAddr ?? new URL(request.url).host,
        remoteAddr,
        protocol,
        headers: accept.headers === undefined ? undefined : new Headers(accept.headers),
        idleTimeout: config.idleTimeout,
        heartbeat: config.heartbeat,
        context: accept.context,
        onOpen: (transport) => {
          if (settle()) this.#open(transport);
        },
        onAbort: () => void settle(),
      });
    } finally {
      if (response === undefined) settle();
    }
    if (response === undefined) {
      return this.#refuse(400, "the runtime refused the upgrade");
    }
    return response;
  }

  #full(): boolean {
    return this.#core.sessions.size + this.#pending >= this.#config.maxConnections;
  }

  #refuse(status: number, text: string): Response {
    this.#core.refused++;
    return respond(status, text);
  }

  #open(transport: MessageTransport): void {
    if (this.#closed) {
      this.#core.refused++;
      transport.close(1001, "server closed");
      return;
    }
    this.#transports.add(transport);
    transport.finished.then(() => this.#transports.delete(transport));
    const p = this.#core.open(transport, this.#newSession);
    this.#opening.add(p);
    p.finally(() => this.#opening.delete(p));
  }

  /**
   * Refuses new upgrades, closes every session gracefully and waits for them, then (for at most
   * {@link CLOSE_HANDSHAKE_MS}) for their close handshakes, so stopping the HTTP server next cannot overtake
   * a close frame (Deno's `shutdown()` would send 1001 instead).
   */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#core.closeAll();
    await Promise.allSettled([...this.#opening]);
    if (this.#transports.size === 0) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.all([...this.#transports].map((t) => t.finished)),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, CLOSE_HANDSHAKE_MS))),
    ]);
    clearTimeout(timer);
  }
}
