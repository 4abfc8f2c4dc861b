/**
 * hono integration (entry point `@getty/getty/hono`; the core never imports hono): mount a
 * {@link WsHandler} as hono middleware and get full getty sessions — codecs, awaited writes with water
 * marks, `wsConnection(session).ping()` and `.bufferedAmount`, `onWritabilityChange` as the drain signal,
 * cron and timeouts — which hono's own `WSContext` lacks. Works on Deno and Bun.
 *
 * On Bun, `Bun.serve` takes one `websocket` table for the whole server: use {@link websocket} from here. It
 * serves getty's sockets and hands every other one to hono's own table, so `upgradeWebSocket` from
 * `hono/bun` keeps working in the same app.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { WsHandler } from "@getty/getty";
 * import { upgradeSession, websocket } from "@getty/getty/hono";
 *
 * const chat = new WsHandler((session) => {
 *   session.setEventListener({ onMessage: (s, msg) => void s.writePkg(msg) });
 * });
 * const app = new Hono();
 * app.get("/ws", upgradeSession(chat));
 * // Deno: Deno.serve(app.fetch);
 * // Bun:  Bun.serve({ fetch: app.fetch, websocket });
 * ```
 *
 * @module
 */
import { prometheusText, type StatsSource } from "./metrics.ts";
import { detectRuntime } from "./runtime/select.ts";
import {
  bunWebSocket,
  type BunWebSocketFallback,
  type BunWebSocketOptions,
  type BunWebSocketTable,
} from "./ws/bun_table.ts";
import type { WsHandler } from "./ws/handler.ts";
import { hasToken } from "./ws/upgrade.ts";

/** The parts of hono's `Context` the middleware reads (structural: hono's own type satisfies it). */
export interface HonoContextLike {
  /** hono's request wrapper. */
  readonly req: { readonly raw: Request };
  /** Bun: the server (or `{ server }`); Deno: the `ServeHandlerInfo`. */
  readonly env: unknown;
}

/** A hono middleware (`MiddlewareHandler`), typed structurally so it fits any hono app. */
export type SessionMiddleware = (c: HonoContextLike, next: () => Promise<void>) => Promise<Response | void>;

export type { BunWebSocketOptions, BunWebSocketTable } from "./ws/bun_table.ts";
export type { StatsSource } from "./metrics.ts";

/** Whether `data` is what hono's `upgradeWebSocket` attaches (its table reads `data.events` unchecked). */
function isHonoData(data: unknown): boolean {
  if (typeof data !== "object" || data === null) return false;
  const events = (data as { events?: unknown }).events;
  return typeof events === "object" && events !== null;
}

// `hono/bun` cannot even be imported on Deno (it reads the `Bun` global at load), so load it on Bun only.
const honoBun = detectRuntime() === "bun" ? (await import("hono/bun")).websocket : undefined;
type HonoBunTable = NonNullable<typeof honoBun>;

/** hono's Bun table, given only the sockets hono upgraded. */
const honoFallback: BunWebSocketFallback = {
  handles: (data) => honoBun !== undefined && isHonoData(data),
  open: (ws) => honoBun?.open(ws as Parameters<HonoBunTable["open"]>[0]),
  message: (ws, message) => honoBun?.message(ws as Parameters<HonoBunTable["message"]>[0], message),
  close: (ws, code, reason) => honoBun?.close(ws as Parameters<HonoBunTable["close"]>[0], code, reason),
};

/** What getty's handler needs as the server argument: Bun's `Server` (from `c.env`), or Deno's `ServeHandlerInfo`. */
function serverOf(c: HonoContextLike): unknown {
  const env: unknown = c.env;
  if (typeof env === "object" && env !== null && "server" in env) return (env as { server: unknown }).server;
  return env;
}

/**
 * hono middleware upgrading the request to a session of `handler`. A request that does not ask for an upgrade
 * falls through to the next handler (like hono's `upgradeWebSocket`); an upgrade request that is invalid or
 * refused (origin, subprotocol, `onUpgrade`, `maxConnections`) gets the handler's 4xx/5xx. The upgrade
 * request's headers are `wsConnection(session).headers`.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { WsHandler } from "@getty/getty";
 * import { upgradeSession } from "@getty/getty/hono";
 * const app = new Hono();
 * app.get("/ws", upgradeSession(new WsHandler((s) => s.setEventListener({ onMessage: (s, m) => void s.writePkg(m) }))));
 * ```
 */
export function upgradeSession<P>(handler: WsHandler<P>): SessionMiddleware {
  if (typeof handler !== "object" || handler === null || typeof handler.fetch !== "function") {
    throw new TypeError("upgradeSession takes a WsHandler");
  }
  return async (c, next) => {
    if (!hasToken(c.req.raw.headers.get("upgrade"), "websocket")) {
      await next();
      return;
    }
    return await handler.fetch(c.req.raw, serverOf(c));
  };
}

/**
 * Builds a Bun `websocket` table for a hono app: getty sessions plus hono's own `upgradeWebSocket`
 * sockets. Use it to set Bun's table options; otherwise use {@link websocket}.
 */
export function createWebSocket(options: Omit<BunWebSocketOptions, "fallback"> = {}): BunWebSocketTable {
  return bunWebSocket({ ...options, fallback: honoFallback });
}

/**
 * The Bun `websocket` table for a hono app using getty (and, optionally, hono's own `upgradeWebSocket`):
 * `Bun.serve({ fetch: app.fetch, websocket })`. Bun's defaults otherwise (16 MiB messages, 120 s idle
 * timeout with pings).
 */
export const websocket: BunWebSocketTable = createWebSocket();

/**
 * A hono route (or any `Request` handler) serving endpoint counters in the Prometheus text format.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { metricsRoute } from "@getty/getty/hono";
 * import { TcpServer } from "@getty/getty";
 * const server = new TcpServer({ port: 0 });
 * const app = new Hono();
 * app.get("/metrics", metricsRoute({ api: server }));
 * ```
 */
export function metricsRoute(endpoints: Record<string, StatsSource>): () => Response {
  return () =>
    new Response(prometheusText(endpoints), {
      headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
    });
}
