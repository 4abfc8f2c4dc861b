/**
 * The Deno WebSocket adapter: server upgrades with `Deno.upgradeWebSocket`, the standalone server on
 * `Deno.serve`, clients on the global `WebSocket` (with `Deno.createHttpClient({ caCerts })` for a private CA).
 * Deno's sockets are standard `WebSocket` objects, so both sides use {@link StdWebSocketTransport}.
 *
 * Runtime facts verified for this adapter (Deno 2.9.6) beyond `runtime-notes.md`:
 * - The server socket's `close(code)` accepts any code (1009, 1011 reach the peer); the client's `close()`
 *   throws `InvalidAccessError` for codes other than 1000 and 3000–4999, so the client maps 1001–2999 to
 *   4000 + code % 1000.
 * - A connection lost without a close frame (peer reset or FIN, a protocol error such as invalid UTF-8,
 *   an unknown opcode, or a frame over the 64 MiB limit: "Frame too large") fires `error` and then `close`
 *   with code 0 on the server. The server accepts unmasked client frames.
 * - `idleTimeout` without a pong: `error` ("No response from ping frame."), `close` 1001 with that reason
 *   (also sent to the peer), then a second `close` with 1005.
 * - `HttpServer.shutdown()` closes open WebSockets itself (the client sees 1001 "Server shutting down", the
 *   server socket a `close` with 1005) and resolves at once.
 * - A failed client handshake fires `error` whose message names the cause ("Invalid status code: 403",
 *   "tcp connect error", "invalid peer certificate: UnknownIssuer"), then `close` with code 0.
 * - `new WebSocket(url, { protocols, headers, client })`: custom headers (even `Origin`) reach the server.
 *
 * @module
 */
import { openClientSocket, StdWebSocketTransport } from "../ws/std_transport.ts";
import type { WsConnectRequest, WsListener, WsRuntime, WsServeOptions, WsUpgradeRequest } from "../ws/types.ts";
import { type MessageTransport, upgradeInit } from "../ws/message_transport.ts";
import { formatAddr } from "../transport.ts";

/** Deno's `WebSocket` constructor with its non-standard options object. */
type DenoWebSocketCtor = new (
  url: string,
  options: { protocols?: string[]; headers?: Record<string, string>; client?: Deno.HttpClient },
) => WebSocket;

function upgrade(o: WsUpgradeRequest): Response | undefined {
  let result: { socket: WebSocket; response: Response };
  try {
    result = Deno.upgradeWebSocket(o.request, {
      ...(o.protocol === undefined ? {} : { protocol: o.protocol }),
      idleTimeout: Math.ceil(o.idleTimeout / 1000),
    });
  } catch {
    return undefined; // not a request Deno.serve can upgrade
  }
  const { socket, response } = result;
  if (o.headers) { for (const [k, v] of o.headers) response.headers.set(k, v); }
  const onOpen = () => {
    socket.removeEventListener("close", onClose);
    o.onOpen(
      new StdWebSocketTransport({ ...upgradeInit(o), socket, anyCloseCode: true }),
    );
  };
  const onClose = () => {
    socket.removeEventListener("open", onOpen);
    o.onAbort();
  };
  socket.addEventListener("open", onOpen, { once: true });
  socket.addEventListener("close", onClose, { once: true });
  return response;
}

/** {@link WsRuntime} for Deno. */
export const denoWsRuntime: WsRuntime = {
  name: "deno",

  upgrade,

  remoteAddr(_request: Request, server: unknown): string | undefined {
    const addr = (server as Partial<Deno.ServeHandlerInfo> | undefined)?.remoteAddr as Deno.NetAddr | undefined;
    return addr && typeof addr.hostname === "string" ? formatAddr(addr.hostname, addr.port) : undefined;
  },

  serve(o: WsServeOptions): Promise<WsListener> {
    let server: Deno.HttpServer<Deno.NetAddr>;
    try {
      server = Deno.serve({
        hostname: o.hostname,
        port: o.port,
        ...(o.tls ? { cert: o.tls.cert, key: o.tls.key } : {}),
        onListen: () => {},
        handler: (request, info) => o.fetch(request, info),
      });
    } catch (error) {
      return Promise.reject(error); // AddrInUse, bad PEM, … are thrown synchronously
    }
    let closing: Promise<void> | undefined;
    return Promise.resolve({
      hostname: server.addr.hostname,
      port: server.addr.port,
      close: () => (closing ??= server.shutdown()),
    });
  },

  connect(o: WsConnectRequest): Promise<MessageTransport> {
    o.signal.throwIfAborted();
    const client = o.caCerts ? Deno.createHttpClient({ caCerts: [...o.caCerts] }) : undefined;
    let socket: WebSocket;
    try {
      socket = new (WebSocket as unknown as DenoWebSocketCtor)(o.url, {
        protocols: [...o.protocols],
        ...(o.headers ? { headers: { ...o.headers } } : {}),
        ...(client ? { client } : {}),
      });
    } catch (error) {
      client?.close();
      return Promise.reject(error);
    }
    let released = false;
    return openClientSocket(socket, {
      url: o.url,
      heartbeat: o.heartbeat,
      signal: o.signal,
      anyCloseCode: false,
      release: () => {
        if (released) return;
        released = true;
        client?.close();
      },
    });
  },
};
