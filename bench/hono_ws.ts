/**
 * A reference, not a baseline: the same WebSocket echo written with hono's own `upgradeWebSocket` helper
 * (`hono/bun` on Bun, `hono/deno` on Deno), the thin layer many Bun and Deno servers use today. bench/run.mjs
 * runs it beside the raw server and the library in the WebSocket loads and prints its ratio to raw under the table,
 * so the library's cost can be read against another framework layer's on the same runtime, in the same run. No
 * getty code.
 *
 * Same work as bench/raw_ws_*.ts: upgrades on `/ws` only (other paths get 404), messages as bytes (`Uint8Array` on
 * Bun, `ArrayBuffer` on Deno), `maxPayloadLength` = `--max-len` on Bun (checked per message on Deno, 1009 above
 * it), idle timeout 120 s, no compression, every message echoed as it came with one `send()`.
 *
 *   bun bench/hono_ws.ts --host 127.0.0.1 --port 0 [--max-len N]
 *   deno run -A bench/hono_ws.ts --host 127.0.0.1 --port 0 [--max-len N]
 *
 * Prints `listening ws <host>:<port>` once ready, like the other echo servers.
 *
 * @module
 */
import process from "node:process";
import { Hono } from "hono";
import type { UpgradeWebSocket, WSContext } from "hono/ws";
import { parseArgs, requireTransport } from "./raw_common.ts";

const args = parseArgs("hono_ws", process.argv.slice(2), {
  transport: "ws",
  host: "127.0.0.1",
  port: "0",
  "max-len": String(4 * 1024 * 1024),
});
requireTransport("hono_ws", args.transport, "ws");
const MAX_LEN = Number(args["max-len"]);
const onBun = "Bun" in globalThis;

/** What `ws.raw` is on either runtime: enough to ask for bytes rather than Blobs. */
type RawSocket = { binaryType: string };

/** `options` goes to the runtime's upgrade (Deno's idle timeout; Bun takes its settings from the table). */
function echoApp(upgradeWebSocket: UpgradeWebSocket<unknown>, options?: unknown): Hono {
  const app = new Hono();
  app.get(
    "/ws",
    upgradeWebSocket(() => ({
      onOpen(_event, ws: WSContext<unknown>) {
        (ws.raw as RawSocket).binaryType = onBun ? "uint8array" : "arraybuffer";
      },
      onMessage(event, ws) {
        const data = event.data as string | ArrayBuffer | Uint8Array;
        if (!onBun && typeof data !== "string" && data.byteLength > MAX_LEN) return ws.close(1009, "message too big");
        ws.send(data as string | ArrayBuffer);
      },
    }), options),
  );
  app.all("*", (c) => c.text("not found\n", 404));
  return app;
}

if (onBun) {
  const { upgradeWebSocket, websocket } = await import("hono/bun");
  const app = echoApp(upgradeWebSocket as UpgradeWebSocket<unknown>);
  const server = Bun.serve({
    hostname: args.host,
    port: Number(args.port),
    fetch: app.fetch,
    websocket: { ...websocket, maxPayloadLength: MAX_LEN, idleTimeout: 120, sendPings: true, perMessageDeflate: false },
  });
  console.log(`listening ws ${args.host}:${server.port}`);
} else {
  const { upgradeWebSocket } = await import("hono/deno");
  const app = echoApp(upgradeWebSocket as UpgradeWebSocket<unknown>, { idleTimeout: 120 });
  const server = Deno.serve({ hostname: args.host, port: Number(args.port), onListen: () => {} }, app.fetch);
  console.log(`listening ws ${args.host}:${server.addr.port}`);
}
for (const sig of ["SIGINT", "SIGTERM"] as const) process.on(sig, () => process.exit(0));
