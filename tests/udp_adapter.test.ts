// The UDP drivers below the endpoints: the contract each driver keeps on this runtime (held datagrams while
// paused, connected sockets, settled writes on close, released ports), Bun's drain queue with a fake socket
// (runs on both runtimes), driver selection and address helpers.
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { InvalidOptionError, type PeerAddress } from "../mod.ts";
import { type BunUdpLike, BunUdpSocket } from "../src/runtime/bun_udp.ts";
import { ipFamily, isLoopback, normalizeHost, peerKey, resolveHost, samePeer } from "../src/udp/address.ts";
import type { DropReason, UdpBindOptions, UdpSocket, UdpSocketEvents } from "../src/udp/adapter.ts";
import { DatagramInbox } from "../src/udp/inbox.ts";
import { hasDenoListenDatagram, resolveUdpDriver, udpAdapter, type UdpDriverName } from "../src/udp/select.ts";
import { current } from "./helpers/runtimes.ts";
import { rawPeer, udpDrivers } from "./helpers/udp.ts";
import { assertNoLeaks, bytes, sleep, text, waitFor, within } from "./helpers/util.ts";

const T = { timeout: 30_000 };

/** Records what a socket reports. */
class Events implements UdpSocketEvents {
  readonly drops: DropReason[] = [];
  readonly sendFailures: Array<{ error: unknown; to?: PeerAddress }> = [];
  readonly socketErrors: unknown[] = [];
  dropped(reason: DropReason): void {
    this.drops.push(reason);
  }
  sendFailed(error: unknown, to: PeerAddress | undefined): void {
    this.sendFailures.push({ error, to });
  }
  socketError(error: unknown): void {
    this.socketErrors.push(error);
  }
}

/** Records what a socket delivers. */
function sink() {
  const got: Array<{ text: string; from?: PeerAddress }> = [];
  const closed: unknown[][] = [];
  return {
    got,
    closed,
    data(chunk: Uint8Array | string, from?: PeerAddress) {
      got.push({ text: typeof chunk === "string" ? chunk : text(chunk), from });
    },
    closed_(...args: unknown[]) {
      closed.push(args);
    },
  };
}

function asSink(s: ReturnType<typeof sink>) {
  return { data: s.data, closed: (...args: unknown[]) => s.closed_(...args) };
}

/** A fake Bun UDP socket whose `send` answers from a script. */
class FakeBunSocket implements BunUdpLike {
  readonly sent: Array<{ text: string; port?: number; address?: string }> = [];
  readonly address = { address: "127.0.0.1", port: 4000 };
  /** What the next `send` calls do: true/false = return it, an Error = throw it; empty = true. */
  script: Array<boolean | Error> = [];
  closed = false;
  send(data: Uint8Array, port?: number, address?: string): boolean {
    const next = this.script.shift() ?? true;
    if (next instanceof Error) throw next;
    if (next) this.sent.push({ text: text(data), port, address });
    return next;
  }
  close(): void {
    this.closed = true;
  }
}

function bindOptions(events: Events, extra: Partial<UdpBindOptions> = {}): UdpBindOptions {
  return { hostname: "127.0.0.1", port: 0, pausedBacklog: 2, events, ...extra };
}

