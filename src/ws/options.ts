/**
 * Options every WebSocket server takes (the Request handler and the standalone server), their defaults and
 * their validation.
 *
 * @module
 */
import { InvalidOptionError } from "../errors.ts";
import { checkFunction, checkString, optInt, optMs } from "../options.ts";
import type { AppHeartbeat } from "./types.ts";

/** What the `onUpgrade` hook learns about a request besides the request itself. */
export interface UpgradeInfo {
  /** The request URL, parsed. */
  readonly url: URL;
  /** The `Origin` header (browsers always send it), or null. */
  readonly origin: string | null;
  /** Subprotocols the client offered, in its order. */
  readonly protocols: readonly string[];
  /** The subprotocol selected from `protocols` by the server's list, or undefined. */
  readonly protocol: string | undefined;
  /** `host:port` of the client, `"unknown"` when the runtime does not say. */
  readonly remoteAddr: string;
}

/** Accepts an upgrade with extras. */
export interface UpgradeAccept {
  /** Overrides the selected subprotocol; must be one the client offered. */
  readonly protocol?: string;
  /** Extra headers of the 101 response (e.g. `Set-Cookie`). */
  readonly headers?: HeadersInit;
  /** Any value to keep with the connection: read it as `wsConnection(session).context`. */
  readonly context?: unknown;
}

/**
 * The hook's verdict: `undefined`/`true` accept; `false` refuses with 403; a `Response` refuses with that
 * response; an {@link UpgradeAccept} accepts with extras.
 */
export type UpgradeDecision = void | boolean | Response | UpgradeAccept;

/**
 * Inspects an upgrade request (headers, cookies, URL) before any session exists. Throwing or rejecting
 * refuses with 500 (and is logged).
 */
export type UpgradeHook = (request: Request, info: UpgradeInfo) => UpgradeDecision | Promise<UpgradeDecision>;

/** The opt-in application-level heartbeat's messages. */
export interface AppHeartbeatOptions {
  /** Text message sent on every cron tick. Default `"getty:ping"`. */
  readonly ping?: string;
  /** Text message answering a ping. Default `"getty:pong"`. */
  readonly pong?: string;
}

/** Options of every WebSocket server. */
export interface WsUpgradeOptions {
  /**
   * Origins allowed to connect, e.g. `["https://app.example.com"]` (scheme, host and port; `"*"` = any).
   * A request with another `Origin` is refused with 403. Requests without `Origin` (non-browser clients)
   * are let through: use `onUpgrade` to authenticate them. Default: any origin.
   */
  readonly origins?: readonly string[];
  /**
   * Subprotocols this server speaks, in order of preference. The first one the client also offered is
   * selected; a client that offered only others is refused with 400. Without this option the client's
   * first offer is selected (as Bun always does). Default none.
   */
  readonly protocols?: readonly string[];
  /** Inspects each upgrade request and may refuse it, pick the subprotocol, add headers, attach context. */
  readonly onUpgrade?: UpgradeHook;
  /**
   * Close a connection that answered no heartbeat for this long, ms (0 = off). The runtime pings at about
   * half of it. Deno applies it per socket (whole seconds); on Bun it is a setting of the `websocket`
   * table: the standalone {@link WsServer} passes it there, with a Request handler set it with
   * `bunWebSocket({ idleTimeout })`. Default 120,000.
   */
  readonly idleTimeout?: number;
  /**
   * Opt-in application-level heartbeat for runtimes without ping frames (Deno's server and client): on
   * every cron tick the session sends the text message `ping`; a peer answers `pong`; both update
   * `session.getActive()` and never reach `onMessage`. Both peers must enable it. `true` uses the default
   * messages. Default off.
   */
  readonly appHeartbeat?: boolean | AppHeartbeatOptions;
  /** Refuse upgrades (503) beyond this many live and opening sessions. Default unbounded. */
  readonly maxConnections?: number;
}

