// Backpressure, water marks, the outbound cap, write timeouts, inbound limits, cron, read timeout and the
// WHATWG stream surface, on the in-process memory transport.
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import {
  createMemorySessionPair,
  InvalidOptionError,
  LengthFieldCodec,
  MessageTooLongError,
  ReadTimeoutError,
  type Session,
  SessionBlockedError,
  TcpClient,
  TcpServer,
  WriteTimeoutError,
} from "../mod.ts";
import { scheduler } from "../src/scheduler.ts";
import { assertNoLeaks, bytes, sleep, text, waitFor } from "./helpers/util.ts";

const codec = new LengthFieldCodec();

/** A gate an async handler can wait on. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  return { opened, open };
}

describe("outbound buffer", () => {
  after(assertNoLeaks);

  it("crosses the high and low water marks with onWritabilityChange and isWritable()", async () => {
    const g = gate();
    const changes: boolean[] = [];
    const [a, b] = await createMemorySessionPair<Uint8Array>({
      window: 1024,
      a: (s) => {
        s.setPkgHandler(codec);
        s.setWaterMarks({ highWaterMark: 4096, lowWaterMark: 1024 });
        s.setEventListener({ onWritabilityChange: (_s, w) => void changes.push(w) });
      },
      b: (s) => {
        s.setPkgHandler(codec);
        s.setEventListener({ onMessage: () => g.opened });
        s.setAttribute("x", 1);
      },
      session: { inboundQueueLimit: 1 },
    });
    const writes = [];
    for (let i = 0; i < 20; i++) writes.push(a.writePkg(new Uint8Array(1000)));
    await waitFor(() => !a.isWritable(), 2_000, "unwritable");
    assert.deepEqual(changes, [false]);
    assert.ok(a.pendingBytes > 4096);
    g.open();
    await Promise.all(writes);
    await waitFor(() => a.isWritable());
    assert.deepEqual(changes, [false, true]);
    assert.equal(a.pendingBytes, 0);
    await a.close();
    await b.closed;
  });

  it("refuses writes past outboundCap with SessionBlockedError instead of growing memory", async () => {
    const g = gate();
    const errors: string[] = [];
    const [a, b] = await createMemorySessionPair<Uint8Array>({
      window: 512,
      session: { highWaterMark: 2048, lowWaterMark: 1024, outboundCap: 8192, inboundQueueLimit: 1 },
      a: (s) => {
        s.setPkgHandler(codec);
        s.setEventListener({ onError: (_s, e) => void errors.push(e.code) });
      },
      b: (s) => {
        s.setPkgHandler(codec);
        s.setEventListener({ onMessage: () => g.opened });
      },
    });
    const accepted: Promise<unknown>[] = [];
    let blocked = 0;
    for (let i = 0; i < 40; i++) {
      const p = a.writePkg(new Uint8Array(1000));
      p.catch(() => {});
      if (a.pendingBytes <= 8192) accepted.push(p);
      await Promise.resolve();
      const result = await Promise.race([p.then(() => "ok", (e) => e), sleep(1).then(() => "pending")]);
      if (result instanceof SessionBlockedError) blocked++;
    }
    assert.ok(blocked > 0, "some writes were refused");
    assert.ok(a.pendingBytes <= 8192, `pending ${a.pendingBytes} stays under the cap`);
    assert.ok(errors.includes("ERR_SESSION_BLOCKED"));
    g.open();
    await a.close();
    await b.closed;
  });

  /**
   * A pair whose reader b has stopped reading: its handler blocks on the first package (until `g.open()`) and
   * a second fills its one-slot queue. `got` lists the lengths b handled; `errors` the codes a reported.
   */
  async function stalledPair() {
    const g = gate();
    const errors: string[] = [];
    const got: number[] = [];
    const [a, b] = await createMemorySessionPair<Uint8Array>({
      window: 100,
      session: { inboundQueueLimit: 1 },
      a: (s) => {
        s.setPkgHandler(codec);
        s.setEventListener({ onError: (_s, e) => void errors.push(e.code) });
      },
      b: (s) => {
        s.setPkgHandler(codec);
        s.setEventListener({
          onMessage: (_s, pkg) => {
            got.push(pkg.length);
            return g.opened;
          },
        });
      },
    });
    for (let i = 0; i < 2; i++) {
      await a.writePkg(new Uint8Array(10));
      await sleep(5);
    }
    return { a, b, g, errors, got };
  }

  it("a write timeout before any byte is sent fails only that write; the session stays open", async () => {
    const { a, b, g, errors } = await stalledPair();
    const first = a.writePkg(new Uint8Array(5000), 0); // in flight, stuck behind the paused reader, no timeout
    await sleep(5);
    const second = a.writePkg(new Uint8Array(10), 40); // still queued when its timeout strikes
    await assert.rejects(second, (e: unknown) => e instanceof WriteTimeoutError && /before any byte/.test(e.message));
    assert.equal(a.state, "open");
    assert.deepEqual(errors, ["ERR_WRITE_TIMEOUT"]);
    g.open();
    assert.deepEqual(await first, { total: 5004, sent: 5004 });
    await a.close();
    await b.closed;
  });

  // `send` extends the previous promise-less write in the same slab (no allocation per package). A write that
  // was dropped, or already handed to the transport, must not be extended: what is sent next would be lost.
  it("a send queued behind a timed-out send still leaves (nothing joins a write that was dropped)", async () => {
    const { a, b, g, errors, got } = await stalledPair();
    const first = a.writePkg(new Uint8Array(5000), 0); // in flight, stuck behind the paused reader
    await sleep(5);
    assert.equal(a.send(new Uint8Array(11), 30), true); // queued; its timeout strikes before it leaves
    await waitFor(() => errors.length === 1);
    assert.deepEqual(errors, ["ERR_WRITE_TIMEOUT"]);
    assert.equal(a.send(new Uint8Array(12)), true); // right behind the dropped one in the slab
    g.open();
    await first;
    await waitFor(() => got.includes(12));
    assert.deepEqual(got, [10, 10, 5000, 12]);
    await a.close();
    await b.closed;
  });

  // A send may join the queued one in front of it only if that cannot postpone its own deadline: the joined entry
  // keeps the earlier deadline. Told apart without a clock read, from the two timeouts.
  it("a send with a shorter timeout than the queued send in front keeps its own deadline", async () => {
    const { a, b, g, errors, got } = await stalledPair();
    const first = a.writePkg(new Uint8Array(5000), 0); // in flight, stuck behind the paused reader
    await sleep(5);
    assert.equal(a.send(new Uint8Array(11), 5_000), true); // queued, long timeout
    assert.equal(a.send(new Uint8Array(12), 30), true); // right behind it in the slab, short timeout
    await waitFor(() => errors.length === 1);
    assert.deepEqual(errors, ["ERR_WRITE_TIMEOUT"]); // the short one alone, at its own deadline
    g.open();
    await first;
    await waitFor(() => got.includes(11));
    await sleep(20);
    assert.deepEqual(got, [10, 10, 5000, 11]);
    assert.equal(a.state, "open");
    await a.close();
    await b.closed;
  });

  it("a send while an earlier send is still in flight leaves after it (nothing joins a write under way)", async () => {
    const { a, b, g, errors, got } = await stalledPair();
    assert.equal(a.send(new Uint8Array(5000)), true); // handed to the transport, stuck behind the paused reader
    await sleep(5);
    assert.equal(a.send(new Uint8Array(12)), true); // right behind it in the slab
    g.open();
    await waitFor(() => got.includes(12));
    assert.deepEqual(got, [10, 10, 5000, 12]);
    await waitFor(() => a.pendingBytes === 0);
    assert.deepEqual(errors, []);
    await a.close();
    await b.closed;
  });

  it("a write timeout that strikes mid-frame closes the session", async () => {
    const { a, b } = await stalledPair(); // the gate stays shut: b never reads again
    const stuck = a.writePkg(new Uint8Array(50_000), 40);
    await assert.rejects(stuck);
    const info = await a.closed;
    assert.ok(info.error instanceof WriteTimeoutError);
    assert.match(info.error.message, /part of the frame/);
    await b.close();
  });
});

