// A runtime adapter without sockets: a server on it gets one session per `connect(transport)`, over whatever fake
// Transport the test hands it (recording, scribbling, message framing, …).
import type { RuntimeAdapter, Transport } from "../../src/transport.ts";

/** An adapter for `new TcpServer({ adapter })` and the `connect` that makes its server accept `transport`. */
export function fakeAdapter(name: string): { adapter: RuntimeAdapter; connect: (transport: Transport) => void } {
  let onConnection: ((t: Transport) => void) | undefined;
  const adapter: RuntimeAdapter = {
    name,
    listenTcp(options) {
      onConnection = options.onConnection;
      return Promise.resolve({ hostname: "127.0.0.1", port: 1, close() {} });
    },
    connectTcp: () => Promise.reject(new Error(`${name}: connecting is not supported`)),
  };
  const connect = (transport: Transport) => {
    if (!onConnection) throw new Error(`${name}: the server is not listening yet`);
    onConnection(transport);
  };
  return { adapter, connect };
}
