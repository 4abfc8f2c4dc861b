/**
 * The internal WebSocket adapter contract: what `src/runtime/deno_ws.ts` and `src/runtime/bun_ws.ts` implement.
 * Everything above it (upgrade checks, endpoints, the client pool) is runtime-neutral.
 *
 * @module
 */
import type { ServerTlsOptions } from "../transport.ts";
import type { MessageTransport } from "./message_transport.ts";

/** The opt-in application-level heartbeat: text messages the peers exchange instead of control frames. */
export interface AppHeartbeat {
  /** Text message sent on every cron tick; a peer receiving it answers with `pong`. */
  readonly ping: string;
  /** Text message answering `ping`. */
  readonly pong: string;
}

/** What the runtime needs to upgrade one accepted request. */
export interface WsUpgradeRequest {
  readonly request: Request;
  /** A copy of the request headers that stays readable after the upgrade (Deno closes the request). */
  readonly requestHeaders: Headers;
  /** `host:port` this side (the server's address, or the request URL's host). */
  readonly localAddr: string;
  /** `host:port` of the client. */
  readonly remoteAddr: string;
  /** The second argument the server passed to the handler: Bun's `Server`, Deno's `ServeHandlerInfo`. */
  readonly server: unknown;
  /** The selected subprotocol (already checked to be one the client offered), or undefined. */
  readonly protocol: string | undefined;
  /** Extra response headers (from the upgrade hook). */
  readonly headers: Headers | undefined;
  /** Idle timeout in ms (0 = off); Deno applies it per socket, Bun per `websocket` table. */
  readonly idleTimeout: number;
  readonly heartbeat: AppHeartbeat | undefined;
  /** Returned by the upgrade hook; kept on the connection. */
  readonly context: unknown;
  /** The socket is open: its transport is ready for a session. Called at most once. */
  readonly onOpen: (transport: MessageTransport) => void;
  /** The upgrade was answered but the socket never opened. Called at most once, never after `onOpen`. */
  readonly onAbort: () => void;
}

/** Options of the runtime's own HTTP server for a standalone WebSocket server. */
export interface WsServeOptions {
  readonly hostname: string;
  readonly port: number;
  readonly tls?: ServerTlsOptions;
  /** Handles every request (the server routes the path itself). */
  readonly fetch: (request: Request, server: unknown) => Promise<Response>;
  /** Bun: largest message the runtime accepts before closing with 1009. */
  readonly maxPayloadLength: number;
  /** Bun: the `websocket` table's idle timeout, ms (0 = off). */
  readonly idleTimeout: number;
}

/** A running HTTP server. */
export interface WsListener {
  readonly hostname: string;
  readonly port: number;
  /** Stops the server and drops whatever connection is left. Resolves once stopped. */
  close(): Promise<void>;
}

/** What the runtime needs to dial a WebSocket. */
export interface WsConnectRequest {
  readonly url: string;
  readonly protocols: readonly string[];
  readonly headers: Readonly<Record<string, string>> | undefined;
  /** Extra trusted CA certificates (PEM) for `wss:`. */
  readonly caCerts: readonly string[] | undefined;
  readonly heartbeat: AppHeartbeat | undefined;
  readonly signal: AbortSignal;
}

/** The per-runtime WebSocket adapter. */
export interface WsRuntime {
  /** `"deno"` or `"bun"`. */
  readonly name: string;
  /**
   * Upgrades `request`. Returns the response to give the HTTP server (on Bun a placeholder once upgraded),
   * or undefined when the runtime refused the request (the caller answers 400).
   */
  upgrade(options: WsUpgradeRequest): Response | undefined;
  /** `host:port` of the client that sent `request`, or undefined when the runtime does not say. */
  remoteAddr(request: Request, server: unknown): string | undefined;
  /** Starts the runtime's HTTP server; resolves once listening. */
  serve(options: WsServeOptions): Promise<WsListener>;
  /** Dials; resolves once open, rejects with an Error describing the failure. */
  connect(options: WsConnectRequest): Promise<MessageTransport>;
}
