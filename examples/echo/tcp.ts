/**
 * TCP and TLS for the echo example: 4-byte big-endian length-prefixed packages.
 *
 * @module
 */
import { LengthFieldCodec, TcpClient, TcpServer } from "../../mod.ts";
import type { Connect, Serve } from "./types.ts";

/** Serves echo over TCP, or TLS when `transport` is `tls`. */
export const serve: Serve = async (args) => {
  const server = new TcpServer<Uint8Array>({
    host: args.host,
    port: args.port,
    tls: args.transport === "tls" ? { cert: args.cert!, key: args.key! } : undefined,
    // --max-len limits the declared length (the 4-byte field, i.e. the body); maxMsgLen counts the whole frame.
    // reuseReadBuffer: onMessage sends each package at once (send copies it), so the next read may go over it.
    session: { maxMsgLen: args.maxLen + 4, reuseReadBuffer: true },
  });
  const codec = new LengthFieldCodec();
  await server.runEventLoop((session) => {
    session.setPkgHandler(codec);
    session.setEventListener({
      onOpen: (s) => args.log(`open ${s.remoteAddr}`),
      // send(): no promise per package (failures reach onError); the cheapest write for an echo.
      onMessage: (s, pkg) => void s.send(pkg),
      onError: (s, e) => args.log(`error ${s.remoteAddr}: ${e.code} ${e.message}`),
      onClose: (s, info) => args.log(`close ${s.remoteAddr} (${info.initiator}) ${s.stat()}`),
    });
  });
  return { port: server.port, close: () => server.close() };
};

/** Connects echo sessions over TCP or TLS. */
export const connect: Connect = async (args, newSession) => {
  const client = new TcpClient<Uint8Array>({
    host: args.host,
    port: args.port,
    tls: args.transport === "tls"
      ? { caCerts: args.ca ? [args.ca] : undefined, serverName: args.serverName }
      : undefined,
    connectionNumber: args.connections,
    reconnectAttempts: 0,
  });
  const codec = new LengthFieldCodec();
  await client.runEventLoop((s) => {
    s.setPkgHandler(codec);
    return newSession(s);
  });
  return { sessions: client.sessions, close: () => client.close() };
};
