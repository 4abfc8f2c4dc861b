/**
 * The TCP (and TLS) client: a pool of `connectionNumber` sessions to one address, refilled after losses
 * with single-flight, jittered exponential backoff — never a reconnect storm.
 *
 * @module
 */
import { type EndPoint, EndPointType } from "./endpoint.ts";
import { EndpointCore, type EndpointOptions, type EndpointStats, type NewSessionCallback } from "./endpoint_core.ts";
import { ConnectError, describe, EndpointClosedError, InvalidOptionError } from "./errors.ts";
import { getLogger } from "./logger.ts";
import { checkFunction, checkKnownKeys, checkPort, checkString, optInt, optMs } from "./options.ts";
import { runtimeAdapter } from "./runtime/select.ts";
import type { Session } from "./session.ts";
import { type ClientTlsOptions, formatAddr, type RuntimeAdapter, type Transport } from "./transport.ts";

/** Options of {@link TcpClient}. */
export interface TcpClientOptions extends EndpointOptions {
  /** Server host name or address. */
  readonly host: string;
  /** Server port. */
  readonly port: number;
  /** Connect with TLS. The server is always verified (against `caCerts` when given, else the system roots). */
  readonly tls?: ClientTlsOptions;
  /** Sessions to keep open. Default 1. */
  readonly connectionNumber?: number;
  /** Base delay before a reconnect, ms; doubles per consecutive failure, with jitter. Default 300. */
  readonly reconnectInterval?: number;
  /** Upper bound of the reconnect delay, ms. Default 30,000. */
  readonly maxReconnectInterval?: number;
  /** Consecutive failed attempts after which the client gives up and closes. Default 50; 0 = never reconnect. */
  readonly reconnectAttempts?: number;
  /** Timeout of one connection attempt (including the TLS handshake), ms. Default 3,000. */
  readonly connectTimeout?: number;
  /** Called once when the client gives up reconnecting (it is then closed). */
  readonly onGiveUp?: (error: ConnectError) => void;
  /** @internal Use another adapter than the current runtime's (tests). */
  readonly adapter?: RuntimeAdapter;
}

const KNOWN = [
  "host",
  "port",
  "tls",
  "connectionNumber",
  "reconnectInterval",
  "maxReconnectInterval",
  "reconnectAttempts",
  "connectTimeout",
  "onGiveUp",
  "session",
  "sessionName",
  "maxConcurrentHandlers",
  "adapter",
];

/** A session that closes sooner than this after opening counts as a flap and keeps the backoff growing. */
const STABLE_MS = 1_000;

/**
 * A TCP client keeping a pool of sessions to one server (TLS when `tls` is given).
 *
 * @example
 * ```ts
 * import { LengthFieldCodec, TcpClient } from "@getty/getty";
 * const client = new TcpClient<Uint8Array>({ host: "127.0.0.1", port: 8000, connectionNumber: 2 });
 * await client.runEventLoop((session) => {
 *   session.setPkgHandler(new LengthFieldCodec());
 *   session.setEventListener({ onMessage: (_s, pkg) => console.log(pkg) });
 * });
 * await client.sessions[0].writePkg(new TextEncoder().encode("hello"));
 * await client.close();
 * ```
 */
export class TcpClient<P = Uint8Array> implements EndPoint {
  /** Always `TCP_CLIENT`. */
  readonly endPointType: EndPointType = EndPointType.TCP_CLIENT;
  readonly #core: EndpointCore<P>;
  readonly #hostname: string;
  readonly #port: number;
  readonly #tls: ClientTlsOptions | undefined;
  readonly #connectionNumber: number;
  readonly #interval: number;
  readonly #maxInterval: number;
  readonly #attempts: number;
  readonly #connectTimeout: number;
  readonly #onGiveUp: ((error: ConnectError) => void) | undefined;
  readonly #adapter: RuntimeAdapter | undefined;
  readonly #abort = new AbortController();
  #newSession: NewSessionCallback<P> | undefined;
  #closed = false;
  #closing: Promise<void> | undefined;
  #refilling = false;
  #failures = 0;
  #flaps = 0;
  #connects = 0;
  #wake: (() => void) | undefined;
  readonly #openedAt = new WeakMap<Session<P>, number>();

