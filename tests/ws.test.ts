// WebSocket servers and clients on real loopback sockets, on whichever runtime runs the suite.
import assert from "node:assert/strict";
import net from "node:net";
import { after, describe, it } from "node:test";
import {
  bunWebSocket,
  type CloseInfo,
  type Codec,
  CodecError,
  ConnectError,
  ConnectionError,
  createMemorySessionPair,
  EndPointType,
  InvalidOptionError,
  MessageTooLongError,
  type Session,
  WsClient,
  type WsClientOptions,
  wsConnection,
  WsHandler,
  WsServer,
  type WsServerOptions,
} from "../mod.ts";
import { assertNoLeaks, bytes, pattern, sleep, text, waitFor, within } from "./helpers/util.ts";
import { current } from "./helpers/runtimes.ts";
import { tlsFixtures } from "./helpers/tls.ts";
import { closeEventOf, openWebSocket, rawRequest, upgradeHeaders } from "./helpers/ws.ts";

type Msg = string | Uint8Array;

/** A WsServer echoing every message as it came (text as text, binary as binary). */
async function echoServer(options: WsServerOptions = {}, onClose?: (s: Session<Msg>, info: CloseInfo) => void) {
  const server = new WsServer<Msg>({ port: 0, ...options });
  await server.runEventLoop((s) => {
    s.setEventListener({
      onMessage: (s, m) => void s.writePkg(m).catch(() => {}),
      onClose: onClose,
    });
  });
  return server;
}

/** A WsClient collecting what it receives. */
async function collector(url: string, got: Msg[], extra: Partial<WsClientOptions> = {}) {
  const closes: CloseInfo[] = [];
  const client = new WsClient<Msg>({ url, ...extra });
  await client.runEventLoop((s) => {
    s.setEventListener({
      onMessage: (_s, m) => void got.push(m),
      onClose: (_s, info) => void closes.push(info),
    });
  });
  return { client, closes };
}

