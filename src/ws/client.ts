/**
 * getty's WebSocket clients, WS_CLIENT and WSS_CLIENT, on the runtime's global `WebSocket`: a pool of
 * `connectionNumber` sessions to one URL, refilled after losses exactly like {@link TcpClient} (it is one,
 * dialling WebSockets instead of TCP connections): single-flight reconnects with jittered exponential backoff.
 *
 * @module
 */
import { EndPointType } from "../endpoint.ts";
import { InvalidOptionError } from "../errors.ts";
import { checkFunction, checkKnownKeys } from "../options.ts";
import { TcpClient, type TcpClientOptions } from "../tcp_client.ts";
import type { ConnectOptions, RuntimeAdapter, Transport } from "../transport.ts";
import type { WsMessage } from "./handler.ts";
import { type AppHeartbeatOptions, checkAppHeartbeat, checkProtocols } from "./options.ts";
import { wsRuntime } from "./runtime.ts";
import type { AppHeartbeat } from "./types.ts";

/** TLS settings of a `wss:` client. The server is always verified. */
export interface WsClientTlsOptions {
  /**
   * Extra trusted CA certificates, PEM (Deno: `Deno.createHttpClient({ caCerts })`, Bun: `tls.ca`). Without
   * them the runtime's default roots are used. The name checked is the URL's host.
   */
  readonly caCerts?: readonly string[];
}

/** Options of {@link WsClient}. */
export interface WsClientOptions extends Omit<TcpClientOptions, "host" | "port" | "tls" | "adapter"> {
  /** The server URL, `ws://host:port/path` or `wss://…`. */
  readonly url: string;
  /** Subprotocols to offer, in order of preference; read the selected one from `wsConnection(session)`. */
  readonly protocols?: readonly string[];
  /** Extra request headers (e.g. `Authorization`, `Cookie`), a non-standard option both runtimes support. */
  readonly headers?: Readonly<Record<string, string>>;
  /** `wss:` only: trust these CAs. */
  readonly tls?: WsClientTlsOptions;
  /** Opt-in application-level heartbeat (see `WsUpgradeOptions.appHeartbeat`); the server must enable it too. */
  readonly appHeartbeat?: boolean | AppHeartbeatOptions;
}

const WS_KEYS = ["url", "protocols", "headers", "tls", "appHeartbeat"];
const SHARED_KEYS = [
  "connectionNumber",
  "reconnectInterval",
  "maxReconnectInterval",
  "reconnectAttempts",
  "connectTimeout",
  "onGiveUp",
  "session",
  "sessionName",
  "maxConcurrentHandlers",
];

interface Resolved {
  readonly url: string;
  readonly hostname: string;
  readonly port: number;
  readonly secure: boolean;
  readonly protocols: readonly string[];
  readonly headers: Readonly<Record<string, string>> | undefined;
  readonly caCerts: readonly string[] | undefined;
  readonly heartbeat: AppHeartbeat | undefined;
}

function resolve(options: WsClientOptions): Resolved {
  if (typeof options !== "object" || options === null) throw new InvalidOptionError("WsClient", "options required");
  checkKnownKeys("WsClient", options, [...WS_KEYS, ...SHARED_KEYS]);
  let url: URL;
  try {
    url = new URL(options.url);
  } catch {
    throw new InvalidOptionError("WsClient.url", `must be a ws:// or wss:// URL (got ${JSON.stringify(options.url)})`);
  }
  if (url.protocol !== "ws:" && url.protocol !== "wss:") {
    throw new InvalidOptionError("WsClient.url", `must use ws: or wss: (got ${url.protocol})`);
  }
  if (url.hash !== "") throw new InvalidOptionError("WsClient.url", "must not have a #fragment");
  const secure = url.protocol === "wss:";
  let headers: Record<string, string> | undefined;
  if (options.headers !== undefined) {
    if (typeof options.headers !== "object" || options.headers === null || Array.isArray(options.headers)) {
      throw new InvalidOptionError("WsClient.headers", "must be an object of header names to strings");
    }
    headers = {};
    for (const [k, v] of Object.entries(options.headers)) {
      if (typeof v !== "string") throw new InvalidOptionError(`WsClient.headers.${k}`, "must be a string");
      headers[k] = v;
    }
  }
  let caCerts: readonly string[] | undefined;
  if (options.tls !== undefined) {
    if (!secure) throw new InvalidOptionError("WsClient.tls", "only applies to wss: URLs");
    if (typeof options.tls !== "object" || options.tls === null) {
      throw new InvalidOptionError("WsClient.tls", "must be an object");
    }
    checkKnownKeys("WsClient.tls", options.tls, ["caCerts"]);
    caCerts = options.tls.caCerts;
    if (caCerts !== undefined) {
      if (!Array.isArray(caCerts) || caCerts.length === 0) {
        throw new InvalidOptionError("WsClient.tls.caCerts", "must be a non-empty array of PEM strings");
      }
      caCerts.forEach((c, i) => {
        if (typeof c !== "string" || !c.includes("-----BEGIN CERTIFICATE")) {
          throw new InvalidOptionError(`WsClient.tls.caCerts[${i}]`, "must be a PEM certificate");
        }
      });
    }
  }
  if (options.onGiveUp !== undefined) checkFunction("WsClient.onGiveUp", options.onGiveUp);
  return {
    url: url.href,
    hostname: url.hostname.replace(/^\[|\]$/g, ""),
    port: url.port === "" ? (secure ? 443 : 80) : Number(url.port),
    secure,
    protocols: checkProtocols("WsClient.protocols", options.protocols) ?? [],
    headers,
    caCerts,
    heartbeat: checkAppHeartbeat("WsClient.appHeartbeat", options.appHeartbeat),
  };
}