describe("inbound limits", () => {
  after(assertNoLeaks);

  it("enforces maxMsgLen from the declared length before the body arrives", async () => {
    const [a, b] = await createMemorySessionPair<Uint8Array>({
      session: { maxMsgLen: 1024 },
      a: (s) => s.setPkgHandler(codec),
      b: (s) => s.setPkgHandler(codec),
    });
    // Only the 4-byte header of a 1 MiB frame is sent: the session closes without waiting for the body.
    await a.writeBytes(new Uint8Array([0, 0x10, 0, 0]));
    const info = await b.closed;
    assert.ok(info.error instanceof MessageTooLongError);
    assert.equal(info.error.length, 0x100004);
    assert.equal(info.error.max, 1024);
    await a.closed;
  });

  it("bounds the read buffer when a codec never finds a frame", async () => {
    let biggest = 0;
    const [a, b] = await createMemorySessionPair<Uint8Array>({
      session: { maxMsgLen: 4096 },
      b: (s) =>
        s.setReader({
          read: (_s, data) => {
            biggest = Math.max(biggest, data.length);
            return undefined;
          },
        }),
    });
    for (let i = 0; i < 10 && a.state === "open"; i++) {
      await a.writeBytes(new Uint8Array(1000)).catch(() => {});
      await sleep(2);
    }
    const info = await b.closed;
    assert.ok(info.error instanceof MessageTooLongError);
    assert.ok(biggest <= 4096 + 1000, `buffer stayed within maxMsgLen + one read (saw ${biggest})`);
    await a.closed;
  });

  it("awaits an async onMessage before the next package and pauses reading while the queue is full", async () => {
    const order: string[] = [];
    let running = 0;
    let maxRunning = 0;
    let release!: () => void;
    let held = new Promise<void>((r) => (release = r));
    const [a, b] = await createMemorySessionPair<Uint8Array>({
      window: 64,
      session: { inboundQueueLimit: 2 },
      a: (s) => s.setPkgHandler(codec),
      b: (s) => {
        s.setPkgHandler(codec);
        s.setEventListener({
          onMessage: async (_s, p) => {
            running++;
            maxRunning = Math.max(maxRunning, running);
            order.push(`start:${text(p)}`);
            await held;
            order.push(`end:${text(p)}`);
            running--;
          },
        });
      },
    });
    // One package per tick, so each leaves in its own socket write (a single read holding many packages is
    // decoded whole; pausing applies to the reads after it).
    const writes = [];
    for (let i = 0; i < 30; i++) {
      writes.push(a.writePkg(bytes(String(i).padStart(2, "0"))));
      await sleep(1);
    }
    await sleep(20);
    // The reader is paused: a's writes cannot all complete while b's handler is stuck.
    assert.ok(a.pendingBytes > 0, "writer feels backpressure");
    assert.ok(b.stat().readPkgs < 30, `reader paused (decoded ${b.stat().readPkgs})`);
    release();
    held = Promise.resolve();
    await Promise.all(writes);
    await waitFor(() => order.length === 60);
    assert.equal(maxRunning, 1, "one handler at a time per session");
    const expected = Array.from({ length: 30 }, (_, i) => String(i).padStart(2, "0")).flatMap((
      t,
    ) => [`start:${t}`, `end:${t}`]);
    assert.deepEqual(order, expected);
    await a.close();
    await b.closed;
  });
});

