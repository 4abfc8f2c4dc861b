/**
 * What every WebSocket transport shares, whatever the runtime object underneath (Bun's `ServerWebSocket`, a
 * standard `WebSocket` on Deno's server or on either runtime's client):
 *
 * - messages that arrive before the session started or while it is paused are held, in order, and delivered
 *   on start/resume (then the end of the connection, if it came meanwhile);
 * - a write completes at once when the runtime took the message without a backlog, otherwise once the
 *   runtime's own buffer is drained to {@link SEND_BUDGET} bytes, so the session's water marks and hard cap
 *   apply on every runtime;
 * - how a connection ended is normalised: one report at most (Deno fires `close` twice after an idle
 *   timeout), never after a local `close()`, code 0 (Deno) and 1006 (Bun) both read as 1006 with a
 *   {@link ConnectionError}, an idle timeout reads the same on both runtimes, and so does a message over the
 *   runtime's size limit (on both sides: Bun's "Received too big message" reads as "message too big");
 * - the opt-in application-level heartbeat.
 *
 * @module
 */
import { ConnectionError, type GettyError, MessageTooLongError } from "../errors.ts";
import type { CloseFrame, Transport, TransportSink } from "../transport.ts";
import type { AppHeartbeat, WsUpgradeRequest } from "./types.ts";

/** What the runtime did with a message: took it, queued it behind a backlog, or dropped it. */
export type SendStatus = "sent" | "queued" | "dropped";

/**
 * A write waits while the runtime holds more than this many unsent bytes of the connection (Deno's
 * `bufferedAmount`, Bun's `getBufferedAmount()`), like a kernel socket buffer that is full.
 */
export const SEND_BUDGET = 64 * 1024;

/** How a connection ended, as the runtime reported it. */
export interface RawClose {
  /** The close code the runtime reported (0 on Deno for an abnormal closure). */
  readonly code: number;
  readonly reason: string;
  /** The runtime's error text, when it reported an error. */
  readonly error?: string;
  /** Recognised special cases: the runtime's idle timeout, or a message over its size limit. */
  readonly kind?: "idle" | "tooBig";
  /** The size limit in force, for `tooBig`. */
  readonly limit?: number;
}

/** Information about one WebSocket connection, from {@link wsConnection}. */
export interface WsConnection {
  /** The URL: the upgrade request's on a server, the dialled one on a client. */
  readonly url: string;
  /** The negotiated subprotocol, `""` when none. */
  readonly protocol: string;
  /** Server side: the upgrade request's headers (cookies included). Undefined on a client. */
  readonly headers: Headers | undefined;
  /** Server side: the `context` the `onUpgrade` hook returned. Undefined on a client. */
  readonly context: unknown;
  /**
   * Bytes the runtime holds for this connection and has not sent yet (Bun's `getBufferedAmount()`, the
   * WebSocket `bufferedAmount` elsewhere). The session's own queue is `session.pendingBytes`.
   */
  readonly bufferedAmount: number;
  /** Whether {@link ping} sends anything: a ping frame (Bun) or the application-level heartbeat. */
  readonly canPing: boolean;
  /** Sends a heartbeat now; the peer's answer updates `session.getActive()`. False when nothing was sent. */
  ping(): boolean;
}

/** What a transport is built from. */
export interface MessageTransportInit {
  readonly localAddr: string;
  readonly remoteAddr: string;
  readonly url: string;
  readonly protocol: string;
  readonly headers?: Headers;
  readonly context?: unknown;
  readonly heartbeat?: AppHeartbeat;
  /** The runtime can send a ping frame ({@link MessageTransport.pingSocket}). */
  readonly canPing: boolean;
}

/** What a server socket's transport is built from, taken from its upgrade (the runtime adds `canPing`). */
export function upgradeInit(o: WsUpgradeRequest): Omit<MessageTransportInit, "canPing"> {
  return {
    localAddr: o.localAddr,
    remoteAddr: o.remoteAddr,
    url: o.request.url,
    protocol: o.protocol ?? "",
    headers: o.requestHeaders,
    context: o.context,
    heartbeat: o.heartbeat,
  };
}

/** The error of a write or close on a connection that is gone. */
export function closedError(cause?: unknown): Error {
  return Object.assign(new Error("WebSocket is closed", { cause }), { code: "ERR_SOCKET_CLOSED" });
}

/** Longest close reason, in UTF-8 bytes (a close frame's payload is at most 125 bytes, 2 of them the code). */
const MAX_REASON_BYTES = 123;
const encoder = new TextEncoder();

/** Cuts `reason` to what fits in a close frame, on a character boundary. */
export function fitReason(reason: string | undefined): string | undefined {
  if (reason === undefined || encoder.encode(reason).length <= MAX_REASON_BYTES) return reason;
  let out = "";
  for (const ch of reason) {
    if (encoder.encode(out + ch).length > MAX_REASON_BYTES) break;
    out += ch;
  }
  return out;
}

