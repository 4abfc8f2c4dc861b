// TCP server and client on real loopback sockets, on whichever runtime runs the suite.
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import {
  ConnectError,
  type GettyError,
  LengthFieldCodec,
  MessageTooLongError,
  type Session,
  SessionClosedError,
  TcpClient,
  TcpServer,
} from "../mod.ts";
import { runtimeAdapter } from "../src/runtime/select.ts";
import type { RuntimeAdapter } from "../src/transport.ts";
import { assertNoLeaks, bytes, pattern, sleep, text, waitFor, within } from "./helpers/util.ts";

const codec = new LengthFieldCodec();

async function echoServer(options: ConstructorParameters<typeof TcpServer<Uint8Array>>[0] = {}) {
  const server = new TcpServer<Uint8Array>({ port: 0, ...options });
  await server.runEventLoop((s) => {
    s.setPkgHandler(codec);
    s.setEventListener({ onMessage: (s, pkg) => void s.writePkg(pkg).catch(() => {}) });
  });
  return server;
}

function collectingClient(
  port: number,
  got: string[],
  extra: Partial<ConstructorParameters<typeof TcpClient>[0]> = {},
) {
  const client = new TcpClient<Uint8Array>({ host: "127.0.0.1", port, ...extra });
  const run = client.runEventLoop((s) => {
    s.setPkgHandler(codec);
    s.setEventListener({ onMessage: (_s, p) => void got.push(text(p)) });
  });
  return { client, run };
}

/** Wraps the runtime adapter to count socket writes made by transports it creates. */
async function countingAdapter(): Promise<{ adapter: RuntimeAdapter; writes: () => number }> {
  const real = await runtimeAdapter();
  let writes = 0;
  const adapter: RuntimeAdapter = {
    name: `counting-${real.name}`,
    listenTcp: (o) => real.listenTcp(o),
    connectTcp: async (o) => {
      const t = await real.connectTcp(o);
      const write = t.write.bind(t);
      t.write = (chunk: Uint8Array) => {
        writes++;
        return write(chunk);
      };
      return t;
    },
  };
  return { adapter, writes: () => writes };
}

