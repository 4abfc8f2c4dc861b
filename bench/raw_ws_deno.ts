/**
 * Raw WebSocket echo server on `Deno.serve` + `Deno.upgradeWebSocket`: the baseline the library's
 * `examples/echo_server.ts --transport ws` is measured against. No library code.
 *
 * Same work as the library's echo: upgrades on `/ws` only (other paths get 404), the same idle timeout (120 s),
 * each message's length checked against `--max-len` (a longer one closes with 1009, as the library does), and
 * every message echoed as it came with one `socket.send()` — binary as binary (the `ArrayBuffer` Deno delivers;
 * the library wraps it in a `Uint8Array` view, no copy), text as text. Deno's server socket has no drain event
 * and `send()` returns nothing; this server does not poll `bufferedAmount` (the library does once more than
 * 64 KiB are buffered, which the benchmark's loads never reach).
 *
 *   deno run -A bench/raw_ws_deno.ts --host 127.0.0.1 --port 0 [--max-len N]
 *
 * Prints `listening ws <host>:<port>` once ready, like the library's echo server.
 *
 * @module
 */

import { parseArgs, requireTransport } from "./raw_common.ts";

const args = parseArgs("raw_ws_deno", Deno.args, {
  transport: "ws",
  host: "127.0.0.1",
  port: "0",
  "max-len": String(4 * 1024 * 1024),
});
const MAX_LEN = Number(args["max-len"]);
const PATH = "/ws";
/** Seconds, as the library passes its default idleTimeout (120,000 ms) to Deno.upgradeWebSocket. */
const IDLE_TIMEOUT_S = 120;

requireTransport("raw_ws_deno", args.transport, "ws");

function handler(request: Request): Response {
  if (new URL(request.url).pathname !== PATH) return new Response("not found\n", { status: 404 });
  let upgraded: { socket: WebSocket; response: Response };
  try {
    upgraded = Deno.upgradeWebSocket(request, { idleTimeout: IDLE_TIMEOUT_S });
  } catch {
    return new Response("upgrade required\n", { status: 426 });
  }
  const { socket, response } = upgraded;
  socket.binaryType = "arraybuffer";
  socket.onmessage = (event: MessageEvent) => {
    const data = event.data as ArrayBuffer | string;
    if (typeof data !== "string" && data.byteLength > MAX_LEN) return socket.close(1009, "message too big");
    socket.send(data);
  };
  return response;
}

const server = Deno.serve({ hostname: args.host, port: Number(args.port), onListen: () => {} }, handler);
console.log(`listening ws ${args.host}:${server.addr.port}`);
for (const sig of ["SIGINT", "SIGTERM"] as const) Deno.addSignalListener(sig, () => Deno.exit(0));