/** Dials WebSockets where {@link TcpClient} would dial TCP. */
function wsAdapter(r: Resolved): RuntimeAdapter {
  return {
    name: "ws",
    listenTcp: () => Promise.reject(new Error("a WebSocket client does not listen")),
    connectTcp: async ({ signal }: ConnectOptions): Promise<Transport> => {
      const runtime = await wsRuntime();
      return runtime.connect({
        url: r.url,
        protocols: r.protocols,
        headers: r.headers,
        caCerts: r.caCerts,
        heartbeat: r.heartbeat,
        signal,
      });
    },
  };
}

/**
 * The TcpClient options of a WsClient. Shared options keep their values and TcpClient's rules: a probe
 * TcpClient (never started) validates them, and its errors are renamed to name `WsClient.x`.
 */
function tcpOptions(options: WsClientOptions, r: Resolved): TcpClientOptions {
  const shared: Record<string, unknown> = {};
  for (const key of SHARED_KEYS) {
    const value = (options as unknown as Record<string, unknown>)[key];
    if (value !== undefined) shared[key] = value;
  }
  const tcp: TcpClientOptions = {
    ...shared,
    sessionName: options.sessionName ?? (r.secure ? "wss-session" : "ws-session"),
    host: r.hostname,
    port: r.port,
    adapter: wsAdapter(r),
  };
  try {
    new TcpClient(tcp);
  } catch (error) {
    throw renamed(error);
  }
  return tcp;
}

/** TcpClient names its options `TcpClient.x`; a WsClient's errors name `WsClient.x`. */
function renamed(error: unknown): unknown {
  if (!(error instanceof InvalidOptionError) || !error.option.startsWith("TcpClient")) return error;
  const option = `WsClient${error.option.slice("TcpClient".length)}`;
  return new InvalidOptionError(option, error.message.replace(/^invalid option \S+: /, ""));
}

/**
 * A WebSocket client keeping a pool of sessions to one URL (`WSS_CLIENT` for `wss:`). Binary messages arrive
 * as `Uint8Array` and text messages as `string` on both runtimes.
 *
 * @example
 * ```ts
 * import { WsClient } from "@getty/getty";
 * const client = new WsClient({ url: "ws://127.0.0.1:8080/ws", connectionNumber: 2 });
 * await client.runEventLoop((session) => {
 *   session.setEventListener({ onMessage: (_s, msg) => console.log(msg) });
 * });
 * await client.sessions[0].writePkg("hello"); // a text message
 * await client.close();
 * ```
 */
export class WsClient<P = WsMessage> extends TcpClient<P> {
  /** `WS_CLIENT`, or `WSS_CLIENT` for a `wss:` URL. */
  override readonly endPointType: EndPointType;
  readonly #url: string;

  /** Validates the options; nothing connects until `runEventLoop`. */
  constructor(options: WsClientOptions) {
    const r = resolve(options);
    super(tcpOptions(options, r));
    this.#url = r.url;
    this.endPointType = r.secure ? EndPointType.WSS_CLIENT : EndPointType.WS_CLIENT;
  }

  /** The server URL (also what `ConnectError.address` reports). */
  override get address(): string {
    return this.#url;
  }
}
