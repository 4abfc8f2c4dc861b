// A buffer written without a writer belongs to the caller again once writePkg/send/writeBytes returned: on a
// message or datagram session it is handed straight to the runtime when nothing is queued (no copy), and copied
// when it has to wait. Either way, refilling it at once must never change what the peer receives — over real
// loopback WebSocket and UDP on the runtime running the suite, with bursts that make some writes wait.
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { type GettyError, type Session, TcpServer, UdpClient, UdpEndpoint, WsClient, WsServer } from "../mod.ts";
import { Outbound } from "../src/outbound.ts";
import type { Transport } from "../src/transport.ts";
import { fakeAdapter } from "./helpers/fake_adapter.ts";
import { current } from "./helpers/runtimes.ts";
import { udpDrivers } from "./helpers/udp.ts";
import { assertNoLeaks, waitFor } from "./helpers/util.ts";

const T = { timeout: 60_000 };

/** The content of message `i`: `size` bytes, all derived from `i`. */
function expected(i: number, size: number): Uint8Array {
  const b = new Uint8Array(size);
  for (let k = 0; k < size; k++) b[k] = (i * 31 + k * 7) & 0xff;
  if (size >= 4) new DataView(b.buffer).setUint32(0, i);
  return b;
}

/**
 * Writes `count` messages from ONE reused buffer, refilling it with garbage right after each call returns;
 * rounds of `burst` writes per tick, alternating writePkg, send and writeBytes. Resolves once all were written.
 */
async function writeReused(s: Session<Uint8Array>, count: number, size: number, burst: number): Promise<void> {
  const buf = new Uint8Array(size);
  const promises: Promise<unknown>[] = [];
  for (let i = 0; i < count; i++) {
    buf.set(expected(i, size));
    if (i % 3 === 0) promises.push(s.writePkg(buf));
    else if (i % 3 === 1) assert.equal(s.send(buf), true);
    else promises.push(s.writeBytes(buf));
    buf.fill(0xee); // the caller reuses its buffer at once
    if (i % burst === burst - 1) await new Promise((r) => setTimeout(r, 0));
  }
  await Promise.all(promises);
}

/** The parts of a fake Transport the tests below do not look at. */
const inertParts = {
  localAddr: "a",
  remoteAddr: "b",
  start() {},
  pause() {},
  resume() {},
  close() {},
};

function checkAll(got: Uint8Array[], count: number, size: number): void {
  assert.equal(got.length, count);
  for (let i = 0; i < count; i++) assert.deepEqual(got[i], expected(i, size), `message ${i} intact`);
}