  /** Validates the options; nothing connects until {@link runEventLoop}. */
  constructor(options: TcpClientOptions) {
    if (typeof options !== "object" || options === null) throw new InvalidOptionError("TcpClient", "options required");
    checkKnownKeys("TcpClient", options, KNOWN);
    this.#hostname = checkString("TcpClient.host", options.host);
    this.#port = checkPort("TcpClient.port", options.port);
    if (this.#port === 0) throw new InvalidOptionError("TcpClient.port", "must be a port in [1, 65535] (got 0)");
    if (options.tls !== undefined) checkClientTls("TcpClient.tls", options.tls);
    this.#tls = options.tls;
    this.#connectionNumber = optInt("TcpClient.connectionNumber", options.connectionNumber, 1, 1, 10_000);
    this.#interval = optMs("TcpClient.reconnectInterval", options.reconnectInterval, 300, false);
    this.#maxInterval = optMs("TcpClient.maxReconnectInterval", options.maxReconnectInterval, 30_000, false);
    if (this.#maxInterval < this.#interval) {
      throw new InvalidOptionError("TcpClient.maxReconnectInterval", "must be >= reconnectInterval");
    }
    this.#attempts = optInt("TcpClient.reconnectAttempts", options.reconnectAttempts, 50, 0);
    this.#connectTimeout = optMs("TcpClient.connectTimeout", options.connectTimeout, 3_000, false);
    if (options.onGiveUp !== undefined) checkFunction("TcpClient.onGiveUp", options.onGiveUp);
    this.#onGiveUp = options.onGiveUp;
    this.#adapter = options.adapter;
    this.#core = new EndpointCore<P>(
      "TcpClient",
      this,
      options,
      options.tls ? "tls-session" : "tcp-session",
      (session) => this.#lost(session),
    );
  }

  /** Process-unique endpoint id. */
  get id(): number {
    return this.#core.id;
  }