describe("udp: Bun driver logic with a fake socket", () => {
  after(assertNoLeaks);

  it("waits for drain when send() returns false, keeps write order, and retries until the kernel takes it", async () => {
    const fake = new FakeBunSocket();
    const events = new Events();
    const socket = new BunUdpSocket(fake, bindOptions(events), "127.0.0.1");
    const to = { hostname: "127.0.0.1", port: 5000 };
    assert.equal(socket.write(bytes("a"), to), true);
    fake.script = [false];
    const b = socket.write(bytes("b"), to);
    assert.ok(b instanceof Promise, "backpressure: a promise");
    const c = socket.write(bytes("c"), to);
    assert.ok(c instanceof Promise, "queued behind b, not sent past it");
    let settled = 0;
    void b.then(() => settled++);
    void c.then(() => settled++);
    await sleep(5);
    assert.equal(settled, 0);
    fake.script = [false]; // a spurious drain (Bun calls drain after an ICMP error): still full
    socket.onDrain();
    await sleep(5);
    assert.equal(settled, 0);
    socket.onDrain(); // room again
    await Promise.all([b, c]);
    assert.deepEqual(fake.sent.map((s) => s.text), ["a", "b", "c"]);
    assert.deepEqual(fake.sent[1], { text: "b", port: 5000, address: "127.0.0.1" });
    assert.equal(events.sendFailures.length, 0);
    socket.close();
  });

  it("drops a datagram whose send() throws, reports it, and resolves the write", () => {
    const fake = new FakeBunSocket();
    const events = new Events();
    const socket = new BunUdpSocket(fake, bindOptions(events), "127.0.0.1");
    const emsgsize = Object.assign(new Error("EMSGSIZE: message too long, send"), { code: "EMSGSIZE" });
    fake.script = [emsgsize];
    assert.equal(socket.write(bytes("big"), { hostname: "127.0.0.1", port: 5000 }), true);
    assert.equal(events.sendFailures[0].error, emsgsize);
    assert.deepEqual(events.sendFailures[0].to, { hostname: "127.0.0.1", port: 5000 });
    assert.equal(socket.write(bytes("x")), true, "no destination: reported, not thrown");
    assert.equal(events.sendFailures.length, 2);
    socket.close();
  });

  it("rejects queued writes on close, and every write after it", async () => {
    const fake = new FakeBunSocket();
    const socket = new BunUdpSocket(fake, bindOptions(new Events()), "127.0.0.1");
    fake.script = [false];
    const w = socket.write(bytes("stuck"), { hostname: "127.0.0.1", port: 5000 }) as Promise<void>;
    socket.close();
    assert.ok(fake.closed);
    await assert.rejects(w, /closed/);
    await assert.rejects(socket.write(bytes("late"), { hostname: "127.0.0.1", port: 5000 }) as Promise<void>, /closed/);
    await socket.released;
  });

  it("holds datagrams until started and while paused (at most pausedBacklog), normalising senders", () => {
    const events = new Events();
    const socket = new BunUdpSocket(new FakeBunSocket(), bindOptions(events), "::");
    assert.equal(socket.family, 6);
    socket.onData(bytes("1"), 7001, "::ffff:127.0.0.1", false);
    socket.onData(bytes("2"), 7002, "::1", false);
    socket.onData(bytes("3"), 7003, "127.0.0.1", false); // backlog 2: dropped
    socket.onData(bytes("4"), 7004, "127.0.0.1", true); // truncated: dropped
    const s = sink();
    socket.start(asSink(s));
    assert.deepEqual(s.got, [
      { text: "1", from: { hostname: "127.0.0.1", port: 7001 } },
      { text: "2", from: { hostname: "::1", port: 7002 } },
    ]);
    assert.deepEqual(events.drops, ["backlog", "truncated"]);
    socket.pause();
    socket.onData(bytes("5"), 7005, "127.0.0.1", false);
    assert.equal(s.got.length, 2);
    socket.resume();
    assert.equal(s.got[2].text, "5");
    socket.onError(new Error("ECONNREFUSED"));
    assert.equal(events.socketErrors.length, 1);
    socket.close();
    socket.onData(bytes("6"), 7006, "127.0.0.1", false);
    socket.onError(new Error("late"));
    assert.equal(s.got.length, 3);
    assert.equal(events.socketErrors.length, 1);
  });
});

describe("udp: DatagramInbox", () => {
  it("reports an end after the held datagrams, once, and never after close", () => {
    let drops = 0;
    const inbox = new DatagramInbox(1, () => drops++);
    inbox.push(bytes("a"), undefined);
    inbox.push(bytes("b"), undefined);
    assert.equal(drops, 1);
    inbox.end();
    inbox.push(bytes("c"), undefined); // after the end: ignored
    const s = sink();
    inbox.start(asSink(s));
    assert.deepEqual(s.got.map((g) => g.text), ["a"]);
    assert.deepEqual(s.closed, [[]]);
    inbox.end(new Error("again"));
    assert.equal(s.closed.length, 1);
  });
});

