/**
 * The library's JavaScript cost per WebSocket message on Bun, without sockets: getty's `websocket` table
 * ({@link bunWebSocket}) feeds 50 echo sessions (the echo server's handler: `onMessage` → `send`) through fake
 * `ServerWebSocket`s whose `send` returns at once. The raw server's handler (bench/raw_ws_bun.ts: `ws.send(msg)`,
 * checked) runs on the same sockets for comparison. Prints CPU ns per message for each, best of 9 rounds. Not a test
 * and not the benchmark of record (bench/run.mjs): it isolates the code a change touches, e.g. to compare two
 * checkouts.
 *
 *   bun bench/micro_ws_bun.ts
 *
 * @module
 */
import process from "node:process";
import { type BunServerWebSocketLike, bunWebSocket, WsHandler } from "../mod.ts";

const SESSIONS = 50;
const MESSAGES = 2_000_000;
const ROUNDS = 9;
const SIZE = 64;

/** The parts of a `ServerWebSocket` the table, the adapter and the raw handler use. */
interface FakeSocket extends BunServerWebSocketLike {
  binaryType: string;
  send(message: Uint8Array): number;
  getBufferedAmount(): number;
  ping(): void;
  pause(): void;
  resume(): void;
}

const table = bunWebSocket();
let sent = 0;
const sockets: FakeSocket[] = [];
const fakeServer = {
  upgrade(_request: Request, options: { data: unknown }): boolean {
    const socket: FakeSocket = {
      data: options.data,
      readyState: 1,
      binaryType: "nodebuffer",
      send(message) {
        sent += message.length;
        return message.length + 2; // bytes written, as Bun reports a message it sent
      },
      getBufferedAmount: () => 0,
      ping() {},
      pause() {},
      resume() {},
      close() {},
    };
    sockets.push(socket);
    queueMicrotask(() => table.open(socket));
    return true;
  },
  requestIP: () => ({ address: "127.0.0.1", port: 1, family: "IPv4" }),
};
const handler = new WsHandler<string | Uint8Array>((session) => {
  session.setEventListener({ onMessage: (s, message) => void s.send(message) });
});
const headers = {
  upgrade: "websocket",
  connection: "Upgrade",
  "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
  "sec-websocket-version": "13",
};
for (let i = 0; i < SESSIONS; i++) await handler.fetch(new Request("http://x/ws", { headers }), fakeServer);
while (handler.sessionCount < SESSIONS) await new Promise((resolve) => setTimeout(resolve, 1));

const messages = Array.from({ length: 1000 }, () => new Uint8Array(SIZE));
/** The raw server's message handler (bench/raw_ws_bun.ts). */
function rawMessage(socket: FakeSocket, message: Uint8Array): void {
  if (socket.send(message) === 0 && message.length > 0) socket.close(1011);
}

/** CPU time (user + system) of `fn`, in ns per message. */
function cpuNsPerMessage(fn: () => void): number {
  const start = process.cpuUsage();
  fn();
  const used = process.cpuUsage(start);
  return (used.user + used.system) * 1000 / MESSAGES;
}

const best = { library: Infinity, raw: Infinity };
for (let round = 0; round < ROUNDS; round++) {
  best.library = Math.min(
    best.library,
    cpuNsPerMessage(() => {
      for (let i = 0; i < MESSAGES; i++) table.message(sockets[i % SESSIONS], messages[i % 1000]);
    }),
  );
  best.raw = Math.min(
    best.raw,
    cpuNsPerMessage(() => {
      for (let i = 0; i < MESSAGES; i++) rawMessage(sockets[i % SESSIONS], messages[i % 1000]);
    }),
  );
}
const expected = 2 * ROUNDS * MESSAGES * SIZE;
if (sent !== expected) {
  console.error(`micro_ws_bun: echoed ${sent} bytes, expected ${expected}`);
  process.exit(1);
}
console.log(
  `${SESSIONS} sessions, ${SIZE} B messages: library ${best.library.toFixed(1)} ns/message, ` +
    `raw handler ${best.raw.toFixed(1)} ns/message (CPU time, best of ${ROUNDS} rounds)`,
);
process.exit(0);
