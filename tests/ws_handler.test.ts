// WebSocket sessions through Request upgrades: WsHandler mounted in the runtime's own server (Deno.serve /
// Bun.serve) and in a hono app, next to other routes and other WebSocket upgrades.
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { Hono } from "hono";
import {
  type BunServerWebSocketLike,
  bunWebSocket,
  type CloseInfo,
  type Session,
  WsClient,
  wsConnection,
  WsHandler,
} from "../mod.ts";
import { upgradeSession, websocket } from "../src/hono.ts";
import { assertNoLeaks, waitFor } from "./helpers/util.ts";
import { current } from "./helpers/runtimes.ts";
import { closeEventOf, nextMessage, openWebSocket, rawRequest, serveFetch, upgradeHeaders } from "./helpers/ws.ts";

type Msg = string | Uint8Array;

function echo(s: Session<Msg>): void {
  s.setEventListener({ onMessage: (s, m) => void s.writePkg(typeof m === "string" ? `echo:${m}` : m).catch(() => {}) });
}

/** Sends `m` over a fresh getty client to `url` and resolves with the reply. */
async function roundTrip(url: string, m: Msg, protocols?: string[]): Promise<Msg> {
  const got: Msg[] = [];
  const client = new WsClient<Msg>({ url, protocols, reconnectAttempts: 0 });
  await client.runEventLoop((s) => s.setEventListener({ onMessage: (_s, x) => void got.push(x) }));
  await client.sessions[0].writePkg(m);
  await waitFor(() => got.length === 1);
  await client.close();
  return got[0];
}

type HonoUpgrade = typeof import("hono/deno").upgradeWebSocket;

/** hono's own upgradeWebSocket for this runtime (`hono/bun` cannot be loaded on Deno). */
async function honoUpgrade(): Promise<HonoUpgrade> {
  if (current === "bun") return (await import("hono/bun")).upgradeWebSocket as unknown as HonoUpgrade;
  return (await import("hono/deno")).upgradeWebSocket;
}

describe(`ws on ${current}: Request handler in the runtime's server`, { timeout: 60_000 }, () => {
  after(assertNoLeaks);

  it("mounts next to other routes; two handlers share one server; close() ends sessions and refuses with 503", async () => {
    const chat = new WsHandler<Msg>(echo);
    const closes: CloseInfo[] = [];
    const feed = new WsHandler<Msg>((s) => {
      s.setEventListener({ onOpen: (s) => void s.writePkg("welcome"), onClose: (_s, i) => void closes.push(i) });
    });
    const server = serveFetch((request, srv) => {
      const path = new URL(request.url).pathname;
      if (path === "/chat") return chat.fetch(request, srv);
      if (path === "/feed") return feed.fetch(request, srv);
      return new Response("plain http");
    });
    const base = `127.0.0.1:${server.port}`;
    assert.equal(await (await fetch(`http://${base}/`)).text(), "plain http");
    const notUpgrade = await fetch(`http://${base}/chat`);
    assert.equal(notUpgrade.status, 426);
    await notUpgrade.body?.cancel();
    assert.equal(await roundTrip(`ws://${base}/chat`, "hi"), "echo:hi");
    assert.deepEqual(await roundTrip(`ws://${base}/chat`, new Uint8Array([1, 2, 3])), new Uint8Array([1, 2, 3]));
    const ws = await openWebSocket(`ws://${base}/feed`);
    assert.equal(await nextMessage(ws), "welcome");
    assert.equal(feed.sessionCount, 1);
    const [session] = feed.sessions;
    assert.equal(session.name, "ws-session");
    assert.equal(session.endPoint(), feed);
    assert.match(session.remoteAddr, /^127\.0\.0\.1:\d+$/);
    assert.equal(session.localAddr, base);
    assert.equal(wsConnection(session)!.url, `http://${base}/feed`);
    const closing = closeEventOf(ws);
    await feed.close();
    assert.deepEqual(await closing, { code: 1000, reason: "" });
    assert.equal(closes[0].initiator, "local");
    const refused = rawRequest(server.port, "GET", "/feed", upgradeHeaders());
    assert.equal((await refused.head).status, 503);
    refused.socket.destroy();
    assert.equal(await roundTrip(`ws://${base}/chat`, "still"), "echo:still", "the other handler lives on");
    await chat.close();
    await server.close();
  });

  it("rejects a handler call without the Bun server (on Bun) with 500, never a crash", async () => {
    const h = new WsHandler<Msg>(echo);
    const server = serveFetch((request) => h.fetch(request)); // forgot the second argument
    const peer = rawRequest(server.port, "GET", "/", upgradeHeaders());
    const status = (await peer.head).status;
    if (current === "bun") assert.equal(status, 500);
    else assert.equal(status, 101); // Deno needs nothing more (the remote address reads "unknown")
    peer.socket.destroy();
    await h.close();
    await server.close();
  });
});