describe("shared timer: cron and read timeout", () => {
  after(assertNoLeaks);

  it("runs every session's cron from one timer, and a period change takes effect", async () => {
    const pairs: Array<[Session<Uint8Array>, Session<Uint8Array>]> = [];
    const counts = new Map<number, number>();
    for (let i = 0; i < 40; i++) {
      pairs.push(
        await createMemorySessionPair<Uint8Array>({
          session: { cronPeriod: 30 },
          a: (s) => s.setEventListener({ onCron: (s) => void counts.set(s.id, (counts.get(s.id) ?? 0) + 1) }),
        }),
      );
    }
    assert.ok(scheduler.armedTimers <= 1, "at most one runtime timer is armed");
    assert.ok(scheduler.size >= 40);
    await sleep(200);
    for (const [a] of pairs) assert.ok((counts.get(a.id) ?? 0) >= 3, `session ${a.id} cron ran ${counts.get(a.id)}`);
    const [a0] = pairs[0];
    a0.setCronPeriod(1_000_000);
    const frozen = counts.get(a0.id)!;
    await sleep(100);
    assert.ok(counts.get(a0.id)! <= frozen + 1, "slower period took effect");
    a0.setCronPeriod(10);
    const before = counts.get(a0.id)!;
    await sleep(120);
    assert.ok(counts.get(a0.id)! >= before + 5, "faster period took effect");
    for (const [a, b] of pairs) {
      await a.close();
      await b.closed;
    }
  });

  it("a throwing onCron is reported and cron keeps running", async () => {
    const errors: string[] = [];
    let n = 0;
    const [a, b] = await createMemorySessionPair<Uint8Array>({
      session: { cronPeriod: 20 },
      a: (s) =>
        s.setEventListener({
          onCron: () => {
            n++;
            throw new Error("cron boom");
          },
          onError: (_s, e) => void errors.push(e.code),
        }),
    });
    await waitFor(() => n >= 3);
    assert.ok(errors.length >= 3 && errors.every((c) => c === "ERR_HANDLER"));
    assert.equal(a.state, "open");
    await a.close();
    await b.closed;
  });

  it("readTimeout closes a session that received nothing, and traffic keeps it alive", async () => {
    const [a, b] = await createMemorySessionPair<Uint8Array>({
      a: (s) => s.setPkgHandler(codec),
      b: (s) => {
        s.setPkgHandler(codec);
        s.setReadTimeout(80);
      },
    });
    const started = Date.now();
    for (let i = 0; i < 6; i++) {
      await a.writePkg(bytes("ping"));
      await sleep(30);
    }
    assert.equal(b.state, "open", "traffic kept it open past the timeout");
    const info = await b.closed;
    assert.ok(info.error instanceof ReadTimeoutError);
    assert.equal(info.error.timeoutMs, 80);
    assert.ok(Date.now() - started >= 150 + 80 - 10, "closed about readTimeout after the last package");
    await a.closed;
  });
});

