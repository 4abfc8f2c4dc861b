/**
 * A small chat on hono and getty, the same file on Deno and Bun:
 *
 *   deno run -A examples/hono_chat.ts [--port 8787] [--host 127.0.0.1]
 *   bun examples/hono_chat.ts [--port 8787]
 *
 * Prints `chat http://<host>:<port>/` once listening; open it in two browser tabs. `GET /` serves the page,
 * `GET /ws?name=ann` upgrades to a getty session (through `upgradeSession`), `GET /stats` reports the live
 * sessions. Each chat line is a text message; the server broadcasts `{ from, text }` JSON (text messages too,
 * through a codec whose writer returns a string) to every session, skipping those that cannot keep up
 * (`isWritable()`: the drain signal hono's own WebSocket context lacks). SIGINT/SIGTERM close every session
 * gracefully, then the server.
 *
 * @module
 */
import process from "node:process";
import { parseArgs } from "node:util";
import { Hono } from "hono";
import { type Codec, type Session, wsConnection, WsHandler } from "../mod.ts";
import { upgradeSession, websocket } from "../src/hono.ts"; // in your code: "@getty/getty/hono"

/** What the server sends: a chat line or a notice. */
type Out = { from: string; text: string } | { notice: string };

/** Text in (each message is one chat line, at most 500 characters), JSON text out. */
const chatCodec: Codec<Out | string> = {
  read: (_s, data) => ({ pkg: new TextDecoder().decode(data).slice(0, 500), length: data.length }),
  write: (_s, msg) => JSON.stringify(msg),
};

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: { host: { type: "string", default: "127.0.0.1" }, port: { type: "string", default: "8787" } },
});

const names = new WeakMap<Session<Out | string>, string>();
let guests = 0;

const chat = new WsHandler<Out | string>((session) => {
  const url = new URL(wsConnection(session)!.url);
  const name = (url.searchParams.get("name") ?? "").replace(/[^\w-]/g, "").slice(0, 20) || `guest${++guests}`;
  names.set(session, name);
  session.setPkgHandler(chatCodec);
  session.setCronPeriod(20_000); // keeps idle connections alive: pings on Bun, and an activity check
  session.setEventListener({
    onOpen: () => broadcast({ notice: `${name} joined (${chat.sessionCount} here)` }),
    onMessage: (_s, text) => broadcast({ from: name, text: text as string }),
    onClose: () => broadcast({ notice: `${name} left` }),
  });
}, { maxConnections: 1_000, session: { maxMsgLen: 2_000 } });

function broadcast(msg: Out): void {
  for (const s of chat.sessions) {
    if (s.state === "open" && s.isWritable()) void s.writePkg(msg).catch(() => {});
  }
}

const PAGE = `<!doctype html><meta charset="utf-8"><title>getty chat</title>
<style>body{font:15px system-ui;margin:2em}#log{height:60vh;overflow:auto;border:1px solid #ccc;padding:.5em}</style>
<div id="log"></div><form id="f"><input id="t" autofocus size="60"><button>send</button></form>
<script>
const name = prompt("your name") || "";
const ws = new WebSocket(location.origin.replace(/^http/, "ws") + "/ws?name=" + encodeURIComponent(name));
const log = (line) => { const p = document.createElement("div"); p.textContent = line; document.getElementById("log").append(p); };
ws.onmessage = (e) => { const m = JSON.parse(e.data); log(m.notice ? "* " + m.notice : m.from + ": " + m.text); };
ws.onclose = (e) => log("* disconnected (" + e.code + ")");
document.getElementById("f").onsubmit = (e) => { e.preventDefault(); const t = document.getElementById("t"); if (t.value) ws.send(t.value); t.value = ""; };
</script>`;

const app = new Hono();
app.get("/", (c) => c.html(PAGE));
app.get("/ws", upgradeSession(chat));
app.get("/stats", (c) => c.json({ ...chat.stats(), names: [...chat.sessions].map((s) => names.get(s)) }));

const hostname = values.host;
const port = Number(values.port);
let stop: () => Promise<void>;
let bound: number;
if (typeof Bun !== "undefined") {
  const server = Bun.serve({ hostname, port, fetch: app.fetch, websocket });
  bound = server.port!;
  stop = () => server.stop(true);
} else {
  const server = Deno.serve({ hostname, port, onListen: () => {} }, app.fetch);
  bound = server.addr.port;
  stop = () => server.shutdown();
}
console.log(`chat http://${hostname}:${bound}/`);

const shutdown = async () => {
  await chat.close(); // every session gets a 1000 close after its queued messages
  await stop();
  process.exit(0);
};
process.on("SIGINT", shutdown);
process.on("SIGTERM", shutdown);