describe("tcp server and client", () => {
  after(assertNoLeaks);

  it("echoes packages and keeps a registry of live sessions", async () => {
    const server = await echoServer();
    assert.equal(server.endPointType, "TCP_SERVER");
    assert.ok(server.port > 0);
    assert.deepEqual(server.addr, { hostname: "127.0.0.1", port: server.port });
    const got: string[] = [];
    const { client, run } = collectingClient(server.port, got, { connectionNumber: 3 });
    await run;
    assert.equal(client.endPointType, "TCP_CLIENT");
    assert.notEqual(client.id, server.id);
    assert.equal(client.sessions.length, 3);
    await waitFor(() => server.sessionCount === 3);
    assert.equal([...server.sessions].length, 3);
    for (const [i, s] of client.sessions.entries()) await s.writePkg(bytes(`hello ${i}`));
    await waitFor(() => got.length === 3);
    assert.deepEqual(got.sort(), ["hello 0", "hello 1", "hello 2"]);
    const [cs] = client.sessions;
    assert.match(cs.localAddr, /^127\.0\.0\.1:\d+$/);
    assert.equal(cs.remoteAddr, `127.0.0.1:${server.port}`);
    assert.equal(cs.endPoint(), client);
    assert.equal(cs.stat().writePkgs, 1);
    await client.close();
    await waitFor(() => server.sessionCount === 0);
    await server.close();
    assert.ok(server.isClosed());
  });

  it("coalesces everything written in one tick into one socket write", async () => {
    const server = await echoServer();
    const { adapter, writes } = await countingAdapter();
    const got: string[] = [];
    const client = new TcpClient<Uint8Array>({ host: "127.0.0.1", port: server.port, adapter });
    await client.runEventLoop((s) => {
      s.setPkgHandler(codec);
      s.setEventListener({ onMessage: (_s, p) => void got.push(text(p)) });
    });
    const before = writes();
    const all = Array.from({ length: 500 }, (_, i) => client.sessions[0].writePkg(bytes(`p${i}`)));
    await Promise.all(all);
    assert.equal(writes() - before, 1, "500 packages left in one write");
    await waitFor(() => got.length === 500);
    assert.deepEqual(got, Array.from({ length: 500 }, (_, i) => `p${i}`));
    await client.close();
    await server.close();
  });

  it("moves an 8 MiB package intact through partial writes", async () => {
    const server = await echoServer({ session: { maxMsgLen: 16 << 20 } });
    let echoed: Uint8Array | undefined;
    const client = new TcpClient<Uint8Array>({
      host: "127.0.0.1",
      port: server.port,
      session: { maxMsgLen: 16 << 20 },
    });
    await client.runEventLoop((s) => {
      s.setPkgHandler(codec);
      s.setEventListener({ onMessage: (_s, p) => void (echoed = p) });
    });
    const big = pattern(8 << 20, 7);
    assert.deepEqual(await client.sessions[0].writePkg(big), { total: (8 << 20) + 4, sent: (8 << 20) + 4 });
    await waitFor(() => echoed !== undefined, 20_000);
    assert.equal(echoed!.length, big.length);
    assert.ok(echoed!.every((b, i) => b === big[i]), "every byte matches");
    await client.close();
    await server.close();
  });

  it("closes only the session whose declared length exceeds maxMsgLen", async () => {
    const errors: GettyError[] = [];
    const server = new TcpServer<Uint8Array>({ port: 0, session: { maxMsgLen: 1024 } });
    await server.runEventLoop((s) => {
      s.setPkgHandler(codec);
      s.setEventListener({
        onMessage: (s, pkg) => void s.writePkg(pkg).catch(() => {}),
        onError: (_s, e) => void errors.push(e),
      });
    });
    const got: string[] = [];
    const good = collectingClient(server.port, got);
    const bad = collectingClient(server.port, []);
    await Promise.all([good.run, bad.run]);
    const badSession = bad.client.sessions[0];
    await badSession.writeBytes(new Uint8Array([0, 0, 0x40, 0])); // declares 16 KiB, sends only the header
    await badSession.closed;
    assert.ok(errors[0] instanceof MessageTooLongError);
    await good.client.sessions[0].writePkg(bytes("still served"));
    await waitFor(() => got.length === 1);
    assert.deepEqual(got, ["still served"]);
    await good.client.close();
    await bad.client.close();
    await server.close();
  });

  it("refuses connections beyond maxConnections", async () => {
    const server = await echoServer({ maxConnections: 2 });
    const a = collectingClient(server.port, []);
    const b = collectingClient(server.port, []);
    await Promise.all([a.run, b.run]);
    await waitFor(() => server.sessionCount === 2);
    const c = new TcpClient<Uint8Array>({ host: "127.0.0.1", port: server.port, reconnectAttempts: 0 });
    await c.runEventLoop((s) => s.setPkgHandler(codec)); // TCP connects, then the server hangs up
    const info = await within(c.sessions[0]?.closed ?? Promise.resolve({ initiator: "peer" }), 3_000, "refused close");
    assert.notEqual(info.initiator, "local");
    assert.equal(server.stats().refused, 1);
    assert.equal(server.sessionCount, 2);
    await Promise.all([a.client.close(), b.client.close(), c.close()]);
    await server.close();
  });

  it("bounds concurrent handlers across sessions with maxConcurrentHandlers", async () => {
    let running = 0;
    let peak = 0;
    let handled = 0;
    const server = new TcpServer<Uint8Array>({ port: 0, maxConcurrentHandlers: 2 });
    await server.runEventLoop((s) => {
      s.setPkgHandler(codec);
      s.setEventListener({
        onMessage: async () => {
          running++;
          peak = Math.max(peak, running);
          await sleep(15);
          running--;
          handled++;
        },
      });
    });
    const clients = Array.from({ length: 5 }, () => collectingClient(server.port, []));
    await Promise.all(clients.map((c) => c.run));
    for (const c of clients) for (let i = 0; i < 3; i++) void c.client.sessions[0].writePkg(bytes("x"));
    await waitFor(() => handled === 15, 5_000);
    assert.equal(peak, 2);
    await Promise.all(clients.map((c) => c.client.close()));
    await server.close();
  });

  it("stops reading while handlers lag, so the sender feels real TCP backpressure", async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let received = 0;
    let serverSession: Session<Uint8Array> | undefined;
    const server = new TcpServer<Uint8Array>({ port: 0, session: { inboundQueueLimit: 4, maxMsgLen: 1 << 20 } });
    await server.runEventLoop((s) => {
      serverSession = s;
      s.setPkgHandler(codec);
      s.setEventListener({
        onMessage: async (_s, p) => {
          await held;
          assert.equal(p[0], received & 0xff);
          received++;
        },
      });
    });
    const client = new TcpClient<Uint8Array>({
      host: "127.0.0.1",
      port: server.port,
      session: { highWaterMark: 256 * 1024, lowWaterMark: 64 * 1024, outboundCap: 128 << 20 },
    });
    const changes: boolean[] = [];
    await client.runEventLoop((s) => {
      s.setPkgHandler(codec);
      s.setEventListener({ onWritabilityChange: (_s, w) => void changes.push(w) });
    });
    const session = client.sessions[0];
    let sent = 0;
    const writes: Promise<unknown>[] = [];
    // One package per tick, each flushed on its own: the client only becomes unwritable once the kernel
    // buffers are full, i.e. once the server stopped reading.
    while (session.isWritable() && sent < 1024) {
      const pkg = new Uint8Array(64 * 1024).fill(sent & 0xff);
      writes.push(session.writePkg(pkg));
      sent++;
      await sleep(1);
    }
    assert.equal(session.isWritable(), false, `became unwritable after ${sent} × 64 KiB`);
    assert.ok(sent > 8 && sent < 1024, `kernel buffers absorbed ${sent} packages first`);
    const decoded = serverSession!.stat().readPkgs;
    assert.ok(decoded < sent / 2, `server paused reading: decoded ${decoded} of ${sent}`);
    release();
    await Promise.all(writes);
    await waitFor(() => received === sent, 20_000);
    await waitFor(() => session.isWritable());
    assert.deepEqual(changes, [false, true]);
    await client.close();
    await server.close();
  });

  it("handles every package sent before the peer closed (EOF after data)", async () => {
    const got: string[] = [];
    const server = new TcpServer<Uint8Array>({ port: 0 });
    let serverClosed: Promise<unknown> | undefined;
    await server.runEventLoop((s) => {
      s.setPkgHandler(codec);
      serverClosed = s.closed;
      s.setEventListener({
        onMessage: async (_s, p) => {
          await sleep(2);
          got.push(text(p));
        },
      });
    });
    const client = new TcpClient<Uint8Array>({ host: "127.0.0.1", port: server.port });
    await client.runEventLoop((s) => s.setPkgHandler(codec));
    for (let i = 0; i < 20; i++) void client.sessions[0].writePkg(bytes(`m${i}`));
    await client.close();
    await waitFor(() => serverClosed !== undefined);
    const info = (await serverClosed) as { initiator: string };
    assert.equal(info.initiator, "peer");
    assert.deepEqual(got, Array.from({ length: 20 }, (_, i) => `m${i}`));
    await server.close();
  });
});