for (const driver of udpDrivers()) {
  const name: UdpDriverName = resolveUdpDriver("driver", driver);

  describe(`udp driver contract (${current}, ${name})`, T, () => {
    after(assertNoLeaks);

    async function bind(extra: Partial<UdpBindOptions> = {}, events = new Events()): Promise<UdpSocket> {
      const adapter = await udpAdapter(name);
      return adapter.bind(bindOptions(events, extra));
    }

    it("delivers whole datagrams with the sender, holds while paused, and releases the port on close", T, async () => {
      const events = new Events();
      const socket = await bind({ pausedBacklog: 2 }, events);
      assert.equal(socket.framing, "datagram");
      assert.equal(socket.maxWriteSize, 65_507);
      assert.equal(socket.family, 4);
      assert.equal(socket.localAddr, `127.0.0.1:${socket.port}`);
      assert.equal(socket.remoteAddr, "");
      const peer = await rawPeer();
      const s = sink();
      socket.start(asSink(s));
      await peer.send(bytes("one"), socket.port);
      await peer.send(new Uint8Array(0), socket.port);
      await waitFor(() => s.got.length === 2);
      assert.deepEqual(s.got, [{ text: "one", from: peer.address }, { text: "", from: peer.address }]);
      socket.pause();
      for (let i = 0; i < 6; i++) await peer.send(bytes(`p${i}`), socket.port);
      await sleep(50);
      assert.equal(s.got.length, 2, "nothing is delivered while paused");
      socket.resume();
      await waitFor(() => s.got.length >= 4);
      await sleep(30);
      if (name === "deno") {
        // Deno.listenDatagram stops receiving: the kernel holds everything.
        assert.deepEqual(s.got.slice(2).map((g) => g.text), ["p0", "p1", "p2", "p3", "p4", "p5"]);
      } else {
        assert.deepEqual(s.got.slice(2).map((g) => g.text), ["p0", "p1"]);
        assert.deepEqual(events.drops, ["backlog", "backlog", "backlog", "backlog"]);
      }
      await Promise.resolve(socket.write(bytes("back"), peer.address));
      await Promise.resolve(socket.write(bytes("back2"), peer.address));
      await peer.waitFor(2);
      assert.deepEqual(peer.received.map((d) => text(d.data)), ["back", "back2"]);
      const port = socket.port;
      socket.close();
      await within(socket.released, 2_000, "released");
      assert.equal(s.closed.length, 0, "closing locally is not reported to the sink");
      const again = await bind({ port });
      assert.equal(again.port, port, "the port was released");
      again.close();
      await again.released;
      await peer.close();
    });

    it("a connected socket writes to its peer only and receives from it only", T, async () => {
      const server = await rawPeer();
      const stranger = await rawPeer();
      const events = new Events();
      const socket = await bind({ connect: server.address }, events);
      assert.equal(socket.remoteAddr, `127.0.0.1:${server.port}`);
      const s = sink();
      socket.start(asSink(s));
      await socket.write(bytes("hello"));
      await server.waitFor(1);
      assert.equal(text(server.received[0].data), "hello");
      const me = server.received[0].from.port;
      await stranger.send(bytes("not for you"), me);
      await server.send(bytes("reply"), me);
      await waitFor(() => s.got.length === 1);
      await sleep(30);
      assert.deepEqual(s.got, [{ text: "reply", from: server.address }]);
      if (name === "deno") assert.deepEqual(events.drops, ["foreign"], "emulated: filtered by the driver");
      socket.close();
      await socket.released;
      await Promise.all([server.close(), stranger.close()]);
    });

    it("settles a write still pending when the socket closes (never hangs)", T, async () => {
      const peer = await rawPeer();
      const socket = await bind();
      const writes = Array.from({ length: 20 }, () => Promise.resolve(socket.write(bytes("x"), peer.address)));
      socket.close();
      const outcomes = await within(Promise.allSettled(writes), 2_000, "writes to settle");
      for (const o of outcomes) if (o.status === "rejected") assert.match(String(o.reason), /closed/);
      await assert.rejects(Promise.resolve(socket.write(bytes("late"), peer.address)), /closed/);
      await socket.released;
      await peer.close();
    });

    it(
      "a burst of writes from one reused buffer arrives whole and in order",
      T,
      async () => {
        // Deno's driver keeps one send in flight: Deno sends concurrent send()s of a fresh socket in reverse order
        // (a window of 64 sends in flight, tried, delivered 64, 63, …, 0 here).
        const peer = await rawPeer();
        const socket = await bind();
        const buf = new Uint8Array(200); // reused for every datagram once its write is done, as a session's slab is
        const view = new DataView(buf.buffer);
        let takenAtOnce = 0;
        const count = 100;
        for (let i = 0; i < count; i++) {
          buf.fill(i);
          view.setUint32(0, i);
          const r = socket.write(buf, peer.address);
          if (r === true) takenAtOnce++;
          else await r;
        }
        // Bun's send() is synchronous: the kernel took every datagram before write() returned.
        if (current === "bun" && name === "bun") assert.equal(takenAtOnce, count);
        await peer.waitFor(count);
        const got = peer.received.map((d) => d.data);
        assert.deepEqual(got.map((d) => new DataView(d.buffer, d.byteOffset).getUint32(0)), [...Array(count).keys()]);
        for (const [i, d] of got.entries()) {
          assert.equal(d.length, 200);
          assert.ok(d.subarray(4).every((b) => b === i), `datagram ${i} kept its own bytes`);
        }
        socket.close();
        await socket.released;
        await peer.close();
      },
    );

    it("resolves host names in `to`; a failed lookup is a reported send failure", T, async () => {
      const peer = await rawPeer();
      const events = new Events();
      const socket = await bind({}, events);
      await socket.write(bytes("via localhost"), { hostname: "localhost", port: peer.port });
      await peer.waitFor(1);
      await socket.write(bytes("lost"), { hostname: "no-such-host.invalid", port: peer.port });
      assert.equal(events.sendFailures.length, 1);
      socket.close();
      await socket.released;
      await peer.close();
    });
  });
}