/** The resolved options. */
export interface UpgradeConfig {
  /** Normalised allowed origins, or undefined for any. */
  readonly origins: ReadonlySet<string> | undefined;
  readonly protocols: readonly string[] | undefined;
  readonly onUpgrade: UpgradeHook | undefined;
  readonly idleTimeout: number;
  readonly heartbeat: AppHeartbeat | undefined;
  readonly maxConnections: number;
}

/** Keys of {@link WsUpgradeOptions}. */
export const UPGRADE_KEYS: readonly string[] = [
  "origins",
  "protocols",
  "onUpgrade",
  "idleTimeout",
  "appHeartbeat",
  "maxConnections",
];

/** RFC 7230 token: what a subprotocol name may be made of. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** The default application-level heartbeat. */
export const DEFAULT_APP_HEARTBEAT: AppHeartbeat = Object.freeze({ ping: "getty:ping", pong: "getty:pong" });

/** Normalises an origin for comparison (lower-case scheme and host, no default port). */
export function normaliseOrigin(origin: string): string {
  try {
    const o = new URL(origin).origin;
    if (o !== "null") return o;
  } catch {
    // not a URL: compare as given
  }
  return origin.toLowerCase();
}

/** Validates a list of subprotocol names. */
export function checkProtocols(name: string, value: unknown): readonly string[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value)) throw new InvalidOptionError(name, "must be an array of subprotocol names");
  const seen = new Set<string>();
  value.forEach((p, i) => {
    if (typeof p !== "string" || !TOKEN.test(p)) {
      throw new InvalidOptionError(`${name}[${i}]`, `must be a token (letters, digits, !#$%&'*+-.^_\`|~)`);
    }
    if (seen.has(p)) throw new InvalidOptionError(`${name}[${i}]`, `duplicate subprotocol ${p}`);
    seen.add(p);
  });
  return Object.freeze([...value]);
}

/** Validates the application-level heartbeat option. */
export function checkAppHeartbeat(name: string, value: unknown): AppHeartbeat | undefined {
  if (value === undefined || value === false) return undefined;
  if (value === true) return DEFAULT_APP_HEARTBEAT;
  if (typeof value !== "object" || value === null) {
    throw new InvalidOptionError(name, "must be a boolean or { ping, pong }");
  }
  const { ping = DEFAULT_APP_HEARTBEAT.ping, pong = DEFAULT_APP_HEARTBEAT.pong, ...rest } =
    value as AppHeartbeatOptions;
  const unknown = Object.keys(rest);
  if (unknown.length > 0) throw new InvalidOptionError(`${name}.${unknown[0]}`, "unknown option; known: ping, pong");
  checkString(`${name}.ping`, ping);
  checkString(`${name}.pong`, pong);
  if (ping === pong) throw new InvalidOptionError(`${name}.pong`, "must differ from ping");
  return Object.freeze({ ping, pong });
}

/** Validates the upgrade options of `where` (e.g. `WsServer`). */
export function resolveUpgradeOptions(where: string, o: WsUpgradeOptions): UpgradeConfig {
  let origins: Set<string> | undefined;
  if (o.origins !== undefined) {
    if (!Array.isArray(o.origins)) throw new InvalidOptionError(`${where}.origins`, "must be an array of origins");
    o.origins.forEach((v, i) => checkString(`${where}.origins[${i}]`, v));
    origins = o.origins.includes("*") ? undefined : new Set(o.origins.map(normaliseOrigin));
  }
  if (o.onUpgrade !== undefined) checkFunction(`${where}.onUpgrade`, o.onUpgrade);
  const idleTimeout = optMs(`${where}.idleTimeout`, o.idleTimeout, 120_000, true);
  if (idleTimeout > 960_000) throw new InvalidOptionError(`${where}.idleTimeout`, "must be at most 960,000 ms");
  return {
    origins,
    protocols: checkProtocols(`${where}.protocols`, o.protocols),
    onUpgrade: o.onUpgrade,
    idleTimeout,
    heartbeat: checkAppHeartbeat(`${where}.appHeartbeat`, o.appHeartbeat),
    maxConnections: optInt(`${where}.maxConnections`, o.maxConnections, Infinity, 1),
  };
}