describe("graceful shutdown", () => {
  after(assertNoLeaks);

  it("server.close() flushes queued outbound data before closing sessions", async () => {
    const big = pattern(4 << 20, 3);
    const server = new TcpServer<Uint8Array>({ port: 0, session: { maxMsgLen: 8 << 20 } });
    await server.runEventLoop((s) => {
      s.setPkgHandler(codec);
      s.setEventListener({ onOpen: (s) => void s.writePkg(big).catch(() => {}) });
    });
    let got: Uint8Array | undefined;
    const client = new TcpClient<Uint8Array>({
      host: "127.0.0.1",
      port: server.port,
      reconnectAttempts: 0,
      session: { maxMsgLen: 8 << 20 },
    });
    await client.runEventLoop((s) => {
      s.setPkgHandler(codec);
      s.setEventListener({ onMessage: (_s, p) => void (got = p) });
    });
    await waitFor(() => server.sessionCount === 1);
    await server.close(); // right away: most of the 4 MiB is still queued
    await waitFor(() => got !== undefined, 10_000);
    assert.equal(got!.length, big.length);
    assert.ok(got!.every((b, i) => b === big[i]));
    await client.close();
  });

  it("server.close() forces sessions whose peer does not read after waitTime", async () => {
    const server = new TcpServer<Uint8Array>({
      port: 0,
      session: { waitTime: 200, outboundCap: 256 << 20, highWaterMark: 1 << 20 },
    });
    let serverSession: Session<Uint8Array> | undefined;
    await server.runEventLoop((s) => void (serverSession = s));
    const client = new TcpClient<Uint8Array>({
      host: "127.0.0.1",
      port: server.port,
      session: { inboundQueueLimit: 1 },
    });
    await client.runEventLoop((s) => s.setEventListener({ onMessage: () => new Promise(() => {}) })); // never reads again
    await waitFor(() => serverSession !== undefined);
    for (let i = 0; i < 64; i++) void serverSession!.writeBytes(new Uint8Array(1 << 20)).catch(() => {});
    await sleep(50);
    assert.ok(serverSession!.pendingBytes > 0, "data is stuck in the outbound buffer");
    const started = Date.now();
    await within(server.close(), 3_000, "server.close");
    const took = Date.now() - started;
    assert.ok(took >= 150 && took < 2_000, `forced after waitTime (${took} ms)`);
    await client.close();
  });
});