/** A fake `Deno.DatagramConn`: records receive()/send() calls; the test settles them. */
class FakeDatagramConn {
  readonly addr = { transport: "udp" as const, hostname: "127.0.0.1", port: 4000 };
  readonly calls: string[] = [];
  readonly sends: Array<{ hostname: string; done: () => void }> = [];
  #receive?: { buf: Uint8Array; resolve: (r: [Uint8Array, unknown]) => void; reject: (e: unknown) => void };
  receive(buf: Uint8Array): Promise<[Uint8Array, unknown]> {
    this.calls.push("receive");
    return new Promise((resolve, reject) => (this.#receive = { buf, resolve, reject }));
  }
  send(_data: Uint8Array, to: { hostname: string }): Promise<number> {
    this.calls.push(`send ${to.hostname}`);
    return new Promise((resolve) => this.sends.push({ hostname: to.hostname, done: () => resolve(1) }));
  }
  /** Completes the pending receive() with `text` from 127.0.0.1:6000. */
  arrive(text: string): void {
    const r = this.#receive!;
    this.#receive = undefined;
    const b = bytes(text);
    r.buf.set(b);
    r.resolve([r.buf.subarray(0, b.length), { transport: "udp", hostname: "127.0.0.1", port: 6000 }]);
  }
  /** Fails the pending receive() with `error`, as a socket failing on its own would. */
  fail(error: Error): void {
    const r = this.#receive!;
    this.#receive = undefined;
    r.reject(error);
  }
  close(): void {
    this.#receive?.reject(new Error("Interrupted"));
  }
}

/** Runs `fn` with `Deno.listenDatagram` returning `fake`. */
async function withFakeConn(fake: FakeDatagramConn, fn: () => Promise<void>): Promise<void> {
  const deno = (globalThis as unknown as { Deno: Record<string, unknown> }).Deno;
  const had = Object.hasOwn(deno, "listenDatagram");
  const original = deno.listenDatagram;
  deno.listenDatagram = () => fake;
  try {
    await fn();
  } finally {
    if (had) deno.listenDatagram = original;
    else delete deno.listenDatagram;
  }
}

describe("udp: Deno native driver with a fake DatagramConn", { skip: current !== "deno" }, () => {
  it("receives again only once the send a datagram's delivery started has settled (not one awaiting DNS)", async () => {
    const fake = new FakeDatagramConn();
    await withFakeConn(fake, async () => {
      const { denoUdpAdapter } = await import("../src/runtime/deno_udp.ts");
      const socket = await denoUdpAdapter.bind(bindOptions(new Events()));
      // The session answers each datagram: "ip" to the sender's address, "name" to a host name.
      socket.start({
        data(chunk: Uint8Array | string, from?: PeerAddress) {
          const to = text(chunk as Uint8Array) === "ip" ? from! : { hostname: "localhost", port: 6000 };
          void socket.write(bytes("answer"), to);
          return true;
        },
        closed() {},
      });
      await waitFor(() => fake.calls.length === 1, 2_000, "the first receive()");
      fake.arrive("ip");
      await waitFor(() => fake.sends.length === 1, 2_000, "the answer's send()");
      await sleep(20);
      assert.deepEqual(fake.calls, ["receive", "send 127.0.0.1"], "no receive() while that send is pending");
      fake.sends[0].done();
      await waitFor(() => fake.calls.length === 3, 2_000, "the next receive()");
      assert.equal(fake.calls[2], "receive");
      // A send to a host name is not waited for (its lookup may take long): the next receive() comes at once.
      fake.arrive("name");
      await waitFor(() => fake.calls.filter((c) => c === "receive").length === 3, 2_000, "a receive() meanwhile");
      await waitFor(() => fake.sends.length === 2, 5_000, "the named send()");
      socket.close();
      for (const s of fake.sends) s.done();
      await socket.released;
    });
  });

  it("holds a datagram that arrives while paused until resumed (not inside resume()); a failed receive() is reported once", async () => {
    const fake = new FakeDatagramConn();
    await withFakeConn(fake, async () => {
      const { denoUdpAdapter } = await import("../src/runtime/deno_udp.ts");
      const socket = await denoUdpAdapter.bind(bindOptions(new Events()));
      const got: string[] = [];
      const closed: unknown[] = [];
      socket.start({
        data(chunk: Uint8Array | string) {
          got.push(text(chunk as Uint8Array));
          return true;
        },
        closed: (error) => void closed.push(error),
      });
      await waitFor(() => fake.calls.length === 1, 2_000, "the first receive()");
      socket.pause();
      fake.arrive("held");
      await sleep(20);
      assert.deepEqual(got, [], "nothing is delivered while paused");
      assert.deepEqual(fake.calls, ["receive"], "no receive() while paused");
      socket.resume();
      assert.deepEqual(got, [], "the held datagram is not delivered inside resume()");
      await waitFor(() => got.length === 1, 2_000, "the held datagram");
      assert.deepEqual(got, ["held"]);
      await waitFor(() => fake.calls.length === 2, 2_000, "the next receive()");
      socket.resume(); // not paused: nothing happens (no second receive())
      await sleep(10);
      assert.deepEqual(fake.calls, ["receive", "receive"]);
      fake.fail(new Error("socket broke"));
      await within(socket.released, 2_000, "released after the failure");
      assert.equal(closed.length, 1);
      assert.equal((closed[0] as Error).message, "socket broke");
      assert.deepEqual(fake.calls, ["receive", "receive"], "no receive() after the failure");
    });
  });
});

describe("udp: driver selection and addresses", () => {
  it("picks the driver per runtime and option", () => {
    assert.equal(resolveUdpDriver("d", "node"), "node");
    const native = current === "bun" ? "bun" : hasDenoListenDatagram() ? "deno" : "node";
    assert.equal(resolveUdpDriver("d", "auto"), native);
    assert.equal(resolveUdpDriver("d"), native);
    if (native !== "node") assert.equal(resolveUdpDriver("d", "native"), native);
    else assert.throws(() => resolveUdpDriver("d", "native"), InvalidOptionError);
    assert.throws(
      () => resolveUdpDriver("X.driver", "fast"),
      (e: unknown) => (e as InvalidOptionError).option === "X.driver",
    );
  });

  it("normalises IPv4-mapped addresses and resolves names", async () => {
    assert.equal(normalizeHost("::ffff:127.0.0.1"), "127.0.0.1");
    assert.equal(normalizeHost("::FFFF:10.0.0.1"), "10.0.0.1");
    assert.equal(normalizeHost("::1"), "::1");
    assert.equal(peerKey({ hostname: "::ffff:127.0.0.1", port: 5 }), peerKey({ hostname: "127.0.0.1", port: 5 }));
    assert.ok(samePeer({ hostname: "::ffff:127.0.0.1", port: 5 }, { hostname: "127.0.0.1", port: 5 }));
    assert.ok(!samePeer({ hostname: "127.0.0.1", port: 5 }, { hostname: "127.0.0.1", port: 6 }));
    assert.ok(isLoopback("127.0.0.2") && isLoopback("::1") && !isLoopback("10.0.0.1"));
    assert.equal(await resolveHost("localhost", 4), "127.0.0.1");
    assert.equal(await resolveHost("::ffff:127.0.0.1"), "127.0.0.1");
  });

  it("gives the same answers from its per-host cache, past the cache's bound", () => {
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 3000; i++) {
        const v4 = `10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`;
        assert.equal(normalizeHost(`::ffff:${v4}`), v4);
        assert.equal(normalizeHost(v4), v4);
        assert.equal(ipFamily(v4), 4);
        assert.equal(ipFamily(`fe80::${i.toString(16)}`), 6);
        assert.equal(ipFamily(`host${i}.example`), 0);
      }
    }
  });
});