/** Turns a runtime's report into what the session sees. */
function normalise(raw: RawClose): { error?: GettyError; frame: CloseFrame } {
  if (raw.kind === "idle") {
    return {
      error: new ConnectionError("no answer to heartbeat pings within the idle timeout (idleTimeout)"),
      frame: { code: 1001, reason: "idle timeout" },
    };
  }
  if (raw.kind === "tooBig") {
    const limit = raw.limit ?? 0;
    return {
      error: new MessageTooLongError(limit + 1, limit, "message", "maxPayloadLength"),
      frame: { code: 1009, reason: "message too big" },
    };
  }
  const code = raw.code === 0 ? 1006 : raw.code;
  if (code === 1006 || raw.error !== undefined) {
    const detail = raw.error || raw.reason || "closed without a close frame";
    return {
      error: new ConnectionError(`WebSocket connection lost: ${detail} (${code})`),
      frame: { code, reason: code === 1006 ? "" : raw.reason },
    };
  }
  // Bun's own size check closes with this reason; read it like getty's own 1009.
  if (code === 1009 && raw.reason === "Received too big message") return { frame: { code, reason: "message too big" } };
  return { frame: { code, reason: raw.reason } };
}

let asked: MessageTransport | undefined;

/**
 * The WebSocket transport under `session`, or undefined for another transport. A session reads its
 * transport's `localAddr` on demand; the getter of this class notes which transport answered.
 */
export function transportOf(session: { readonly localAddr: string }): MessageTransport | undefined {
  asked = undefined;
  void session.localAddr;
  const found = asked;
  asked = undefined;
  return found;
}

/**
 * The WebSocket connection under a session (URL, subprotocol, upgrade headers and context, the runtime's
 * buffered amount, an on-demand heartbeat), or undefined when the session is not a WebSocket session.
 *
 * @example
 * ```ts
 * import { type Session, wsConnection } from "@getty/getty";
 * function onOpen(session: Session<string | Uint8Array>) {
 *   const ws = wsConnection(session);
 *   console.log(ws?.url, ws?.protocol, ws?.headers?.get("cookie"));
 * }
 * ```
 */
export function wsConnection(session: { readonly localAddr: string }): WsConnection | undefined {
  return transportOf(session)?.connection;
}

/** A WebSocket connection as a message-framed {@link Transport}. Subclasses wrap one runtime object. */
export abstract class MessageTransport implements Transport {
  readonly framing = "message";
  /** Every message is a fresh buffer (Bun's `uint8array` messages, one ArrayBuffer per WebSocket message event). */
  readonly retainableChunks = true;
  /**
   * Every runtime's `send` copies the message (or sends it) before returning: Bun's `ServerWebSocket.send`, and
   * the standard `WebSocket.send` on Deno and on either runtime's client (tests/borrowed_writes.test.ts checks it).
   */
  readonly writeTakesCopy = true;
  readonly remoteAddr: string;
  /** A heartbeat on every cron tick: present only when the runtime can ping or the app heartbeat is on. */
  ping?: () => void;
  readonly #init: MessageTransportInit;
  #sink?: TransportSink;
  /** `close()` was called: no more I/O, no more sink calls. */
  #closed = false;
  /** How the connection ended, once it did; reported after the held messages. */
  #ended?: { error?: GettyError; frame: CloseFrame };
  #reported = false;
  #paused = false;
  /** Whether {@link pauseSocket} is in force. */
  #socketPaused = false;
  #held: Array<string | Uint8Array> = [];
  #waiters: Array<{ resolve: () => void; reject: (error: unknown) => void }> = [];
  #connection?: WsConnection;
  readonly #finished = Promise.withResolvers<void>();

  constructor(init: MessageTransportInit) {
    this.#init = init;
    this.remoteAddr = init.remoteAddr;
    const heartbeat = init.heartbeat;
    if (heartbeat) this.ping = () => this.#sendQuietly(heartbeat.ping);
    else if (init.canPing) this.ping = () => this.#pingQuietly();
  }

  /** Local address, `host:port` (on a client, as far as the runtime tells). */
  get localAddr(): string {
    asked = this;
    return this.#init.localAddr;
  }

  /** Resolves once the runtime reports the socket closed (after the close handshake, or a loss). */
  get finished(): Promise<void> {
    return this.#finished.promise;
  }

  /** The public view of this connection. */
  get connection(): WsConnection {
    if (this.#connection) return this.#connection;
    const init = this.#init;
    const buffered = () => this.#closed ? 0 : this.bufferedAmount;
    this.#connection = Object.freeze({
      url: init.url,
      protocol: init.protocol,
      headers: init.headers,
      context: init.context,
      get bufferedAmount(): number {
        return buffered();
      },
      canPing: this.ping !== undefined,
      ping: (): boolean => {
        if (!this.ping || this.#closed || this.#ended) return false;
        this.ping();
        return true;
      },
    });
    return this.#connection;
  }

  // ---- Transport ---------------------------------------------------------------------------------------------

