/**
 * WebSocket (WS and WSS) for the echo example: the server answers upgrades on `/ws` and echoes every message
 * as it came — a binary message as binary, a text message as text, no length prefix (a WebSocket message is
 * already one package). `--max-len` is the largest message; a longer one closes that session with 1009.
 * The client sends binary messages.
 *
 * @module
 */
import { WsClient, WsServer } from "../../mod.ts";
import type { Connect, Serve } from "./types.ts";

/** The path the echo server answers on. */
const PATH = "/ws";

/** Serves echo over WebSocket, or WSS when `transport` is `wss`. */
export const serve: Serve = async (args) => {
  const server = new WsServer<string | Uint8Array>({
    host: args.host,
    port: args.port,
    path: PATH,
    tls: args.transport === "wss" ? { cert: args.cert!, key: args.key! } : undefined,
    session: { maxMsgLen: args.maxLen, reuseReadBuffer: true },
  });
  await server.runEventLoop((session) => {
    session.setEventListener({
      onOpen: (s) => args.log(`open ${s.remoteAddr}`),
      // send(): no promise per message (failures reach onError); the cheapest write for an echo.
      onMessage: (s, msg) => void s.send(msg),
      onError: (s, e) => args.log(`error ${s.remoteAddr}: ${e.code} ${e.message}`),
      onClose: (s, info) => args.log(`close ${s.remoteAddr} (${info.initiator}, ${info.code}) ${s.stat()}`),
    });
  });
  return { port: server.port, close: () => server.close() };
};

/** Connects echo sessions over WebSocket or WSS (the URL's host is the name verified). */
export const connect: Connect = async (args, newSession) => {
  const secure = args.transport === "wss";
  const host = args.serverName ?? (args.host.includes(":") ? `[${args.host}]` : args.host);
  const client = new WsClient<Uint8Array>({
    url: `${secure ? "wss" : "ws"}://${host}:${args.port}${PATH}`,
    tls: secure && args.ca ? { caCerts: [args.ca] } : undefined,
    connectionNumber: args.connections,
    reconnectAttempts: 0,
  });
  await client.runEventLoop(newSession);
  return { sessions: client.sessions, close: () => client.close() };
};