describe(`ws on ${current}: echo, framing and limits`, { timeout: 60_000 }, () => {
  after(assertNoLeaks);

  it("echoes text as text and binary as binary, one message per package, with a registry", async () => {
    const server = await echoServer();
    assert.equal(server.endPointType, EndPointType.WS_SERVER);
    assert.equal(server.url, `ws://127.0.0.1:${server.port}/ws`);
    const got: Msg[] = [];
    const { client } = await collector(server.url!, got, { connectionNumber: 2 });
    assert.equal(client.endPointType, EndPointType.WS_CLIENT);
    assert.equal(client.sessions.length, 2);
    await waitFor(() => server.sessionCount === 2);
    const [s] = client.sessions;
    assert.equal(s.name, "ws-session");
    assert.equal(s.remoteAddr, `127.0.0.1:${server.port}`);
    const sent: Msg[] = ["hello", bytes("bin"), "", new Uint8Array(0), "ünïcödé ✓", pattern(70_000, 1)];
    for (const m of sent) void s.writePkg(m);
    await waitFor(() => got.length === sent.length);
    assert.deepEqual(got, sent);
    assert.equal(typeof got[0], "string");
    assert.ok(got[1] instanceof Uint8Array);
    assert.equal(s.stat().writePkgs, sent.length);
    assert.equal(s.stat().readPkgs, sent.length);
    const [ss] = server.sessions;
    assert.equal(ss.name, "ws-session");
    assert.match(ss.remoteAddr, /^127\.0\.0\.1:\d+$/);
    assert.equal(ss.localAddr, `127.0.0.1:${server.port}`);
    assert.equal(ss.endPoint(), server);
    await client.close();
    await waitFor(() => server.sessionCount === 0);
    await server.close();
    assert.ok(server.isClosed());
  });

  it("moves 1 MiB text and binary messages intact both ways", async () => {
    const server = await echoServer({ session: { maxMsgLen: 2 << 20 } });
    const got: Msg[] = [];
    const { client } = await collector(server.url!, got, { session: { maxMsgLen: 2 << 20 } });
    const big = pattern(1 << 20, 5);
    const bigText = "x".repeat(1 << 20);
    await client.sessions[0].writePkg(big);
    await client.sessions[0].writePkg(bigText);
    await waitFor(() => got.length === 2, 10_000);
    assert.deepEqual(got[0], big);
    assert.equal(got[1], bigText);
    await client.close();
    await server.close();
  });

  it("wss: serves TLS with the fixture certificate; the client trusts the test CA and refuses another", async () => {
    const { cert, key, ca, otherCa } = tlsFixtures();
    const server = await echoServer({ tls: { cert, key } });
    assert.equal(server.endPointType, EndPointType.WSS_SERVER);
    assert.equal(server.url, `wss://127.0.0.1:${server.port}/ws`);
    const got: Msg[] = [];
    for (const host of ["127.0.0.1", "localhost"]) {
      const { client } = await collector(`wss://${host}:${server.port}/ws`, got, { tls: { caCerts: [ca] } });
      assert.equal(client.endPointType, EndPointType.WSS_CLIENT);
      assert.equal(client.sessions[0].name, "wss-session");
      await client.sessions[0].writePkg(`over tls to ${host}`);
      await client.sessions[0].writePkg(pattern(100_000, 2));
      await waitFor(() => got.length === 2);
      assert.deepEqual(got.splice(0), [`over tls to ${host}`, pattern(100_000, 2)]);
      await client.close();
    }
    const untrusted = new WsClient<Msg>({ url: server.url!, tls: { caCerts: [otherCa] }, connectTimeout: 5_000 });
    await assert.rejects(untrusted.runEventLoop(() => {}), (e: unknown) => {
      assert.ok(e instanceof ConnectError);
      assert.match(e.message, /wss:\/\/127\.0\.0\.1:\d+\/ws/);
      return true;
    });
    const noCa = new WsClient<Msg>({ url: server.url!, reconnectAttempts: 0 });
    await assert.rejects(noCa.runEventLoop(() => {}), ConnectError);
    await server.close();
  });

  it("answers malformed or non-WebSocket requests with a 4xx and keeps serving", async () => {
    const server = await echoServer();
    const port = server.port;
    const cases: Array<[string, string, Record<string, string>, number]> = [
      ["GET", "/ws", { host: "x" }, 426], // plain GET
      ["POST", "/ws", { host: "x", "content-length": "0" }, 405],
      ["PUT", "/ws", upgradeHeaders({ "content-length": "0" }), 0], // a 4xx, from us or the runtime's HTTP layer
      ["GET", "/ws", upgradeHeaders({ connection: "keep-alive" }), 400],
      ["GET", "/ws", upgradeHeaders({ "sec-websocket-key": "short" }), 400],
      ["GET", "/ws", upgradeHeaders({ "sec-websocket-version": "8" }), 426],
      ["GET", "/elsewhere", upgradeHeaders(), 404],
    ];
    for (const [method, path, headers, status] of cases) {
      const peer = rawRequest(port, method, path, headers);
      const head = await within(peer.head, 3_000, `${method} ${path}`);
      if (status === 0) assert.ok(head.status >= 400 && head.status < 500, `${method}: ${head.status}`);
      else assert.equal(head.status, status, `${method} ${path} ${JSON.stringify(headers)}`);
      if (status === 405) assert.equal(head.headers.allow, "GET");
      if (status === 426 && headers["sec-websocket-version"] === "8") {
        assert.equal(head.headers["sec-websocket-version"], "13");
      }
      peer.socket.destroy();
    }
    // garbage that is not HTTP at all
    const junk = rawRequest(port, "\x00\x01garbage", "", {});
    await junk.closed.catch(() => {});
    junk.socket.destroy();
    assert.equal(server.sessionCount, 0);
    const got: Msg[] = [];
    const { client } = await collector(server.url!, got);
    await client.sessions[0].writePkg("still serving");
    await waitFor(() => got.length === 1);
    await client.close();
    await server.close();
  });

  it("closes with 1009 a message over maxMsgLen; the peer sees 1009 and the server a MessageTooLongError", async () => {
    const serverCloses: CloseInfo[] = [];
    const server = await echoServer({ session: { maxMsgLen: 1000 } }, (_s, info) => void serverCloses.push(info));
    const got: Msg[] = [];
    const { client, closes } = await collector(server.url!, got, { reconnectAttempts: 0 });
    await client.sessions[0].writePkg(new Uint8Array(1000)); // exactly the limit passes
    await waitFor(() => got.length === 1);
    void client.sessions[0].writePkg(new Uint8Array(1001)).catch(() => {});
    await waitFor(() => closes.length === 1 && serverCloses.length === 1, 5_000, "both sides closed");
    assert.deepEqual({ ...closes[0] }, { initiator: "peer", code: 1009, reason: "message too big" });
    assert.equal(serverCloses[0].initiator, "error");
    assert.equal(serverCloses[0].code, 1009);
    assert.equal(serverCloses[0].reason, "message too big");
    assert.ok(serverCloses[0].error instanceof MessageTooLongError, String(serverCloses[0].error));
    await client.close();
    await server.close();
  });

  it("a text message over the limit closes with 1009 too", async () => {
    const serverCloses: CloseInfo[] = [];
    const server = await echoServer({ session: { maxMsgLen: 100 } }, (_s, info) => void serverCloses.push(info));
    const { client, closes } = await collector(server.url!, [], { reconnectAttempts: 0 });
    void client.sessions[0].writePkg("y".repeat(101)).catch(() => {});
    await waitFor(() => closes.length === 1 && serverCloses.length === 1);
    assert.equal(closes[0].code, 1009);
    assert.equal(serverCloses[0].code, 1009);
    await client.close();
    await server.close();
  });

  it("a JSON codec on top: the writer's string is a text message; undecodable input closes with 1007", async () => {
    type Obj = { n: number };
    const json: Codec<Obj> = {
      read: (_s, data) => ({ pkg: JSON.parse(text(data)) as Obj, length: data.length }),
      write: (_s, m) => JSON.stringify(m),
    };
    const serverCloses: CloseInfo[] = [];
    const server = new WsServer<Obj>({ port: 0 });
    await server.runEventLoop((s) => {
      s.setPkgHandler(json);
      s.setEventListener({
        onMessage: (s, m) => void s.writePkg({ n: m.n * 2 }),
        onClose: (_s, i) => void serverCloses.push(i),
      });
    });
    const raw: Msg[] = [];
    const { client, closes } = await collector(server.url!, raw, { reconnectAttempts: 0 });
    await client.sessions[0].writePkg('{"n":21}');
    await waitFor(() => raw.length === 1);
    assert.equal(raw[0], '{"n":42}', "a text message");
    void client.sessions[0].writePkg("not json").catch(() => {});
    await waitFor(() => closes.length === 1);
    assert.equal(closes[0].code, 1007);
    assert.ok(serverCloses[0].error instanceof CodecError);
    await client.close();
    await server.close();
  });
});

