/**
 * Bun's `websocket` handler table for `Bun.serve`. Bun allows one table per server, so every getty upgrade
 * in a server shares it and the table dispatches on `ws.data`: sockets getty upgraded carry a
 * {@link BunWsEvents} object under a registered symbol; any other socket (hono's `upgradeWebSocket`, your own
 * `server.upgrade`) goes to the `fallback` table, never to getty, and never crashes the table whatever its
 * `data` holds. Runtime-neutral: it only forwards calls, so it can be built without Bun present.
 *
 * @module
 */
import { InvalidOptionError } from "../errors.ts";
import { getLogger } from "../logger.ts";
import { checkKnownKeys, optBool, optInt, optMs } from "../options.ts";

/** The parts of Bun's `ServerWebSocket` the table touches (structural, so no Bun types leak into the API). */
export interface BunServerWebSocketLike {
  /** What `server.upgrade(request, { data })` attached. */
  readonly data: unknown;
  /** 0 connecting, 1 open, 2 closing, 3 closed. */
  readonly readyState: number;
  /** Closes with a close frame. */
  close(code?: number, reason?: string): void;
}

/**
 * Per-socket handlers getty attaches under {@link BUN_WS_EVENTS} in `ws.data`: the socket's transport itself, made
 * at the upgrade (methods of one class, so the table's call sites see one target for every socket). @internal
 */
export interface BunWsEvents {
  bunOpen(ws: BunServerWebSocketLike): void;
  bunMessage(message: string | Uint8Array): void;
  bunDrain(): void;
  bunClose(code: number, reason: string, maxPayloadLength: number): void;
  bunPong(): void;
}

/** Key of getty's per-socket handlers in `ws.data` (registered, so two copies of the library agree). @internal */
export const BUN_WS_EVENTS: unique symbol = Symbol.for("getty.ws.bun-events");

/** Another `websocket` table for the sockets getty did not upgrade (e.g. hono's `websocket` from `hono/bun`). */
export interface BunWebSocketFallback {
  /**
   * Whether this table handles a socket whose `ws.data` is `data`. Default: every socket getty did not
   * upgrade. A socket nobody handles is closed with 1011 (and logged) instead of reaching a table that
   * would crash on its `data`.
   */
  handles?(data: unknown): boolean;
  /** A socket was opened. */
  open?(ws: { readonly data: unknown }): unknown;
  /** A message arrived. */
  message?(ws: { readonly data: unknown }, message: string | Uint8Array): unknown;
  /** The socket can take more data. */
  drain?(ws: { readonly data: unknown }): unknown;
  /** The socket closed. */
  close?(ws: { readonly data: unknown }, code: number, reason: string): unknown;
  /** A ping arrived. */
  ping?(ws: { readonly data: unknown }, data: Uint8Array): unknown;
  /** A pong arrived. */
  pong?(ws: { readonly data: unknown }, data: Uint8Array): unknown;
  /** One of the other handlers threw. */
  error?(error: Error, ws: { readonly data: unknown }): unknown;
}

/** Options of {@link bunWebSocket}; the table-wide settings Bun takes per `Bun.serve`. */
export interface BunWebSocketOptions {
  /**
   * Table for sockets getty did not upgrade. Sockets it does not handle (see
   * {@link BunWebSocketFallback.handles}), or all foreign sockets without a fallback, are closed with 1011
   * (and logged once).
   */
  readonly fallback?: BunWebSocketFallback;
  /**
   * Largest message Bun accepts, bytes; a longer one closes the connection with 1009 before the session
   * sees it (reported to the session as a `MessageTooLongError`, code 1009). Default 16 MiB (Bun's).
   */
  readonly maxPayloadLength?: number;
  /**
   * Close a connection that sent nothing (not even a pong) for this long, ms; Bun pings at about half of it
   * when `sendPings`. Whole seconds, 8 s at least (Bun's rule); 0 = off. Default 120,000 (Bun's).
   */
  readonly idleTimeout?: number;
  /** Let Bun ping idle connections before `idleTimeout`. Default true. */
  readonly sendPings?: boolean;
  /**
   * Bytes Bun buffers per connection before `send()` drops messages. Default 16 MiB. getty writes one
   * message at a time and waits for `drain`, so only a single message larger than this can be dropped.
   */
  readonly backpressureLimit?: number;
  /** Enable permessage-deflate. Default false. */
  readonly perMessageDeflate?: boolean;
}

/** The table to pass as `websocket` to `Bun.serve`. */
export interface BunWebSocketTable {
  /** See {@link BunWebSocketOptions.maxPayloadLength}. */
  readonly maxPayloadLength: number;
  /** In seconds, as Bun takes it. */
  readonly idleTimeout: number;
  /** See {@link BunWebSocketOptions.sendPings}. */
  readonly sendPings: boolean;
  /** See {@link BunWebSocketOptions.backpressureLimit}. */
  readonly backpressureLimit: number;
  /** Always false: getty handles the limit itself. */
  readonly closeOnBackpressureLimit: boolean;
  /** See {@link BunWebSocketOptions.perMessageDeflate}. */
  readonly perMessageDeflate: boolean;
  /** Bun calls this when a socket opened. */
  open(ws: BunServerWebSocketLike): void;
  /** Bun calls this for every message. */
  message(ws: BunServerWebSocketLike, message: string | Uint8Array): void;
  /** Bun calls this when a socket can take more data. */
  drain(ws: BunServerWebSocketLike): void;
  /** Bun calls this when a socket closed. */
  close(ws: BunServerWebSocketLike, code: number, reason: string): void;
  /** Bun calls this for a received ping (it has answered already). */
  ping(ws: BunServerWebSocketLike, data: Uint8Array): void;
  /** Bun calls this for a received pong. */
  pong(ws: BunServerWebSocketLike, data: Uint8Array): void;
  /** Bun calls this when a handler threw: logged (or passed to the fallback's), never an uncaught exception. */
  error(error: Error, ws: BunServerWebSocketLike): void;
}

