/**
 * The Bun WebSocket adapter: server upgrades with `server.upgrade()` dispatched by getty's `websocket` table
 * ({@link bunWebSocket}), the standalone server on `Bun.serve`, clients on the global `WebSocket` (with
 * `tls: { ca }` for a private CA, and its `ping()` / `pong` event for heartbeats).
 *
 * Runtime facts verified for this adapter (Bun 1.4.5) beyond `runtime-notes.md`:
 * - `server.upgrade()` works from an `async` fetch after `await`s; returning `new Response(null)` after a
 *   successful upgrade is accepted (and ignored).
 * - `ws.send()` of an empty message returns 0 although the message is delivered; 0 means "dropped" only for a
 *   non-empty one. After `-1`, `drain` fires repeatedly while the buffer empties, the last time at 0 bytes.
 * - A subprotocol cannot be refused: with no `Sec-WebSocket-Protocol` header Bun answers the client's first
 *   offer, and an empty header makes the client fail ("Missing client protocol", 1006).
 * - The server handler sees 1006 with a reason for every abnormal end: "WebSocket timed out from
 *   inactivity" (idle timeout, no close frame to the peer), "Received too big message" (the peer gets
 *   1009), "Received invalid UTF-8" / "Received invalid opcode" / "Received an incorrectly masked frame"
 *   (the peer gets 1007/1002), and "" for a plain TCP loss.
 * - `server.stop()` without `true` waits for open WebSockets to close; `stop(true)` closes them with 1001
 *   "Server closed". Both return promises.
 * - The client's `close()` accepts any code (1009, 1011 reach the server); `ping()` works and a `pong` event
 *   follows. A failed handshake fires `error` ("Expected 101 status code: 403", "Failed to connect",
 *   "TLS handshake failed: …") and `close` 1006.
 * - `server.requestIP(request)` gives `{ address, family, port }` of the client.
 *
 * @module
 */
import { formatAddr } from "../transport.ts";
import { BUN_WS_EVENTS, type BunServerWebSocketLike, bunWebSocket, type BunWsEvents } from "../ws/bun_table.ts";
import { closedError, MessageTransport, type SendStatus, upgradeInit } from "../ws/message_transport.ts";
import { openClientSocket } from "../ws/std_transport.ts";
import type { WsConnectRequest, WsListener, WsRuntime, WsServeOptions, WsUpgradeRequest } from "../ws/types.ts";

type BunWs = Bun.ServerWebSocket<unknown>;

/** Bun's `WebSocket` constructor with its non-standard options object. */
type BunWebSocketCtor = new (
  url: string,
  options: { protocols?: string[]; headers?: Record<string, string>; tls?: { ca?: string[] } },
) => WebSocket;

/**
 * One socket upgraded by `server.upgrade()`, as a {@link MessageTransport}. It is also the socket's `ws.data`
 * and its handlers under {@link BUN_WS_EVENTS}, so the table reaches it in one step from the socket.
 */
class BunServerTransport extends MessageTransport implements BunWsEvents {
  readonly [BUN_WS_EVENTS]: BunWsEvents = this;
  /** Bun calls the table's `message` once per message, one after another for what one read brought. */
  readonly readsInTurns = true;
  #ws?: BunWs;
  /** The upgrade, until Bun opens the socket (or closes it before that). */
  #upgrade?: WsUpgradeRequest;

  constructor(o: WsUpgradeRequest) {
    super({ ...upgradeInit(o), canPing: true });
    this.#upgrade = o;
  }

  protected sendMessage(chunk: Uint8Array | string): SendStatus {
    const ws = this.#ws!;
    const status = ws.send(chunk);
    if (status > 0) return "sent";
    if (status === -1) return "queued";
    if (ws.readyState !== 1) throw closedError();
    return chunk.length === 0 ? "sent" : "dropped"; // Bun returns 0 for an empty message it did send
  }

  protected get bufferedAmount(): number {
    const ws = this.#ws;
    return ws !== undefined && ws.readyState === 1 ? ws.getBufferedAmount() : 0;
  }

  protected override pingSocket(): void {
    this.#ws?.ping();
  }

  protected override pauseSocket(): void {
    this.#ws?.pause();
  }