describe("client pool and reconnect", () => {
  after(assertNoLeaks);

  it("refills the pool after a session is lost and resets the failure count on success", async () => {
    const server = await echoServer();
    const client = new TcpClient<Uint8Array>({
      host: "127.0.0.1",
      port: server.port,
      connectionNumber: 3,
      reconnectInterval: 20,
    });
    await client.runEventLoop((s) => s.setPkgHandler(codec));
    assert.equal(client.sessions.length, 3);
    const victim = [...server.sessions][0];
    await victim.close();
    await waitFor(() => client.sessions.length === 3 && client.stats().connects === 4, 5_000, "pool refill");
    await client.close();
    await server.close();
  });

  it("rejects runEventLoop with ConnectError when the first fill fails, and closes the client", async () => {
    const server = await echoServer();
    const port = server.port;
    await server.close();
    const client = new TcpClient<Uint8Array>({ host: "127.0.0.1", port });
    await assert.rejects(client.runEventLoop(() => {}), (e: unknown) => {
      assert.ok(e instanceof ConnectError);
      assert.equal(e.code, "ERR_CONNECT");
      assert.match(e.message, new RegExp(`127\\.0\\.0\\.1:${port}`));
      return true;
    });
    assert.ok(client.isClosed());
  });

  it("backs off with jitter when the server accepts and hangs up at once (no reconnect storm)", async () => {
    let accepted = 0;
    const server = new TcpServer<Uint8Array>({ port: 0 });
    await server.runEventLoop((s) => {
      accepted++;
      s.setEventListener({ onOpen: (s) => void s.close() });
    });
    const client = new TcpClient<Uint8Array>({
      host: "127.0.0.1",
      port: server.port,
      reconnectInterval: 20,
      reconnectAttempts: 100,
    });
    await client.runEventLoop(() => {});
    await sleep(1_200);
    // Without backoff a 20 ms interval would reconnect ~60 times in 1.2 s; flaps double the delay each time.
    assert.ok(accepted >= 3, `reconnected (${accepted})`);
    assert.ok(accepted <= 10, `backed off (${accepted} connections in 1.2 s)`);
    await client.close();
    await server.close();
  });

  it("survives a server restart: writes in the gap fail fast, the pool reconnects to the new server", async () => {
    let server = await echoServer();
    const port = server.port;
    const got: string[] = [];
    const { client, run } = collectingClient(port, got, { reconnectInterval: 30, connectionNumber: 2 });
    await run;
    const old = client.sessions[0];
    await server.close();
    await waitFor(() => client.sessions.length === 0, 3_000, "sessions to drop");
    await assert.rejects(old.writePkg(bytes("into the gap")), SessionClosedError);
    server = await echoServer({ port });
    await waitFor(() => client.sessions.length === 2, 10_000, "pool to reconnect");
    await client.sessions[0].writePkg(bytes("back"));
    await waitFor(() => got.includes("back"));
    await client.close();
    await server.close();
  });

  it("gives up after reconnectAttempts consecutive failures and never reconnects after close()", async () => {
    let server = await echoServer();
    const port = server.port;
    let gaveUp: ConnectError | undefined;
    const client = new TcpClient<Uint8Array>({
      host: "127.0.0.1",
      port,
      reconnectInterval: 10,
      reconnectAttempts: 3,
      onGiveUp: (e) => void (gaveUp = e),
    });
    await client.runEventLoop(() => {});
    await server.close();
    await waitFor(() => gaveUp !== undefined, 5_000, "give up");
    assert.ok(gaveUp instanceof ConnectError);
    assert.match(gaveUp.message, /gave up after 3 consecutive/);
    assert.ok(client.isClosed());
    const connects = client.stats().connects;
    server = await echoServer({ port });
    await sleep(150);
    assert.equal(client.stats().connects, connects, "no reconnect after giving up");
    assert.equal(server.sessionCount, 0);
    await server.close();

    const server2 = await echoServer();
    const c2 = new TcpClient<Uint8Array>({ host: "127.0.0.1", port: server2.port, reconnectInterval: 10 });
    await c2.runEventLoop(() => {});
    await c2.close();
    await sleep(100);
    assert.equal(c2.stats().connects, 1, "close() never reconnects");
    await waitFor(() => server2.sessionCount === 0);
    await server2.close();
  });
});

describe("observability", () => {
  after(assertNoLeaks);

  it("server.stats() counts sessions, bytes, packages and errors over live and closed sessions", async () => {
    const server = await echoServer({ session: { maxMsgLen: 100 } });
    const a = collectingClient(server.port, []);
    await a.run;
    for (let i = 0; i < 5; i++) await a.client.sessions[0].writePkg(bytes("12345"));
    await waitFor(() => server.stats().writePkgs === 5);
    let st = server.stats();
    assert.equal(st.open, 1);
    assert.equal(st.opened, 1);
    assert.equal(st.readPkgs, 5);
    assert.equal(st.readBytes, 45);
    assert.equal(st.writeBytes, 45);
    await a.client.close();
    const b = collectingClient(server.port, []);
    await b.run;
    await b.client.sessions[0].writeBytes(new Uint8Array([0, 0, 1, 0])).catch(() => {}); // too long: an error
    await waitFor(() => server.stats().errors === 1 && server.stats().open === 0);
    st = server.stats();
    assert.equal(st.opened, 2);
    assert.equal(st.readPkgs, 5, "closed sessions still count");
    assert.equal(st.readBytes, 49);
    await b.client.close();
    await server.close();
  });
});