  start(sink: TransportSink): void {
    if (this.#sink) return;
    this.#sink = sink;
    // Messages that arrived while the session was opening are delivered once it is open (a bad one then
    // closes an open session, rather than looking like a refusal by newSession/onOpen).
    if (this.#held.length > 0 || this.#ended) queueMicrotask(() => this.#flush());
    else this.#flush();
  }

  pause(): void {
    if (this.#paused) return;
    this.#paused = true;
    if (this.#closed || this.#ended) return;
    this.#socketPaused = true;
    this.pauseSocket();
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#flush();
  }

  write(chunk: Uint8Array | string): true | Promise<void> {
    if (this.#closed || this.#ended) return Promise.reject(closedError(this.#ended?.error));
    let status: SendStatus;
    try {
      status = this.sendMessage(chunk);
    } catch (error) {
      return Promise.reject(error);
    }
    if (status === "sent") return true;
    if (status === "dropped") {
      return Promise.reject(new ConnectionError("the runtime dropped the message: its backpressure limit was reached"));
    }
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    this.#waiters.push({ resolve, reject });
    this.watchDrain();
    return promise;
  }

  close(code?: number, reason?: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#held = [];
    this.#failWaiters(closedError());
    this.closeSocket(code, fitReason(reason));
  }

  // ---- for subclasses --------------------------------------------------------------------------------------

  /** Hands one message to the runtime. Throws when the connection is gone. */
  protected abstract sendMessage(chunk: Uint8Array | string): SendStatus;
  /** Bytes the runtime holds for sending. */
  protected abstract get bufferedAmount(): number;
  /** Sends a close frame (or releases the socket). Must not throw. */
  protected abstract closeSocket(code: number | undefined, reason: string | undefined): void;
  /** Starts watching for the runtime's buffer to drain; {@link drained} is then called. */
  protected watchDrain(): void {}
  /** Sends a ping frame (only called when `canPing`). */
  protected pingSocket(): void {}
  /** Stops reading from the socket, where the runtime can. */
  protected pauseSocket(): void {}
  /** Resumes reading from the socket. */
  protected resumeSocket(): void {}

  /** Whether a write waits for the runtime's buffer to drain. */
  protected get waiting(): boolean {
    return this.#waiters.length > 0;
  }

  /** The runtime's buffer may have drained: completes the waiting write when it did. */
  protected drained(): void {
    if (this.#waiters.length === 0 || this.bufferedAmount > SEND_BUDGET) return;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w.resolve();
  }

  /**
   * A message arrived. Returns true when the session is done with its bytes (the sink's answer, see
   * {@link TransportSink.data}): the runtime's buffer may then be released at once.
   */
  protected received(data: string | Uint8Array): boolean {
    if (this.#closed || this.#ended) return false;
    const heartbeat = this.#init.heartbeat;
    if (heartbeat !== undefined && typeof data === "string") {
      if (data === heartbeat.ping) {
        this.#sendQuietly(heartbeat.pong);
        this.ponged();
        return false;
      }
      if (data === heartbeat.pong) {
        this.ponged();
        return false;
      }
    }
    if (!this.#sink || this.#paused || this.#held.length > 0) {
      this.#held.push(data);
      return false;
    }
    return this.#deliver(data);
  }

  /** The peer showed it is alive (a pong, or a ping of its own). */
  protected ponged(): void {
    if (this.#closed || this.#ended) return;
    this.#sink?.pong?.();
  }

  /** The runtime reports the socket closed (call it on every close event, after {@link ended}). */
  protected socketClosed(): void {
    this.#finished.resolve();
  }

  /** The connection ended. Only the first report counts; none after `close()`. */
  protected ended(raw: RawClose): void {
    if (this.#closed || this.#ended) return;
    this.#ended = normalise(raw);
    this.#failWaiters(closedError(this.#ended.error));
    this.#flush();
  }

  // ---- internals ---------------------------------------------------------------------------------------------

  #deliver(data: string | Uint8Array): boolean {
    try {
      return this.#sink!.data(data) === true;
    } catch (error) {
      // A throwing sink ends the connection with that error.
      this.#held = [];
      this.closeSocket(1011, "internal error");
      this.#ended = { error: new ConnectionError("message handling failed", { cause: error }), frame: { code: 1011 } };
      this.#failWaiters(closedError(error));
      return false;
    }
  }

  /** Delivers held messages, then a held end, while started, not paused and not closed. */
  #flush(): void {
    while (this.#sink && !this.#paused && !this.#closed && this.#held.length > 0) {
      this.#deliver(this.#held.shift()!);
    }
    if (!this.#sink || this.#paused || this.#closed) return;
    const ended = this.#ended;
    if (ended) {
      if (this.#reported) return;
      this.#reported = true;
      this.#sink.closed(ended.error, ended.frame);
      return;
    }
    if (this.#socketPaused) {
      this.#socketPaused = false;
      this.resumeSocket();
    }
  }

  #failWaiters(error: unknown): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w.reject(error);
  }

  #sendQuietly(text: string): void {
    if (this.#closed || this.#ended) return;
    try {
      this.sendMessage(text);
    } catch {
      // The connection is going away; its end is reported through the close event.
    }
  }

  #pingQuietly(): void {
    if (this.#closed || this.#ended) return;
    try {
      this.pingSocket();
    } catch {
      // As above.
    }
  }
}
