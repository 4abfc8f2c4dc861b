// WebSocket flow control, heartbeats and the client pool, on whichever runtime runs the suite.
import assert from "node:assert/strict";
import type net from "node:net";
import { after, describe, it } from "node:test";
import {
  type CloseInfo,
  ConnectError,
  type Session,
  SessionBlockedError,
  WsClient,
  wsConnection,
  WsServer,
  type WsServerOptions,
} from "../mod.ts";
import { assertNoLeaks, sleep, waitFor } from "./helpers/util.ts";
import { current } from "./helpers/runtimes.ts";
import { rawRequest, rawWsServer, upgradeHeaders } from "./helpers/ws.ts";

type Msg = string | Uint8Array;
const CHUNK = 64 * 1024;
const LIMITS = { highWaterMark: 256 * 1024, lowWaterMark: 64 * 1024, outboundCap: 8 << 20 };

async function echoServer(options: WsServerOptions = {}) {
  const server = new WsServer<Msg>({ port: 0, ...options });
  await server.runEventLoop((s) => s.setEventListener({ onMessage: (s, m) => void s.writePkg(m).catch(() => {}) }));
  return server;
}

/**
 * Writes 64 KiB messages one per tick until the session turns unwritable, then up to the hard cap; checks the
 * cap refuses the next one. Returns the pending writes.
 */
async function fillUntilBlocked(session: Session<Msg>): Promise<Promise<unknown>[]> {
  const writes: Promise<unknown>[] = [];
  while (session.isWritable() && writes.length < 4096) {
    writes.push(session.writePkg(new Uint8Array(CHUNK).fill(writes.length & 0xff)));
    await sleep(1);
  }
  assert.equal(session.isWritable(), false, `unwritable after ${writes.length} × 64 KiB`);
  assert.ok(writes.length < 4096, "the runtime stopped taking messages");
  while (session.pendingBytes + CHUNK <= LIMITS.outboundCap) writes.push(session.writePkg(new Uint8Array(CHUNK)));
  await assert.rejects(session.writePkg(new Uint8Array(CHUNK)), SessionBlockedError);
  return writes;
}