describe(`ws on ${current}: upgrade control`, { timeout: 60_000 }, () => {
  after(assertNoLeaks);

  it("refuses a disallowed Origin with 403; allows listed origins and requests without Origin", async () => {
    const server = await echoServer({ origins: ["https://app.example.com", "http://localhost:8080"] });
    const refused = rawRequest(server.port, "GET", "/ws", upgradeHeaders({ origin: "https://evil.example" }));
    assert.equal((await refused.head).status, 403);
    refused.socket.destroy();
    for (const origin of ["https://APP.example.com:443", "http://localhost:8080", undefined]) {
      const got: Msg[] = [];
      const { client } = await collector(server.url!, got, origin ? { headers: { origin } } : {});
      await client.sessions[0].writePkg("ok");
      await waitFor(() => got.length === 1);
      await client.close();
    }
    const evil = new WsClient<Msg>({ url: server.url!, headers: { origin: "https://evil.example" } });
    await assert.rejects(evil.runEventLoop(() => {}), (e: unknown) => {
      assert.ok(e instanceof ConnectError);
      assert.match(e.message, /403/);
      return true;
    });
    assert.equal(server.stats().refused, 2);
    await server.close();
  });

  it("selects the subprotocol by the server's preference; refuses a client offering none it speaks", async () => {
    const seen: string[] = [];
    const server = new WsServer<Msg>({ port: 0, protocols: ["chat.v2", "chat.v1"] });
    await server.runEventLoop((s) => void seen.push(wsConnection(s)!.protocol));
    const client = new WsClient<Msg>({ url: server.url!, protocols: ["chat.v1", "chat.v2"] });
    await client.runEventLoop(() => {});
    assert.equal(wsConnection(client.sessions[0])!.protocol, "chat.v2");
    await waitFor(() => seen.length === 1);
    assert.deepEqual(seen, ["chat.v2"]);
    const none = new WsClient<Msg>({ url: server.url!, protocols: ["chat.v3"] });
    await assert.rejects(none.runEventLoop(() => {}), /400/);
    const plain = new WsClient<Msg>({ url: server.url! }); // offers nothing: accepted without a subprotocol
    await plain.runEventLoop(() => {});
    assert.equal(wsConnection(plain.sessions[0])!.protocol, "");
    await Promise.all([client.close(), plain.close()]);
    await server.close();

    // Without a server list, the client's first offer is selected on both runtimes.
    const any = await echoServer();
    const c2 = new WsClient<Msg>({ url: any.url!, protocols: ["b", "a"] });
    await c2.runEventLoop(() => {});
    assert.equal(wsConnection(c2.sessions[0])!.protocol, "b");
    await waitFor(() => any.sessionCount === 1);
    assert.equal(wsConnection([...any.sessions][0])!.protocol, "b");
    await c2.close();
    await any.close();
  });

  it("onUpgrade sees headers, cookies and URL before any session, refuses with its status, attaches context", async () => {
    const infos: Array<{ path: string; token: string | null; cookie: string | null; remote: string }> = [];
    const contexts: unknown[] = [];
    const server = new WsServer<Msg>({
      port: 0,
      path: "/chat",
      onUpgrade: async (request, info) => {
        await sleep(1);
        infos.push({
          path: info.url.pathname + info.url.search,
          token: request.headers.get("authorization"),
          cookie: request.headers.get("cookie"),
          remote: info.remoteAddr,
        });
        if (request.headers.get("authorization") !== "Bearer good") {
          return new Response("who are you?", { status: 401 });
        }
        if (info.url.searchParams.get("room") === "closed") return false;
        return { context: { user: "ann" }, headers: { "x-getty": "yes" } };
      },
    });
    let sessions = 0;
    await server.runEventLoop((s) => {
      sessions++;
      contexts.push(wsConnection(s)!.context);
      assert.equal(wsConnection(s)!.headers?.get("cookie"), "sid=42");
    });
    const bad = new WsClient<Msg>({ url: `${server.url}?room=a`, headers: { authorization: "Bearer bad" } });
    await assert.rejects(bad.runEventLoop(() => {}), /401/);
    const closed = new WsClient<Msg>({
      url: `${server.url}?room=closed`,
      headers: { authorization: "Bearer good", cookie: "sid=42" },
    });
    await assert.rejects(closed.runEventLoop(() => {}), /403/);
    assert.equal(sessions, 0, "no session exists for a refused upgrade");
    const good = new WsClient<Msg>({
      url: `${server.url}?room=a`,
      headers: { authorization: "Bearer good", cookie: "sid=42" },
    });
    await good.runEventLoop(() => {});
    await waitFor(() => sessions === 1);
    assert.deepEqual(contexts, [{ user: "ann" }]);
    assert.equal(infos.length, 3);
    assert.equal(infos[2].path, "/chat?room=a");
    assert.match(infos[2].remote, /^127\.0\.0\.1:\d+$/);
    assert.equal(server.stats().refused, 2);
    await good.close();
    await server.close();
  });

  it("refuses upgrades beyond maxConnections with 503", async () => {
    const server = await echoServer({ maxConnections: 2 });
    const { client } = await collector(server.url!, [], { connectionNumber: 2 });
    await waitFor(() => server.sessionCount === 2);
    const third = new WsClient<Msg>({ url: server.url! });
    await assert.rejects(third.runEventLoop(() => {}), /503/);
    await client.close();
    await waitFor(() => server.sessionCount === 0);
    const again = new WsClient<Msg>({ url: server.url! });
    await again.runEventLoop(() => {});
    await again.close();
    await server.close();
  });

  it("validates options and names the option", () => {
    const bad: Array<[() => unknown, string]> = [
      [() => new WsServer({ path: "ws" }), "WsServer.path"],
      [() => new WsServer({ protocols: ["a b"] }), "WsServer.protocols[0]"],
      [() => new WsServer({ idleTimeout: -1 }), "WsServer.idleTimeout"],
      [() => new WsServer({ appHeartbeat: { ping: "x", pong: "x" } }), "WsServer.appHeartbeat.pong"],
      [() => new WsServer({ origins: [""] }), "WsServer.origins[0]"],
      [() => new WsServer({ maxConnections: 0 }), "WsServer.maxConnections"],
      [() => new WsServer({ session: { maxMsgLen: 0 } }), "WsServer.session.maxMsgLen"],
      [() => new WsServer({ prot: [] } as WsServerOptions), "WsServer.prot"],
      [() => new WsClient({ url: "http://x/" }), "WsClient.url"],
      [() => new WsClient({ url: "ws://x/", tls: {} }), "WsClient.tls"],
      [() => new WsClient({ url: "wss://x/", tls: { caCerts: ["nope"] } }), "WsClient.tls.caCerts[0]"],
      [() => new WsClient({ url: "ws://x/", connectionNumber: 0 }), "WsClient.connectionNumber"],
      [() => new WsClient({ url: "ws://x/", reconnectInterval: -5 }), "WsClient.reconnectInterval"],
      [() => new WsClient({ url: "ws://x/", session: { waitTime: -1 } }), "WsClient.session.waitTime"],
      [() => new WsClient({ url: "ws://x/", headers: { a: 1 as unknown as string } }), "WsClient.headers.a"],
      [() => new WsHandler(() => {}, { origins: "*" as unknown as string[] }), "WsHandler.origins"],
      [() => new WsHandler(() => {}, { idleTimeout: 1_000_000 }), "WsHandler.idleTimeout"],
      [() => bunWebSocket({ maxPayloadLength: -1 }), "bunWebSocket.maxPayloadLength"],
      [() => bunWebSocket({ sendPings: 1 as unknown as boolean }), "bunWebSocket.sendPings"],
    ];
    for (const [make, option] of bad) {
      assert.throws(make, (e: unknown) => {
        assert.ok(e instanceof InvalidOptionError, String(e));
        assert.equal(e.option, option);
        assert.match(e.message, new RegExp(option.replace(/[.[\]]/g, "\\$&")));
        return true;
      });
    }
  });
});