  /** `host:port` of the server. */
  get address(): string {
    return formatAddr(this.#hostname, this.#port);
  }

  /** The open sessions of the pool (a snapshot). */
  get sessions(): Session<P>[] {
    return [...this.#core.sessions].filter((s) => s.state === "open");
  }

  /** Counters: sessions open, opened and refused; bytes, packages and errors; connection attempts. */
  stats(): EndpointStats & { readonly connects: number } {
    return { ...this.#core.stats(), connects: this.#connects };
  }

  /** Whether close() was called (or the client gave up). */
  isClosed(): boolean {
    return this.#closed;
  }

  /**
   * Connects `connectionNumber` sessions; resolves once all are open. If any first attempt fails, closes the
   * client and rejects with a {@link ConnectError} (reconnecting applies to sessions lost later).
   */
  async runEventLoop(newSession: NewSessionCallback<P>): Promise<void> {
    if (typeof newSession !== "function") throw new InvalidOptionError("newSession", "must be a function");
    if (this.#closed) throw new EndpointClosedError("TcpClient is closed");
    if (this.#newSession) throw new EndpointClosedError("TcpClient.runEventLoop was already called");
    this.#newSession = newSession;
    this.#core.started();
    const results = await Promise.allSettled(
      Array.from({ length: this.#connectionNumber }, () => this.#connectOne()),
    );
    const failed = results.find((r) => r.status === "rejected") as PromiseRejectedResult | undefined;
    if (failed) {
      await this.close();
      throw failed.reason;
    }
    if (this.#closed) throw new EndpointClosedError("TcpClient was closed while connecting");
  }

  /** Dials once; resolves with the open session or rejects with ConnectError. */
  async #connectOne(): Promise<Session<P>> {
    this.#connects++;
    const adapter = this.#adapter ?? await runtimeAdapter();
    const signal = AbortSignal.any([this.#abort.signal, AbortSignal.timeout(this.#connectTimeout)]);
    let transport: Transport;
    try {
      transport = await adapter.connectTcp({ hostname: this.#hostname, port: this.#port, tls: this.#tls, signal });
    } catch (error) {
      const reason = this.#abort.signal.aborted
        ? "client closed"
        : signal.aborted
        ? `timed out after ${this.#connectTimeout} ms (connectTimeout)`
        : describeConnectError(error);
      throw new ConnectError(this.address, reason, { cause: error });
    }
    if (this.#closed) {
      transport.close();
      throw new ConnectError(this.address, "client closed");
    }
    const session = await this.#core.open(transport, this.#newSession!);
    if (!session) throw new ConnectError(this.address, "session refused by newSession or onOpen");
    this.#openedAt.set(session, Date.now());
    return session;
  }

  #lost(session: Session<P>): void {
    if (this.#closed || !this.#newSession) return;
    const openedAt = this.#openedAt.get(session);
    if (openedAt !== undefined && Date.now() - openedAt < STABLE_MS) this.#flaps++;
    else this.#flaps = 0;
    this.#refill();
  }

  /** Single-flight refill loop: one reconnect at a time, with backoff. */
  #refill(): void {
    if (this.#refilling || this.#closed) return;
    if (this.#attempts === 0) return;
    this.#refilling = true;
    void (async () => {
      try {
        while (!this.#closed && this.#core.sessions.size < this.#connectionNumber) {
          await this.#sleep(this.#backoff());
          if (this.#closed) break;
          try {
            await this.#connectOne();
            this.#failures = 0;
          } catch (error) {
            if (this.#closed) break;
            this.#failures++;
            getLogger().debug("reconnect failed", { client: this.id, failures: this.#failures, error });
            if (this.#failures >= this.#attempts) {
              const gaveUp = new ConnectError(
                this.address,
                `gave up after ${this.#failures} consecutive failed attempts (reconnectAttempts): ${describe(error)}`,
                { cause: error },
              );
              try {
                this.#onGiveUp?.(gaveUp);
              } catch (e) {
                getLogger().warn("onGiveUp threw", { client: this.id, error: e });
              }
              void this.close();
              break;
            }
          }
        }
      } finally {
        this.#refilling = false;
      }
    })();
  }

  /** Delay before the next attempt: base × 2^(failures+flaps), capped, with ±25 % jitter around 75 %. */
  #backoff(): number {
    const exp = Math.min(this.#failures + this.#flaps, 20);
    const base = Math.min(this.#maxInterval, this.#interval * 2 ** exp);
    return base * (0.5 + Math.random() * 0.5);
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#wake = undefined;
        resolve();
      }, ms);
      this.#wake = () => {
        clearTimeout(timer);
        this.#wake = undefined;
        resolve();
      };
    });
  }

  /** Closes every session and stops reconnecting; never reconnects afterwards. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#closed = true;
      this.#abort.abort(new EndpointClosedError("TcpClient closed"));
      this.#wake?.();
      await this.#core.closeAll();
    })();
    return this.#closing;
  }
}

/** Validates client TLS settings. */
export function checkClientTls(where: string, tls: ClientTlsOptions): void {
  if (typeof tls !== "object" || tls === null) throw new InvalidOptionError(where, "must be an object");
  checkKnownKeys(where, tls, ["caCerts", "serverName"]);
  if (tls.caCerts !== undefined) {
    if (!Array.isArray(tls.caCerts) || tls.caCerts.length === 0) {
      throw new InvalidOptionError(`${where}.caCerts`, "must be a non-empty array of PEM strings");
    }
    tls.caCerts.forEach((c, i) => {
      if (typeof c !== "string" || !c.includes("-----BEGIN CERTIFICATE")) {
        throw new InvalidOptionError(`${where}.caCerts[${i}]`, "must be a PEM certificate");
      }
    });
  }
  if (tls.serverName !== undefined) checkString(`${where}.serverName`, tls.serverName);
}

function describeConnectError(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return typeof code === "string" && !error.message.includes(code) ? `${code}: ${error.message}` : error.message;
  }
  return String(error);
}