describe(`ws on ${current}: backpressure`, { timeout: 60_000 }, () => {
  after(assertNoLeaks);

  it("server side: a peer that stops reading makes the session unwritable, then blocked at the cap", async () => {
    let session: Session<Msg> | undefined;
    const changes: boolean[] = [];
    const server = new WsServer<Msg>({ port: 0, session: LIMITS });
    await server.runEventLoop((s) => {
      session = s;
      s.setEventListener({ onWritabilityChange: (_s, w) => void changes.push(w) });
    });
    const peer = rawRequest(server.port, "GET", "/ws", upgradeHeaders(), { pauseAfterHead: true });
    assert.equal((await peer.head).status, 101);
    await waitFor(() => session !== undefined);
    const writes = await fillUntilBlocked(session!);
    assert.deepEqual(changes, [false]);
    assert.ok(wsConnection(session!)!.bufferedAmount >= 0);
    peer.socket.resume();
    await Promise.all(writes);
    await waitFor(() => session!.isWritable());
    assert.deepEqual(changes, [false, true]);
    await waitFor(() => peer.frames.length === writes.length, 20_000, "every message reached the peer");
    assert.ok(peer.frames.every(([op, p]) => op === 2 && p.length === CHUNK));
    assert.equal(peer.frames[1][1][0], 1, "in order");
    peer.socket.destroy();
    await server.close();
  });

  it("client side: a server that stops reading makes the client session unwritable, then blocked", async () => {
    let stalled: net.Socket | undefined;
    const raw = await rawWsServer((socket) => {
      stalled = socket;
      socket.pause();
    });
    const changes: boolean[] = [];
    const client = new WsClient<Msg>({ url: `ws://127.0.0.1:${raw.port}/`, session: LIMITS, reconnectAttempts: 0 });
    await client.runEventLoop((s) => s.setEventListener({ onWritabilityChange: (_s, w) => void changes.push(w) }));
    await waitFor(() => stalled !== undefined);
    const session = client.sessions[0];
    const writes = await fillUntilBlocked(session);
    let got = 0;
    stalled!.on("data", (d: Uint8Array) => void (got += d.length));
    stalled!.resume();
    await Promise.all(writes);
    await waitFor(() => session.isWritable());
    assert.deepEqual(changes, [false, true]);
    await waitFor(() => got >= writes.length * CHUNK, 20_000, "every byte reached the server");
    await client.close();
    await raw.close();
  });

  it("a lagging handler holds messages in order; on Bun the peer also feels it (the session stops reading)", async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const seen: number[] = [];
    const server = new WsServer<Msg>({ port: 0, session: { inboundQueueLimit: 2, maxMsgLen: 1 << 20 } });
    await server.runEventLoop((s) => {
      s.setEventListener({
        onMessage: async (_s, m) => {
          await held;
          seen.push((m as Uint8Array)[0]);
        },
      });
    });
    const client = new WsClient<Msg>({ url: server.url!, session: LIMITS });
    await client.runEventLoop(() => {});
    const session = client.sessions[0];
    const writes: Promise<unknown>[] = [];
    for (let i = 0; i < 200 && session.isWritable(); i++) {
      writes.push(session.writePkg(new Uint8Array(CHUNK).fill(i)));
      await sleep(1);
    }
    const n = writes.length;
    if (current === "bun") assert.equal(session.isWritable(), false, `Bun's server paused reading (${n} sent)`);
    release();
    await Promise.all(writes);
    await waitFor(() => seen.length === n, 20_000);
    assert.deepEqual(seen, Array.from({ length: n }, (_, i) => i & 0xff));
    await client.close();
    await server.close();
  });
});

describe(`ws on ${current}: heartbeats`, { timeout: 60_000 }, () => {
  after(assertNoLeaks);

  it("the application-level heartbeat updates getActive on both sides and never reaches onMessage", async () => {
    const serverMessages: Msg[] = [];
    let serverSession: Session<Msg> | undefined;
    const server = new WsServer<Msg>({ port: 0, appHeartbeat: true, session: { cronPeriod: 40 } });
    await server.runEventLoop((s) => {
      serverSession = s;
      s.setEventListener({ onMessage: (_s, m) => void serverMessages.push(m) });
    });
    const clientMessages: Msg[] = [];
    const client = new WsClient<Msg>({ url: server.url!, appHeartbeat: true, session: { cronPeriod: 40 } });
    await client.runEventLoop((s) => s.setEventListener({ onMessage: (_s, m) => void clientMessages.push(m) }));
    await waitFor(() => serverSession !== undefined);
    const conn = wsConnection(client.sessions[0])!;
    assert.equal(conn.canPing, true);
    const t0 = Date.now();
    await sleep(250);
    assert.ok(serverSession!.getActive() >= t0, "server saw heartbeats");
    assert.ok(client.sessions[0].getActive() >= t0, "client saw answers");
    assert.deepEqual(serverMessages, []);
    assert.deepEqual(clientMessages, []);
    assert.equal(serverSession!.stat().readPkgs, 0);
    await client.sessions[0].writePkg("real message");
    await waitFor(() => serverMessages.length === 1);
    assert.deepEqual(serverMessages, ["real message"]);
    await client.close();
    await server.close();
  });

  it(`ping frames where the runtime has them (${current === "bun" ? "Bun: yes" : "Deno: no"})`, async () => {
    let serverSession: Session<Msg> | undefined;
    const server = new WsServer<Msg>({ port: 0 });
    await server.runEventLoop((s) => void (serverSession = s));
    const client = new WsClient<Msg>({ url: server.url! });
    await client.runEventLoop(() => {});
    await waitFor(() => serverSession !== undefined);
    const serverConn = wsConnection(serverSession!)!;
    const clientConn = wsConnection(client.sessions[0])!;
    const pings = current === "bun";
    assert.equal(serverConn.canPing, pings);
    assert.equal(clientConn.canPing, pings);
    await sleep(20);
    const before = Date.now();
    assert.equal(serverConn.ping(), pings);
    assert.equal(clientConn.ping(), pings);
    if (pings) {
      await waitFor(() => serverSession!.getActive() >= before && client.sessions[0].getActive() >= before);
    }
    await client.close();
    await server.close();
  });

  it("an idle timeout reads the same on both runtimes: 1001 'idle timeout' with a ConnectionError", {
    timeout: 30_000,
  }, async () => {
    const closes: CloseInfo[] = [];
    // Deno takes whole seconds; Bun's minimum is 8 s.
    const server = new WsServer<Msg>({ port: 0, idleTimeout: current === "bun" ? 8_000 : 1_000 });
    await server.runEventLoop((s) => s.setEventListener({ onClose: (_s, i) => void closes.push(i) }));
    const peer = rawRequest(server.port, "GET", "/ws", upgradeHeaders()); // never answers a ping
    assert.equal((await peer.head).status, 101);
    await waitFor(() => closes.length === 1, 15_000, "idle close");
    assert.equal(closes[0].initiator, "error");
    assert.equal(closes[0].code, 1001);
    assert.equal(closes[0].reason, "idle timeout");
    assert.equal(closes[0].error?.code, "ERR_CONNECTION");
    assert.match(closes[0].error!.message, /idle/);
    await sleep(50); // Deno's second close event must not reach the session
    assert.equal(closes.length, 1);
    peer.socket.destroy();
    await server.close();
  });
});

