/**
 * UDP for the echo example: each datagram carries ONE 4-byte big-endian length-prefixed package, echoed back
 * to its sender framed the same way. The server is a {@link UdpEndpoint} (one session for the socket); the
 * client uses a connected {@link UdpClient}. UDP may drop datagrams: keep client counts modest.
 *
 * On Deno the endpoints use `Deno.listenDatagram` when run with `--unstable-net`, else node:dgram.
 *
 * @module
 */
import { LengthFieldCodec, UdpClient, UdpEndpoint } from "../../mod.ts";
import type { Connect, Serve } from "./types.ts";

/** Serves echo over UDP. */
export const serve: Serve = async (args) => {
  const endpoint = new UdpEndpoint<Uint8Array>({
    host: args.host,
    port: args.port,
    // --max-len limits the declared length (the 4-byte field, i.e. the body); maxMsgLen counts the whole datagram.
    session: { maxMsgLen: args.maxLen + 4, reuseReadBuffer: true },
  });
  await endpoint.runEventLoop((session) => {
    session.setPkgHandler(new LengthFieldCodec());
    session.setEventListener({
      onOpen: (s) => args.log(`open ${s.localAddr} (${endpoint.driver})`),
      // send(): no promise per datagram (failures reach onError); the cheapest write for an echo.
      onMessage: (s, pkg, from) => void s.send(pkg, { to: from! }),
      onError: (_s, e) => args.log(`error: ${e.code} ${e.message}`),
      onClose: (s, info) => args.log(`close (${info.initiator}) ${s.stat()}`),
    });
  });
  return { port: endpoint.port, close: () => endpoint.close() };
};

/** Connects echo sessions over UDP: one connected socket per session. */
export const connect: Connect = async (args, newSession) => {
  const client = new UdpClient<Uint8Array>({
    host: args.host,
    port: args.port,
    connectionNumber: args.connections,
  });
  const codec = new LengthFieldCodec();
  await client.runEventLoop((s) => {
    s.setPkgHandler(codec);
    return newSession(s);
  });
  return { sessions: client.sessions, close: () => client.close() };
};