describe("WHATWG streams", () => {
  after(assertNoLeaks);

  it("a session is a ReadableStream and a WritableStream of packages", async () => {
    const [a, b] = await createMemorySessionPair<Uint8Array>({
      a: (s) => s.setPkgHandler(codec),
      b: (s) => s.setPkgHandler(codec),
    });
    const writer = a.writable.getWriter();
    for (const t of ["x", "y", "z"]) await writer.write(bytes(t));
    const reader = b.readable.getReader();
    const got: string[] = [];
    for (let i = 0; i < 3; i++) got.push(text((await reader.read()).value!));
    assert.deepEqual(got, ["x", "y", "z"]);
    await writer.close(); // closes session a; b sees the peer close and its stream ends
    assert.deepEqual(await reader.read(), { done: true, value: undefined });
    await b.closed;
  });

  it("readable.pipeTo(writable) bridges two sessions, even across transports (memory → TCP)", async () => {
    const server = new TcpServer<Uint8Array>({ port: 0 });
    const received: string[] = [];
    await server.runEventLoop((s) => {
      s.setPkgHandler(codec);
      s.setEventListener({ onMessage: (_s, p) => void received.push(text(p)) });
    });
    const client = new TcpClient<Uint8Array>({ host: "127.0.0.1", port: server.port });
    await client.runEventLoop((s) => s.setPkgHandler(codec));
    const [front, back] = await createMemorySessionPair<Uint8Array>({
      a: (s) => s.setPkgHandler(codec),
      b: (s) => s.setPkgHandler(codec),
    });
    const piping = back.readable.pipeTo(client.sessions[0].writable);
    for (let i = 0; i < 50; i++) void front.writePkg(bytes(`m${i}`));
    await waitFor(() => received.length === 50);
    assert.deepEqual(received, Array.from({ length: 50 }, (_, i) => `m${i}`));
    await front.close();
    await piping; // front's close ends back's readable, which closes the TCP session
    await client.close();
    await server.close();
  });
});

describe("option validation", () => {
  after(assertNoLeaks);

  it("names the option in every error", async () => {
    const cases: Array<[() => unknown, string]> = [
      [() => new TcpServer({ port: 70000 }), "TcpServer.port"],
      [() => new TcpServer({ session: { maxMsgLen: 0 } }), "TcpServer.session.maxMsgLen"],
      [() => new TcpServer({ session: { cronPeriod: -1 } }), "TcpServer.session.cronPeriod"],
      [() => new TcpServer({ session: { lowWaterMark: 10, highWaterMark: 5 } }), "TcpServer.session.lowWaterMark"],
      [() => new TcpServer({ maxConnections: 0 }), "TcpServer.maxConnections"],
      [() => new TcpServer({ tls: { cert: "x", key: "y" } }), "TcpServer.tls.cert"],
      [() => new TcpServer({ colour: "red" } as never), "TcpServer.colour"],
      [() => new TcpClient({ host: "", port: 1 }), "TcpClient.host"],
      [() => new TcpClient({ host: "h", port: 0 }), "TcpClient.port"],
      [() => new TcpClient({ host: "h", port: 1, reconnectInterval: 0 }), "TcpClient.reconnectInterval"],
      [() => new TcpClient({ host: "h", port: 1, connectionNumber: 1.5 }), "TcpClient.connectionNumber"],
      [() => new TcpClient({ host: "h", port: 1, tls: { caCerts: [] } }), "TcpClient.tls.caCerts"],
      [() => new TcpClient({ host: "h", port: 1, maxConcurrentHandlers: -1 }), "TcpClient.maxConcurrentHandlers"],
    ];
    for (const [make, option] of cases) {
      assert.throws(make, (e: unknown) => {
        assert.ok(e instanceof InvalidOptionError, `${option}: ${e}`);
        assert.equal(e.option, option);
        assert.equal(e.code, "ERR_INVALID_OPTION");
        assert.ok(e.message.includes(option));
        return true;
      });
    }
    const [a, b] = await createMemorySessionPair<Uint8Array>();
    assert.throws(() => a.setCronPeriod(-5), (e: InvalidOptionError) => e.option === "cronPeriod");
    assert.throws(() => a.setReadTimeout(Number.NaN), (e: InvalidOptionError) => e.option === "readTimeout");
    assert.throws(() => a.setMaxMsgLen(0), (e: InvalidOptionError) => e.option === "maxMsgLen");
    await assert.rejects(a.writePkg(bytes("x"), -1), (e: InvalidOptionError) => e.option === "timeoutMs");
    await a.close();
    await b.closed;
  });
});
