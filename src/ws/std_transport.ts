/**
 * A transport over a standard `WebSocket` object: Deno's server sockets (from `Deno.upgradeWebSocket`) and the
 * global `WebSocket` client on both runtimes. Only web-standard API is used here; what differs per runtime
 * (ping frames, allowed close codes, releasing a TLS client) is passed in by the runtime adapter.
 *
 * Backpressure: `send()` returns nothing, so a write completes once `bufferedAmount` is at most
 * {@link SEND_BUDGET}; while it is above, one shared timer polls every waiting socket (at once while they
 * drain, backing off to every 16 ms while none does).
 *
 * Received bytes: with the session option `reuseReadBuffer`, a binary message's ArrayBuffer (1 KiB or more) is
 * detached as soon as the session says it is done with it (a synchronous `onMessage` returned and the session
 * kept nothing). Its memory is then freed at once instead of by the garbage collector: on Deno every message is
 * a fresh buffer outside the JavaScript heap, and under a stream of large messages those buffers drive V8 into a
 * major collection every few tens of milliseconds (measured, 16 KiB echo on one core: 42–46 k messages/s with
 * a p99 of 7.7 ms before, 56–67 k and 1.1–1.5 ms after; the raw `Deno.upgradeWebSocket` echo does 53–61 k).
 *
 * @module
 */
import { formatAddr } from "../transport.ts";
import {
  closedError,
  MessageTransport,
  type MessageTransportInit,
  SEND_BUDGET,
  type SendStatus,
} from "./message_transport.ts";
import type { AppHeartbeat } from "./types.ts";

/** An ArrayBuffer with ES2024's `transfer` (detaches it; absent on older engines). */
type Detachable = ArrayBuffer & { transfer?: (newLength: number) => ArrayBuffer };

/**
 * Smallest message whose ArrayBuffer is detached once the session is done with it (`reuseReadBuffer`). Below
 * this, detaching costs more than the garbage collector saves (measured on Deno: +80 ns at 64 bytes, −340 ns
 * at 1 KiB, −1.9 µs at 16 KiB, per message).
 */
const DETACH_MIN_BYTES = 1024;

/** Longest pause between two polls of the sockets with a waiting write, ms. */
const MAX_POLL_MS = 16;

const polled = new Set<StdWebSocketTransport>();
let pollTimer: ReturnType<typeof setTimeout> | undefined;
/** The next poll's delay: 0 while sockets drain, doubling (up to {@link MAX_POLL_MS}) while none does. */
let pollDelay = 0;

function poll(): void {
  pollTimer = undefined;
  let progress = false;
  for (const t of polled) {
    if (t.pollDrain()) continue;
    polled.delete(t);
    progress = true;
  }
  pollDelay = progress ? 0 : Math.min(MAX_POLL_MS, Math.max(1, pollDelay * 2));
  if (polled.size > 0) pollTimer = setTimeout(poll, pollDelay);
}

/** The message text of an `error` event (an `ErrorEvent` on Deno and Bun). */
function errorText(event: Event): string {
  const message = (event as ErrorEvent).message;
  return typeof message === "string" && message.length > 0 ? message : "WebSocket error";
}

/** Deno's error text when its idle timeout closed a connection (verified on Deno 2.9.6). */
const DENO_IDLE_ERROR = "No response from ping frame.";

/** Runtime-specific parts of a {@link StdWebSocketTransport}. */
export interface StdSocketOptions extends Omit<MessageTransportInit, "canPing"> {
  readonly socket: WebSocket;
  /**
   * Whether `close()` may send protocol codes (1001–2999). The standard client API (Deno's) allows only 1000
   * and 3000–4999; without this, code `c` in 1001–2999 is sent as `4000 + c % 1000` (1009 → 4009).
   */
  readonly anyCloseCode: boolean;
  /** Sends a ping frame (Bun's client); absent where the runtime cannot. */
  readonly pingSocket?: () => void;
  /** Called once the socket is fully closed (releases e.g. Deno's TLS HttpClient). */
  readonly release?: () => void;
}

/** A {@link MessageTransport} over a standard `WebSocket`. */
export class StdWebSocketTransport extends MessageTransport {
  readonly #socket: WebSocket;
  readonly #anyCloseCode: boolean;
  readonly #pingSocket: (() => void) | undefined;
  #error: string | undefined;
  /** A released message's buffer is detached (see the module doc). */
  readonly reclaimsReleasedChunks = true;