const KNOWN = [
  "fallback",
  "maxPayloadLength",
  "idleTimeout",
  "sendPings",
  "backpressureLimit",
  "perMessageDeflate",
];
const MAX_U32 = 2 ** 32 - 1;

/** Bun's idle timeout in seconds for `ms` (0 = off; 1–7 s become 8 s, Bun's minimum). */
export function bunIdleSeconds(ms: number): number {
  if (ms === 0) return 0;
  return Math.min(960, Math.max(8, Math.ceil(ms / 1000)));
}

/** getty's handlers of `ws`, or undefined for a socket someone else upgraded. */
function eventsOf(ws: BunServerWebSocketLike): BunWsEvents | undefined {
  const data = ws.data;
  if (typeof data !== "object" || data === null) return undefined;
  return (data as { [BUN_WS_EVENTS]?: BunWsEvents })[BUN_WS_EVENTS];
}

let warnedForeign = false;

/**
 * Builds the `websocket` table for a `Bun.serve` that mounts getty upgrades ({@link WsHandler}, or the hono
 * middleware). One table serves every getty handler in the server; sockets upgraded by others go to
 * `fallback`.
 *
 * @example
 * ```ts
 * import { bunWebSocket, WsHandler } from "@getty/getty";
 * const ws = new WsHandler((session) => {
 *   session.setEventListener({ onMessage: (s, msg) => void s.writePkg(msg) });
 * });
 * Bun.serve({
 *   fetch: (req, server) => new URL(req.url).pathname === "/ws" ? ws.fetch(req, server) : new Response("hi"),
 *   websocket: bunWebSocket(),
 * });
 * ```
 */
export function bunWebSocket(options: BunWebSocketOptions = {}): BunWebSocketTable {
  if (typeof options !== "object" || options === null) {
    throw new InvalidOptionError("bunWebSocket", "options must be an object");
  }
  checkKnownKeys("bunWebSocket", options, KNOWN);
  const fallback = options.fallback;
  if (fallback !== undefined && (typeof fallback !== "object" || fallback === null)) {
    throw new InvalidOptionError("bunWebSocket.fallback", "must be a websocket handler table");
  }
  const maxPayloadLength = optInt("bunWebSocket.maxPayloadLength", options.maxPayloadLength, 16 << 20, 0, MAX_U32);
  const idleMs = optMs("bunWebSocket.idleTimeout", options.idleTimeout, 120_000, true);
  if (idleMs > 960_000) throw new InvalidOptionError("bunWebSocket.idleTimeout", "must be at most 960,000 ms");
  const backpressureLimit = optInt("bunWebSocket.backpressureLimit", options.backpressureLimit, 16 << 20, 0, MAX_U32);
  const sendPings = optBool("bunWebSocket.sendPings", options.sendPings, true);
  const perMessageDeflate = optBool("bunWebSocket.perMessageDeflate", options.perMessageDeflate, false);
  /** Foreign sockets no table handles (closed at open; their later events are dropped). */
  const orphans = new WeakSet<BunServerWebSocketLike>();
  const handled = (ws: BunServerWebSocketLike): boolean => {
    try {
      return fallback?.handles ? fallback.handles(ws.data) === true : true;
    } catch {
      return false;
    }
  };
  const foreign = (ws: BunServerWebSocketLike) => {
    if (!warnedForeign) {
      warnedForeign = true;
      getLogger().warn(
        "a WebSocket upgraded by someone else reached getty's Bun table and no table handles it; closed",
      );
    }
    try {
      ws.close(1011, "no handler for this WebSocket");
    } catch {
      // Already closed.
    }
  };
  return {
    maxPayloadLength,
    idleTimeout: bunIdleSeconds(idleMs),
    sendPings,
    backpressureLimit,
    closeOnBackpressureLimit: false,
    perMessageDeflate,
    open(ws) {
      const events = eventsOf(ws);
      if (events) return events.bunOpen(ws);
      if (fallback && handled(ws)) return void fallback.open?.(ws);
      orphans.add(ws);
      foreign(ws);
    },
    message(ws, message) {
      const events = eventsOf(ws);
      if (events) events.bunMessage(message);
      else if (fallback && !orphans.has(ws)) fallback.message?.(ws, message);
    },
    drain(ws) {
      const events = eventsOf(ws);
      if (events) events.bunDrain();
      else if (fallback && !orphans.has(ws)) fallback.drain?.(ws);
    },
    close(ws, code, reason) {
      const events = eventsOf(ws);
      if (events) events.bunClose(code, reason, maxPayloadLength);
      else if (orphans.has(ws)) orphans.delete(ws);
      else fallback?.close?.(ws, code, reason);
    },
    ping(ws, data) {
      const events = eventsOf(ws);
      if (events) events.bunPong();
      else if (fallback && !orphans.has(ws)) fallback.ping?.(ws, data);
    },
    pong(ws, data) {
      const events = eventsOf(ws);
      if (events) events.bunPong();
      else if (fallback && !orphans.has(ws)) fallback.pong?.(ws, data);
    },
    error(error, ws) {
      if (!eventsOf(ws) && fallback?.error && !orphans.has(ws)) return void fallback.error(error, ws);
      getLogger().error("a WebSocket handler threw", { error });
    },
  };
}