describe(`ws on ${current}: close codes`, { timeout: 60_000 }, () => {
  after(assertNoLeaks);

  it("a normal close reads 1000 on both sides, initiated locally on one and by the peer on the other", async () => {
    const serverCloses: CloseInfo[] = [];
    const server = await echoServer({}, (_s, i) => void serverCloses.push(i));
    const { client, closes } = await collector(server.url!, [], { reconnectAttempts: 0 });
    const mine = await client.sessions[0].close();
    assert.deepEqual({ ...mine }, { initiator: "local", code: 1000, reason: "" });
    await waitFor(() => serverCloses.length === 1);
    assert.deepEqual({ ...serverCloses[0] }, { initiator: "peer", code: 1000, reason: "" });
    assert.equal(closes.length, 1);
    await client.close();

    const c2 = await collector(server.url!, [], { reconnectAttempts: 0 });
    await waitFor(() => server.sessionCount === 1);
    await [...server.sessions][0].close();
    await waitFor(() => c2.closes.length === 1);
    assert.deepEqual({ ...c2.closes[0] }, { initiator: "peer", code: 1000, reason: "" });
    await c2.client.close();
    await server.close();
  });

  it("a peer's own code and reason reach onClose as sent", async () => {
    const serverCloses: CloseInfo[] = [];
    const server = await echoServer({}, (_s, i) => void serverCloses.push(i));
    const ws = await openWebSocket(server.url!);
    ws.close(4321, "bye now");
    await waitFor(() => serverCloses.length === 1);
    assert.deepEqual({ ...serverCloses[0] }, { initiator: "peer", code: 4321, reason: "bye now" });
    const ws2 = await openWebSocket(server.url!);
    ws2.close();
    await waitFor(() => serverCloses.length === 2);
    assert.deepEqual({ ...serverCloses[1] }, { initiator: "peer", code: 1005, reason: "" });
    await server.close();
  });

  it("a connection lost without a close frame reads 1006 with a ConnectionError on both runtimes", async () => {
    const serverCloses: CloseInfo[] = [];
    const server = await echoServer({}, (_s, i) => void serverCloses.push(i));
    const peer = rawRequest(server.port, "GET", "/ws", upgradeHeaders());
    assert.equal((await peer.head).status, 101);
    await waitFor(() => server.sessionCount === 1);
    peer.socket.destroy();
    await waitFor(() => serverCloses.length === 1);
    const info = serverCloses[0];
    assert.equal(info.initiator, "error");
    assert.equal(info.code, 1006);
    assert.equal(info.reason, "");
    assert.ok(info.error instanceof ConnectionError);
    await server.close();
  });

  it("the server's close() reaches clients as 1000 after flushing queued messages", async () => {
    const big = pattern(2 << 20, 9);
    const server = new WsServer<Msg>({ port: 0, session: { maxMsgLen: 4 << 20 } });
    await server.runEventLoop((s) => {
      s.setEventListener({ onOpen: (s) => void s.writePkg(big).catch(() => {}) });
    });
    const got: Msg[] = [];
    const { client, closes } = await collector(server.url!, got, {
      reconnectAttempts: 0,
      session: { maxMsgLen: 4 << 20 },
    });
    await server.close();
    await waitFor(() => closes.length === 1, 10_000);
    assert.deepEqual(got, [big]);
    assert.deepEqual({ ...closes[0] }, { initiator: "peer", code: 1000, reason: "" });
    await client.close();
  });

  it("a failed connect is a ConnectError naming the URL and the cause", async () => {
    const server = await echoServer();
    const url = server.url!;
    await server.close();
    const client = new WsClient<Msg>({ url });
    await assert.rejects(client.runEventLoop(() => {}), (e: unknown) => {
      assert.ok(e instanceof ConnectError);
      assert.equal(e.code, "ERR_CONNECT");
      assert.ok(e.message.includes(url), e.message);
      assert.match(e.message, /\(1006\)/);
      return true;
    });
    assert.ok(client.isClosed());
  });

  it("a client over its own maxMsgLen closes with 1009 (Deno's client API can only send it as 4009)", async () => {
    const serverCloses: CloseInfo[] = [];
    const server = new WsServer<Msg>({ port: 0 });
    await server.runEventLoop((s) => {
      s.setEventListener({
        onOpen: (s) => void s.writePkg(new Uint8Array(2000)),
        onClose: (_s, i) => void serverCloses.push(i),
      });
    });
    const { client, closes } = await collector(server.url!, [], { reconnectAttempts: 0, session: { maxMsgLen: 1000 } });
    await waitFor(() => closes.length === 1 && serverCloses.length === 1);
    assert.equal(closes[0].code, 1009, "the client's own view");
    assert.ok(closes[0].error instanceof MessageTooLongError);
    assert.deepEqual({ ...serverCloses[0] }, {
      initiator: "peer",
      code: current === "deno" ? 4009 : 1009,
      reason: "message too big",
    });
    await client.close();
    await server.close();
  });

  it("a handshake that never completes fails after connectTimeout", async () => {
    const sockets: net.Socket[] = [];
    const silent = net.createServer((socket) => void sockets.push(socket)); // accepts, never answers
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const port = (silent.address() as net.AddressInfo).port;
    const client = new WsClient<Msg>({ url: `ws://127.0.0.1:${port}/`, connectTimeout: 200 });
    const started = Date.now();
    await assert.rejects(client.runEventLoop(() => {}), (e: unknown) => {
      assert.ok(e instanceof ConnectError);
      assert.match(e.message, /timed out after 200 ms/);
      return true;
    });
    assert.ok(Date.now() - started < 2_000);
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => silent.close(resolve));
  });

  it("wsConnection is undefined for a session that is not a WebSocket", async () => {
    const [a, b] = await createMemorySessionPair<Uint8Array>();
    assert.equal(wsConnection(a), undefined);
    await a.close();
    await b.closed;
  });

  it("a raw WebSocket sees a close frame from the session's close", async () => {
    const server = await echoServer();
    const ws = await openWebSocket(server.url!);
    await waitFor(() => server.sessionCount === 1);
    const closing = closeEventOf(ws);
    await [...server.sessions][0].close();
    assert.deepEqual(await closing, { code: 1000, reason: "" });
    await server.close();
  });
});