  constructor(options: StdSocketOptions) {
    super({ ...options, canPing: options.pingSocket !== undefined });
    const socket = options.socket;
    this.#socket = socket;
    this.#anyCloseCode = options.anyCloseCode;
    this.#pingSocket = options.pingSocket;
    socket.binaryType = "arraybuffer";
    socket.addEventListener("message", (event) => {
      const data: unknown = event.data;
      if (typeof data === "string") return void this.received(data);
      const buffer = data as Detachable;
      if (this.received(new Uint8Array(buffer)) && buffer.byteLength >= DETACH_MIN_BYTES) buffer.transfer?.(0);
    });
    socket.addEventListener("error", (event) => {
      this.#error ??= errorText(event);
    });
    socket.addEventListener("close", (event) => {
      options.release?.();
      const error = this.#error;
      this.ended({
        code: event.code,
        reason: event.reason,
        error,
        kind: error === DENO_IDLE_ERROR ? "idle" : undefined,
      });
      this.socketClosed();
    }, { once: true });
    // Bun's client has ping/pong events (it has already answered a ping); Deno's sockets have none.
    socket.addEventListener("pong", () => this.ponged());
    socket.addEventListener("ping", () => this.ponged());
  }

  protected sendMessage(chunk: Uint8Array | string): SendStatus {
    if (this.#socket.readyState !== WebSocket.OPEN) throw closedError();
    this.#socket.send(chunk);
    return this.#socket.bufferedAmount <= SEND_BUDGET ? "sent" : "queued";
  }

  protected get bufferedAmount(): number {
    return this.#socket.bufferedAmount;
  }

  protected override watchDrain(): void {
    polled.add(this);
    pollTimer ??= setTimeout(poll, pollDelay);
  }

  /** @internal Called by the poller; returns whether to keep polling. */
  pollDrain(): boolean {
    this.drained();
    return this.waiting;
  }

  protected override pingSocket(): void {
    this.#pingSocket?.();
  }

  protected closeSocket(code: number | undefined, reason: string | undefined): void {
    polled.delete(this);
    if (code !== undefined && !this.#anyCloseCode && code !== 1000 && (code < 3000 || code > 4999)) {
      code = 4000 + (code % 1000);
    }
    try {
      this.#socket.close(code, reason);
    } catch {
      try {
        this.#socket.close();
      } catch {
        // Already closing.
      }
    }
  }
}

/** What {@link openClientSocket} needs besides the socket. */
export interface ClientSocketOptions {
  readonly url: string;
  readonly heartbeat: AppHeartbeat | undefined;
  readonly signal: AbortSignal;
  readonly anyCloseCode: boolean;
  readonly pingSocket?: (socket: WebSocket) => void;
  readonly release?: () => void;
}

/**
 * Waits for a client `socket` to open; resolves with its transport. Rejects with an Error carrying the
 * runtime's message when the handshake fails (Deno reports code 0, Bun 1006: both read as 1006), or with
 * `signal.reason` when aborted.
 */
export function openClientSocket(socket: WebSocket, options: ClientSocketOptions): Promise<StdWebSocketTransport> {
  socket.binaryType = "arraybuffer";
  const { promise, resolve, reject } = Promise.withResolvers<StdWebSocketTransport>();
  let error: string | undefined;
  const cleanup = () => {
    socket.removeEventListener("open", onOpen);
    socket.removeEventListener("error", onError);
    socket.removeEventListener("close", onClose);
    options.signal.removeEventListener("abort", onAbort);
  };
  const onError = (event: Event) => {
    error ??= errorText(event);
  };
  const onClose = (event: CloseEvent) => {
    cleanup();
    options.release?.();
    const code = event.code === 0 ? 1006 : event.code;
    reject(new Error(`WebSocket handshake failed: ${error ?? "closed"} (${code})`));
  };
  const onAbort = () => {
    cleanup();
    socket.addEventListener("close", () => options.release?.(), { once: true });
    try {
      socket.close();
    } catch {
      // Already closing.
    }
    reject(options.signal.reason);
  };
  const onOpen = () => {
    cleanup();
    const url = new URL(options.url);
    const port = url.port === "" ? (url.protocol === "wss:" ? 443 : 80) : Number(url.port);
    const pingSocket = options.pingSocket;
    resolve(
      new StdWebSocketTransport({
        socket,
        localAddr: "unknown",
        remoteAddr: formatAddr(url.hostname.replace(/^\[|\]$/g, ""), port),
        url: options.url,
        protocol: socket.protocol,
        heartbeat: options.heartbeat,
        anyCloseCode: options.anyCloseCode,
        pingSocket: pingSocket ? () => pingSocket(socket) : undefined,
        release: options.release,
      }),
    );
  };
  if (options.signal.aborted) {
    onAbort();
    return promise;
  }
  socket.addEventListener("open", onOpen);
  socket.addEventListener("error", onError);
  socket.addEventListener("close", onClose);
  options.signal.addEventListener("abort", onAbort);
  return promise;
}