describe(`borrowed buffers on message and datagram sessions (${current})`, T, () => {
  after(assertNoLeaks);

  for (const [size, burst] of [[64, 50], [64 * 1024, 40]] as const) {
    it(
      `WebSocket, both directions: ${size} B messages, ${burst} per tick, buffer refilled after each write`,
      T,
      async () => {
        const count = 120;
        const atServer: Uint8Array[] = [];
        const server = new WsServer<Uint8Array>({ port: 0, session: { outboundCap: 64 << 20 } });
        await server.runEventLoop((s) => {
          s.setEventListener({
            onMessage: (_s, m) => void atServer.push(m),
            onOpen: (s) => void writeReused(s, count, size, burst),
          });
        });
        const atClient: Uint8Array[] = [];
        const client = new WsClient<Uint8Array>({
          url: `ws://127.0.0.1:${server.port}/ws`,
          reconnectAttempts: 0,
          session: { outboundCap: 64 << 20 },
        });
        await client.runEventLoop((s) => s.setEventListener({ onMessage: (_s, m) => void atClient.push(m) }));
        try {
          const session = client.sessions[0];
          await writeReused(session, count, size, burst);
          await waitFor(() => atServer.length >= count && atClient.length >= count, 20_000, "all messages");
          checkAll(atServer, count, size);
          checkAll(atClient, count, size);
        } finally {
          await client.close();
          await server.close();
        }
      },
    );
  }

  for (const driver of udpDrivers()) {
    it(`UDP (driver ${driver}): datagrams from a reused buffer arrive intact, endpoint and client`, T, async () => {
      const count = 60;
      const size = 512;
      const atEndpoint: Uint8Array[] = [];
      const endpoint = new UdpEndpoint<Uint8Array>({ port: 0, driver });
      await endpoint.runEventLoop((s) => s.setEventListener({ onMessage: (_s, m) => void atEndpoint.push(m) }));
      const atClient: Uint8Array[] = [];
      const client = new UdpClient<Uint8Array>({ host: "127.0.0.1", port: endpoint.port, driver });
      await client.runEventLoop((s) => s.setEventListener({ onMessage: (_s, m) => void atClient.push(m) }));
      try {
        // Small rounds keep loopback from dropping datagrams; what matters is the content.
        await writeReused(client.sessions[0], count, size, 4);
        await waitFor(() => atEndpoint.length >= count, 10_000, "datagrams at the endpoint");
        checkAll(atEndpoint, count, size);
        const es = endpoint.session!;
        const buf = new Uint8Array(size);
        const to = { hostname: "127.0.0.1", port: Number(client.sessions[0].localAddr.split(":")[1]) };
        const sent: Promise<unknown>[] = [];
        for (let i = 0; i < count; i++) {
          buf.set(expected(i, size));
          sent.push(es.writePkg(buf, { to })); // queued behind one another: most wait and are copies
          buf.fill(0xee);
          if (i % 4 === 3) await Promise.all(sent);
        }
        await waitFor(() => atClient.length >= count, 10_000, "datagrams at the client");
        checkAll(atClient, count, size);
      } finally {
        await client.close();
        await endpoint.close();
      }
    });
  }

  for (const [takesCopy, via] of [[false, "enqueue"], [true, "enqueue"], [false, "fast"], [true, "fast"]] as const) {
    it(`Outbound: a borrowed message is copied unless written at once to a transport that copies (${takesCopy}, ${via})`, () => {
      const writes: Uint8Array[] = [];
      let release!: () => void;
      const transport = {
        framing: "message",
        writeTakesCopy: takesCopy,
        ...inertParts,
        write(chunk: Uint8Array | string): true | Promise<void> {
          writes.push(chunk as Uint8Array);
          return new Promise<void>((r) => (release = r)); // held: the runtime still reads the chunk
        },
      } satisfies Transport;
      const host = {
        writabilityChanged() {},
        writeFailed() {},
        writeTimedOut() {},
        wakeAt() {},
      };
      const out = new Outbound(transport, host, {
        highWaterMark: 1 << 20,
        lowWaterMark: 1 << 19,
        outboundCap: 1 << 22,
      });
      // `fast`: the path of Session.send without a writer.
      const write = (bytes: Uint8Array) =>
        via === "fast"
          ? out.enqueueBorrowedMessage(bytes, 0, 0)
          : void out.enqueue(bytes, 1, 0, 0, undefined, false, true);
      assert.equal(out.takesMessages, true);
      const first = new Uint8Array([1, 2, 3]);
      write(first);
      assert.equal(writes.length, 1, "written at once: nothing was queued");
      assert.equal(writes[0] === first, takesCopy, "handed over as is only to a transport that copies");
      const second = new Uint8Array([4, 5, 6]);
      write(second);
      assert.equal(out.pendingBytes, 6, "both counted until written");
      second.fill(0xee);
      first.fill(0xee);
      if (!takesCopy) assert.deepEqual(writes[0], new Uint8Array([1, 2, 3]));
      release();
      return waitFor(() => writes.length === 2, 1_000, "second write").then(() => {
        assert.notEqual(writes[1], second, "a queued message is a copy");
        assert.deepEqual(writes[1], new Uint8Array([4, 5, 6]));
      });
    });
  }
  it("Session.send without a writer on a message transport: size limit, cap, order and writers as writePkg", async () => {
    const writes: Array<Uint8Array | string> = [];
    let sizeLimit: number | undefined = 8;
    let hold = false;
    const releases: Array<() => void> = [];
    const transport: Transport = {
      framing: "message",
      writeTakesCopy: true,
      // A message transport with a size limit (a getter, so the test can lift it): send checks it like writePkg.
      get maxWriteSize() {
        return sizeLimit;
      },
      ...inertParts,
      write(chunk) {
        writes.push(typeof chunk === "string" ? chunk : chunk.slice());
        return hold ? new Promise<void>((r) => releases.push(r)) : true;
      },
    };
    const { adapter, connect } = fakeAdapter("fake-message");
    const errors: GettyError[] = [];
    let session: Session<Uint8Array | string> | undefined;
    const limits = { outboundCap: 16, highWaterMark: 12, lowWaterMark: 4 };
    const server = new TcpServer<Uint8Array | string>({ port: 0, adapter, session: limits });
    await server.runEventLoop((s) => {
      session = s;
      s.setEventListener({ onError: (_s, e) => void errors.push(e) });
    });
    connect(transport);
    await waitFor(() => session?.state === "open", 5_000, "the session");
    const s = session!;
    try {
      assert.equal(s.send("hi"), true);
      assert.equal(s.send(new Uint8Array([1, 2])), true);
      assert.deepEqual(writes, ["hi", new Uint8Array([1, 2])], "written at once, strings as strings");
      assert.equal(s.send(new Uint8Array(9)), false, "longer than maxWriteSize");
      assert.equal(errors.pop()?.code, "ERR_MESSAGE_TOO_LONG");
      assert.equal(s.send(42 as unknown as string), false, "neither bytes nor a string");
      assert.equal(errors.pop()?.code, "ERR_CODEC");
      // Behind a waiting write: queued (copied), in order, and the cap counts them.
      hold = true;
      const buf = new Uint8Array([7, 7, 7, 7, 7, 7, 7, 7]);
      assert.equal(s.send(buf), true);
      hold = false;
      buf.fill(0);
      assert.equal(s.send("abcd"), true);
      assert.equal(s.send(new Uint8Array(5)), false, "8 + 4 pending + 5 exceeds outboundCap 16");
      assert.equal(errors.pop()?.code, "ERR_SESSION_BLOCKED");
      assert.equal(writes.length, 3, "the next ones wait for the first");
      releases.shift()!();
      await waitFor(() => writes.length === 4, 1_000, "the queued message");
      assert.deepEqual(writes.slice(2), [new Uint8Array(8).fill(7), "abcd"]);
      // Without a size limit, a message longer than outboundCap is refused even with nothing queued.
      sizeLimit = undefined;
      assert.equal(s.pendingBytes, 0);
      assert.equal(s.send(new Uint8Array(17)), false);
      assert.equal(errors.pop()?.code, "ERR_SESSION_BLOCKED");
      assert.equal(s.send(new Uint8Array(16)), true, "up to the cap is fine");
      assert.equal(writes.length, 5);
      // With a writer, send encodes (no shortcut around it).
      s.setWriter({ write: (_s, pkg) => `<${pkg}>` });
      assert.equal(s.send("x"), true);
      assert.deepEqual(writes.slice(5), ["<x>"]);
      assert.equal(errors.length, 0, errors.map((e) => e.code).join());
    } finally {
      await server.close();
    }
  });
});
