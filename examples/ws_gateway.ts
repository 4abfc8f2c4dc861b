/**
 * A WebSocket-to-TCP gateway: each browser WebSocket session gets its own TCP session to a backend that speaks
 * the length-field codec (4-byte big-endian length, then the body), and the two are bridged with
 * `session.readable.pipeTo(other.writable)` — with backpressure both ways, since a session's readable stops
 * reading its socket while the other side cannot take more.
 *
 *   deno run -A examples/ws_gateway.ts [--port 8080] [--backend host:port]
 *   bun examples/ws_gateway.ts --backend 127.0.0.1:9000
 *
 * A binary message becomes one backend frame with the same bytes; a text message one frame with its UTF-8
 * bytes; each backend frame comes back as one binary message. When either side closes, so does the other.
 * Without `--backend`, an in-process backend is started that answers each frame with its bytes reversed.
 * Prints `gateway ws://<host>:<port>/ws -> tcp <backend>` once ready.
 *
 * @module
 */
import process from "node:process";
import { parseArgs } from "node:util";
import { LengthFieldCodec, type Session, TcpClient, TcpServer, WsServer } from "../mod.ts";

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string", default: "8080" },
    backend: { type: "string" },
  },
});

/** The demo backend: reverses each frame's bytes. */
async function startDemoBackend(): Promise<TcpServer<Uint8Array>> {
  const backend = new TcpServer<Uint8Array>({ host: "127.0.0.1", port: 0 });
  await backend.runEventLoop((s) => {
    s.setPkgHandler(new LengthFieldCodec());
    s.setEventListener({ onMessage: (s, frame) => void s.writePkg(frame.slice().reverse()).catch(() => {}) });
  });
  return backend;
}

const demo = values.backend ? undefined : await startDemoBackend();
const [backendHost, backendPort] = values.backend
  ? [
    values.backend.slice(0, values.backend.lastIndexOf(":")),
    Number(values.backend.slice(values.backend.lastIndexOf(":") + 1)),
  ]
  : ["127.0.0.1", demo!.port];

const encoder = new TextEncoder();
/** Browser messages as backend frames: text as its UTF-8 bytes. */
const toBytes = () =>
  new TransformStream<string | Uint8Array, Uint8Array>({
    transform: (msg, out) => out.enqueue(typeof msg === "string" ? encoder.encode(msg) : msg),
  });

const gateway = new WsServer<string | Uint8Array>({
  host: values.host,
  port: Number(values.port),
  path: "/ws",
  session: { maxMsgLen: 1 << 20 },
});
await gateway.runEventLoop(async (browser) => {
  // One TCP session per browser session; if the backend is down the upgrade's session is refused (closed).
  const tcp = new TcpClient<Uint8Array>({ host: backendHost, port: backendPort, reconnectAttempts: 0 });
  await tcp.runEventLoop((s) => s.setPkgHandler(new LengthFieldCodec({ maxFrameLength: 1 << 20 })));
  const backend: Session<Uint8Array> = tcp.sessions[0];
  // Each direction ends when its source closes, which closes its destination (a WritableStream's close).
  void browser.readable.pipeThrough(toBytes()).pipeTo(backend.writable).catch(() => backend.close());
  void backend.readable.pipeTo(browser.writable as WritableStream<Uint8Array>).catch(() => browser.close());
  browser.addCloseCallback("gateway", "backend", () => void tcp.close());
});
console.log(`gateway ${gateway.url} -> tcp ${backendHost}:${backendPort}`);

const shutdown = async () => {
  await gateway.close();
  await demo?.close();
  process.exit(0);
};
process.on("SIGINT", shutdown);
process.on("SIGTERM", shutdown);