  protected override resumeSocket(): void {
    this.#ws?.resume();
  }

  protected closeSocket(code: number | undefined, reason: string | undefined): void {
    try {
      this.#ws?.close(code, reason);
    } catch {
      // Already closed.
    }
  }

  // ---- the table's calls (BunWsEvents) -------------------------------------------------------------------

  bunOpen(ws: BunServerWebSocketLike): void {
    const upgrade = this.#upgrade;
    if (upgrade === undefined) return;
    this.#upgrade = undefined;
    this.#ws = ws as BunWs;
    this.#ws.binaryType = "uint8array";
    upgrade.onOpen(this);
  }

  bunMessage(message: string | Uint8Array): void {
    this.received(message);
  }

  bunDrain(): void {
    this.drained();
  }

  bunPong(): void {
    this.ponged();
  }

  bunClose(code: number, reason: string, maxPayloadLength: number): void {
    const upgrade = this.#upgrade;
    if (upgrade !== undefined) {
      // Closed before it opened: no session exists yet.
      this.#upgrade = undefined;
      upgrade.onAbort();
      return;
    }
    if (code === 1006 && reason === "WebSocket timed out from inactivity") {
      this.ended({ code, reason, kind: "idle" });
    } else if (code === 1006 && reason === "Received too big message") {
      this.ended({ code, reason, kind: "tooBig", limit: maxPayloadLength });
    } else {
      this.ended({ code, reason, error: code === 1006 ? reason : undefined });
    }
    this.socketClosed();
  }
}

function isBunServer(server: unknown): server is Bun.Server<unknown> {
  return typeof server === "object" && server !== null &&
    typeof (server as { upgrade?: unknown }).upgrade === "function";
}

/** {@link WsRuntime} for Bun. */
export const bunWsRuntime: WsRuntime = {
  name: "bun",

  upgrade(o: WsUpgradeRequest): Response | undefined {
    if (!isBunServer(o.server)) {
      throw new TypeError("on Bun, pass the Bun server (the second argument of fetch) to upgrade a WebSocket");
    }
    const headers: Record<string, string> = {};
    o.headers?.forEach((v, k) => (headers[k] = v));
    // Bun answers the client's first offer when no protocol header is set; set ours explicitly.
    if (o.protocol !== undefined) headers["sec-websocket-protocol"] = o.protocol;
    const upgraded = o.server.upgrade(o.request, { data: new BunServerTransport(o), headers });
    return upgraded ? new Response(null) : undefined;
  },

  remoteAddr(request: Request, server: unknown): string | undefined {
    if (!isBunServer(server)) return undefined;
    const ip = server.requestIP(request);
    return ip ? formatAddr(ip.address, ip.port) : undefined;
  },

  serve(o: WsServeOptions): Promise<WsListener> {
    let server: Bun.Server<unknown>;
    try {
      server = Bun.serve({
        hostname: o.hostname,
        port: o.port,
        ...(o.tls ? { tls: { cert: o.tls.cert, key: o.tls.key } } : {}),
        fetch: (request, srv) => o.fetch(request, srv),
        websocket: bunWebSocket({ maxPayloadLength: o.maxPayloadLength, idleTimeout: o.idleTimeout }),
      });
    } catch (error) {
      return Promise.reject(error); // EADDRINUSE, bad PEM, … are thrown synchronously
    }
    let closing: Promise<void> | undefined;
    return Promise.resolve({
      hostname: server.hostname ?? o.hostname,
      port: server.port ?? o.port,
      close: () => (closing ??= server.stop(true).then(() => {})),
    });
  },

  connect(o: WsConnectRequest): Promise<MessageTransport> {
    o.signal.throwIfAborted();
    const socket = new (WebSocket as unknown as BunWebSocketCtor)(o.url, {
      protocols: [...o.protocols],
      ...(o.headers ? { headers: { ...o.headers } } : {}),
      ...(o.caCerts ? { tls: { ca: [...o.caCerts] } } : {}),
    });
    return openClientSocket(socket, {
      url: o.url,
      heartbeat: o.heartbeat,
      signal: o.signal,
      anyCloseCode: true,
      pingSocket: (s) => (s as unknown as { ping(): void }).ping(),
    });
  },
};