describe(`ws on ${current}: hono`, { timeout: 60_000 }, () => {
  after(assertNoLeaks);

  it("upgradeSession gives full sessions next to hono's own upgradeWebSocket in one app", async () => {
    const upgradeWebSocket = await honoUpgrade();
    const getty = new WsHandler<Msg>(echo, { protocols: ["v1"] });
    const app = new Hono();
    app.get("/", (c) => c.text("hono"));
    app.get("/getty", upgradeSession(getty));
    app.get("/getty", (c) => c.text("no upgrade: fell through", 400));
    app.get(
      "/hono",
      upgradeWebSocket(() => ({
        onMessage: (event, ws) => ws.send(`hono:${event.data}`),
      })),
    );
    const server = serveFetch((request, srv) => app.fetch(request, srv), websocket);
    const base = `127.0.0.1:${server.port}`;
    assert.equal(await (await fetch(`http://${base}/`)).text(), "hono");
    const plain = await fetch(`http://${base}/getty`);
    assert.equal(plain.status, 400);
    assert.equal(await plain.text(), "no upgrade: fell through");
    assert.equal(await roundTrip(`ws://${base}/getty`, "x", ["v1"]), "echo:x");
    // the getty session has what hono's context lacks
    const client = new WsClient<Msg>({ url: `ws://${base}/getty`, protocols: ["v1"] });
    await client.runEventLoop(() => {});
    await waitFor(() => getty.sessionCount === 1);
    const [s] = getty.sessions;
    const conn = wsConnection(s)!;
    assert.equal(conn.protocol, "v1");
    assert.equal(typeof conn.bufferedAmount, "number");
    assert.equal(conn.canPing, current === "bun");
    assert.equal(s.isWritable(), true);
    await client.close();
    // hono's own route in the same server
    const ws = await openWebSocket(`ws://${base}/hono`);
    ws.send("y");
    assert.equal(await nextMessage(ws), "hono:y");
    ws.close();
    const refused = rawRequest(server.port, "GET", "/getty", upgradeHeaders({ "sec-websocket-protocol": "v9" }));
    assert.equal((await refused.head).status, 400);
    refused.socket.destroy();
    await getty.close();
    await server.close();
  });
});

describe(`ws on ${current}: Bun's shared websocket table`, { timeout: 60_000 }, () => {
  after(assertNoLeaks);

  it("coexists with hono and with foreign upgrades whatever their ws.data (Bun only)", async (t) => {
    if (current !== "bun") return t.skip("Bun only: Deno has no shared table");
    const upgradeWebSocket = await honoUpgrade();
    const getty = new WsHandler<Msg>(echo);
    const app = new Hono();
    app.get("/getty", upgradeSession(getty));
    app.get("/hono", upgradeWebSocket(() => ({ onMessage: (event, ws) => ws.send(`hono:${event.data}`) })));
    const foreignData: unknown[] = [undefined, null, 42, { events: null }, { some: "thing" }];
    let next = 0;
    const server = serveFetch((request, srv) => {
      if (new URL(request.url).pathname === "/foreign") {
        (srv as Bun.Server<unknown>).upgrade(request, { data: foreignData[next++ % foreignData.length] });
        return undefined;
      }
      return app.fetch(request, srv);
    }, websocket);
    const base = `127.0.0.1:${server.port}`;
    for (let i = 0; i < foreignData.length; i++) {
      const ws = await openWebSocket(`ws://${base}/foreign`).catch(() => undefined);
      if (ws) {
        ws.send("anyone?");
        const ev = await closeEventOf(ws);
        assert.equal(ev.code, 1011, `foreign data ${JSON.stringify(foreignData[i])} closed, not crashed`);
      }
    }
    assert.equal(await roundTrip(`ws://${base}/getty`, "after foreign"), "echo:after foreign");
    const ws = await openWebSocket(`ws://${base}/hono`);
    ws.send("z");
    assert.equal(await nextMessage(ws), "hono:z");
    ws.close();
    await getty.close();
    await server.close();
  });

  it("an upgraded socket that closes before it opens frees its maxConnections slot; one that opens gets a session (Bun only)", async (t) => {
    if (current !== "bun") return t.skip("Bun only: Deno has no shared table");
    // Bun calls open right after the handshake on a real socket, so the close-before-open order is driven through
    // the table itself, with a server whose upgrade only records the socket's `data`.
    const table = bunWebSocket();
    const sockets: BunServerWebSocketLike[] = [];
    const sent: unknown[] = [];
    const server = {
      upgrade(_request: Request, options: { data: unknown }): boolean {
        const socket = {
          data: options.data,
          readyState: 1,
          binaryType: "",
          send: (m: unknown) => (sent.push(m), 1),
          getBufferedAmount: () => 0,
          ping() {},
          pause() {},
          resume() {},
          // As Bun does, the table hears of the close afterwards.
          close: (code?: number, reason?: string) =>
            queueMicrotask(() => table.close(socket, code ?? 1005, reason ?? "")),
        };
        sockets.push(socket);
        return true;
      },
      requestIP: () => ({ address: "127.0.0.1", port: 1, family: "IPv4" }),
    };
    const opened: Session<Msg>[] = [];
    const handler = new WsHandler<Msg>((s) => {
      opened.push(s);
      echo(s);
    }, { maxConnections: 1 });
    const upgrade = () => handler.fetch(new Request("http://x/ws", { headers: upgradeHeaders({}) }), server);
    assert.equal((await upgrade()).status, 200);
    assert.equal((await upgrade()).status, 503, "the pending upgrade holds the only slot");
    table.close(sockets[0], 1006, "");
    assert.equal((await upgrade()).status, 200, "closed before open: its slot is free again");
    table.open(sockets[1]);
    await waitFor(() => opened.length === 1);
    table.message(sockets[1], "x");
    await waitFor(() => sent.length === 1);
    assert.equal(sent[0], "echo:x");
    assert.equal((await upgrade()).status, 503, "the open session holds the slot");
    table.open(sockets[0]); // a late open of the aborted socket does nothing
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(opened.length, 1);
    await handler.close();
  });
});
