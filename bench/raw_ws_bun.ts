/**
 * Raw WebSocket echo server on `Bun.serve` + `server.upgrade`: the baseline the library's
 * `examples/echo_server.ts --transport ws` is measured against. No library code.
 *
 * Same settings and work as the library's echo: upgrades on `/ws` only (other paths get 404), messages as
 * `Uint8Array` (`binaryType`), `maxPayloadLength` = `--max-len` (4 MiB, the library's default: Bun closes with
 * 1009 above it), `idleTimeout` 120 s with Bun's pings, no compression, and every message echoed as it came with
 * one `ws.send()` — binary as binary, text as text. A send Bun drops (status 0: over its 16 MiB backpressure
 * limit) closes the connection, as the library's failed write does; a queued one (-1) is left to Bun.
 *
 *   bun bench/raw_ws_bun.ts --host 127.0.0.1 --port 0 [--max-len N]
 *
 * Prints `listening ws <host>:<port>` once ready, like the library's echo server.
 *
 * @module
 */

import { parseArgs, requireTransport } from "./raw_common.ts";

const args = parseArgs("raw_ws_bun", Bun.argv.slice(2), {
  transport: "ws",
  host: "127.0.0.1",
  port: "0",
  "max-len": String(4 * 1024 * 1024),
});
const PATH = "/ws";

requireTransport("raw_ws_bun", args.transport, "ws");

const server = Bun.serve({
  hostname: args.host,
  port: Number(args.port),
  fetch(request, srv) {
    if (new URL(request.url).pathname !== PATH) return new Response("not found\n", { status: 404 });
    if (srv.upgrade(request, { data: undefined })) return undefined;
    return new Response("upgrade required\n", { status: 426 });
  },
  websocket: {
    maxPayloadLength: Number(args["max-len"]),
    idleTimeout: 120,
    sendPings: true,
    perMessageDeflate: false,
    open(ws) {
      ws.binaryType = "uint8array";
    },
    message(ws, message) {
      if (ws.send(message) === 0 && message.length > 0) ws.close(1011, "send dropped");
    },
  },
});
console.log(`listening ws ${args.host}:${server.port}`);
for (const sig of ["SIGINT", "SIGTERM"] as const) process.on(sig, () => process.exit(0));