describe(`ws on ${current}: client pool and reconnect`, { timeout: 60_000 }, () => {
  after(assertNoLeaks);

  it("refills the pool after a session is lost", async () => {
    const server = await echoServer();
    const client = new WsClient<Msg>({ url: server.url!, connectionNumber: 3, reconnectInterval: 20 });
    await client.runEventLoop(() => {});
    assert.equal(client.sessions.length, 3);
    await waitFor(() => server.sessionCount === 3);
    await [...server.sessions][0].close();
    await waitFor(() => client.sessions.length === 3 && client.stats().connects === 4, 5_000, "pool refill");
    await client.close();
    await server.close();
  });

  it("survives a server restart on the same port", async () => {
    let server = await echoServer();
    const port = server.port;
    const got: Msg[] = [];
    const client = new WsClient<Msg>({ url: server.url!, connectionNumber: 2, reconnectInterval: 30 });
    await client.runEventLoop((s) => s.setEventListener({ onMessage: (_s, m) => void got.push(m) }));
    await server.close();
    await waitFor(() => client.sessions.length === 0, 3_000, "sessions to drop");
    server = await echoServer({ port });
    await waitFor(() => client.sessions.length === 2, 10_000, "pool to reconnect");
    await client.sessions[0].writePkg("back");
    await waitFor(() => got.includes("back"));
    await client.close();
    await server.close();
  });

  it("gives up after reconnectAttempts consecutive failures and never reconnects after close()", async () => {
    const server = await echoServer();
    let gaveUp: ConnectError | undefined;
    const client = new WsClient<Msg>({
      url: server.url!,
      reconnectInterval: 10,
      reconnectAttempts: 3,
      onGiveUp: (e) => void (gaveUp = e),
    });
    await client.runEventLoop(() => {});
    await server.close();
    await waitFor(() => gaveUp !== undefined, 5_000, "give up");
    assert.ok(gaveUp instanceof ConnectError);
    assert.match(gaveUp.message, /gave up after 3 consecutive/);
    assert.ok(gaveUp.message.includes(server.url!));
    assert.ok(client.isClosed());
  });
});
