// The `reuseReadBuffer` session option: a transport may read over the bytes of a read once the session says it is
// done with them (TransportSink.data returns true). Whatever the session keeps itself (a partial frame, queued
// packages, `readable`, an async onMessage, a write that has not left) must stay intact. A fake transport that
// scribbles over every chunk it may reuse checks the session's side deterministically on both runtimes; real
// loopback sockets check the Deno adapter (which reuses its read buffer) and Bun's (which ignores the answer).
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import {
  InvalidOptionError,
  LengthFieldCodec,
  type Session,
  type SessionOptions,
  TcpClient,
  TcpServer,
  type Writer,
} from "../mod.ts";
import type { Transport, TransportSink } from "../src/transport.ts";
import { fakeAdapter } from "./helpers/fake_adapter.ts";
import { current } from "./helpers/runtimes.ts";
import { assertNoLeaks, pattern, sleep, waitFor } from "./helpers/util.ts";

const codec = new LengthFieldCodec();
const T = { timeout: 60_000 };

/** `n` framed packages: package `i` is `pattern(size(i), i)` behind its 4-byte length. */
function frames(n: number, size: (i: number) => number): { wire: Uint8Array; pkgs: Uint8Array[] } {
  const pkgs = Array.from({ length: n }, (_, i) => pattern(size(i), i));
  const parts = pkgs.map((p) => codec.write(undefined, p));
  const wire = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let off = 0;
  for (const p of parts) {
    wire.set(p, off);
    off += p.length;
  }
  return { wire, pkgs };
}

/**
 * A stream transport that delivers bytes the way a reusing adapter does: every chunk is a view of ONE buffer, and
 * when the sink answers true the chunk's bytes are overwritten (0xEE) before the next chunk lands in the same place.
 * Writes stay pending until `settle()`, and what they carry is read only then (like a write the kernel is slow to
 * take).
 */
class ScribblingTransport implements Transport {
  readonly framing = "stream";
  readonly retainableChunks = true;
  readonly reclaimsReleasedChunks = true;
  readonly localAddr = "127.0.0.1:1";
  readonly remoteAddr = "127.0.0.1:2";
  sink?: TransportSink;
  /** The sink's answer for every chunk. */
  readonly answers: Array<boolean | void> = [];
  /** Bytes written, captured when the write settles. */
  readonly written: Uint8Array[] = [];
  #buf = new Uint8Array(1 << 16);
  #used = 0;
  #pending: Array<{ chunk: Uint8Array; resolve: () => void }> = [];

  start(sink: TransportSink): void {
    this.sink = sink;
  }
  pause(): void {}
  resume(): void {}
  close(): void {}

  write(chunk: Uint8Array): Promise<void> {
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#pending.push({ chunk, resolve });
    return promise;
  }

  /** Completes the pending writes, capturing their bytes now. */
  settle(): void {
    for (const p of this.#pending.splice(0)) {
      this.written.push(p.chunk.slice());
      p.resolve();
    }
  }

  /** Settles writes until `bytes` were written in all. */
  async drain(bytes: number): Promise<Uint8Array> {
    await waitFor(
      () => {
        this.settle();
        return this.written.reduce((a, c) => a + c.length, 0) >= bytes;
      },
      5_000,
      `${bytes} bytes written`,
    );
    const all = new Uint8Array(bytes);
    let off = 0;
    for (const c of this.written) {
      all.set(c, off);
      off += c.length;
    }
    return all;
  }

  /** Delivers `bytes` as one read. */
  read(bytes: Uint8Array): void {
    if (this.#used + bytes.length > this.#buf.length) {
      this.#buf = new Uint8Array(Math.max(1 << 16, bytes.length));
      this.#used = 0;
    }
    const start = this.#used;
    this.#buf.set(bytes, start);
    const chunk = this.#buf.subarray(start, start + bytes.length);
    this.#used = start + bytes.length;
    const answer = this.sink!.data(chunk);
    this.answers.push(answer);
    if (answer === true) {
      chunk.fill(0xee); // the next read goes over these bytes
      this.#used = start;
    }
  }

  /** Delivers the framed `pkgs` of `wire` one frame per read. */
  readFrames(wire: Uint8Array, pkgs: Uint8Array[]): void {
    let off = 0;
    for (const p of pkgs) {
      this.read(wire.subarray(off, off + 4 + p.length));
      off += 4 + p.length;
    }
  }

  /** Delivers `wire` in reads of `size` bytes (the last may be shorter). */
  readIn(wire: Uint8Array, size: number): void {
    for (let off = 0; off < wire.length; off += size) this.read(wire.subarray(off, off + size));
  }
}

/** A server on a fake adapter: one session per `connect()`, on a {@link ScribblingTransport}. */
async function fakeServer(
  options: SessionOptions,
  setup: (s: Session<Uint8Array>) => void,
): Promise<{ server: TcpServer<Uint8Array>; connect: () => Promise<ScribblingTransport> }> {
  const { adapter, connect: onConnection } = fakeAdapter("scribbling");
  const server = new TcpServer<Uint8Array>({ port: 0, adapter, session: options });
  await server.runEventLoop(setup);
  return {
    server,
    connect: async () => {
      const t = new ScribblingTransport();
      onConnection(t);
      await waitFor(() => t.sink !== undefined, 2_000, "session started");
      return t;
    },
  };
}

/** Splits the bytes of framed packages back into packages. */
function unframe(chunks: Uint8Array[]): Uint8Array[] {
  const all = new Uint8Array(chunks.reduce((a, c) => a + c.length, 0));
  let off = 0;
  for (const c of chunks) {
    all.set(c, off);
    off += c.length;
  }
  const out: Uint8Array[] = [];
  for (let i = 0; i < all.length;) {
    const n = new DataView(all.buffer, all.byteOffset + i).getUint32(0);
    out.push(all.slice(i + 4, i + 4 + n));
    i += 4 + n;
  }
  return out;
}

describe(`reuseReadBuffer: what the session keeps stays intact (${current}, fake reusing transport)`, T, () => {
  after(assertNoLeaks);

  it("is off by default: chunks are never handed back, kept packages stay intact", async () => {
    const kept: Uint8Array[] = [];
    const { server, connect } = await fakeServer({}, (s) => {
      s.setPkgHandler(codec);
      s.setEventListener({ onMessage: (_s, pkg) => void kept.push(pkg) });
    });
    const t = await connect();
    const { wire, pkgs } = frames(40, (i) => 1 + (i * 37) % 300);
    t.readIn(wire, 97);
    assert.equal(t.answers.length, Math.ceil(wire.length / 97));
    assert.ok(t.answers.every((a) => a !== true), "no chunk is handed back without the option");
    assert.deepEqual(kept, pkgs);
    await server.close();
  });

  it("hands back every read a synchronous handler is done with; echoed bytes intact", async () => {
    const { server, connect } = await fakeServer({ reuseReadBuffer: true }, (s) => {
      s.setPkgHandler(codec);
      s.setEventListener({ onMessage: (s, pkg) => void s.send(pkg) });
    });
    const t = await connect();
    const { wire, pkgs } = frames(64, (i) => 1 + (i * 53) % 200);
    // One read per 8 whole packages: each read ends on a frame boundary.
    let off = 0;
    for (let i = 0; i < 64; i += 8) {
      let end = off;
      for (let k = i; k < i + 8; k++) end += 4 + pkgs[k].length;
      t.read(wire.subarray(off, end)); // the echoes are still pending when the bytes are scribbled over
      off = end;
      await sleep(0);
    }
    assert.deepEqual(t.answers, Array(8).fill(true));
    assert.deepEqual(unframe([await t.drain(wire.length)]), pkgs);
    await server.close();
  });

  it("copies a partial frame out of the read: reads split anywhere are handed back and still decode intact", async () => {
    const got: Uint8Array[] = [];
    const { server, connect } = await fakeServer({ reuseReadBuffer: true }, (s) => {
      s.setPkgHandler(codec);
      s.setEventListener({ onMessage: (_s, pkg) => void got.push(pkg.slice()) });
    });
    const t = await connect();
    const { wire, pkgs } = frames(50, (i) => (i % 7 === 0 ? 3000 : 1 + (i * 29) % 150));
    for (const size of [1, 5, 13, 64, 1000, 4099]) {
      got.length = 0;
      t.readIn(wire, size);
      assert.deepEqual(got, pkgs, `reads of ${size} bytes`);
    }
    // The transport writes over every read handed back, so intact packages show the partial frames were copied.
    assert.ok(t.answers.length > 0 && t.answers.every((a) => a === true), "every read is handed back");
    // A frame over 64 KiB is not copied piece by piece: the reads holding its start are kept until it is complete.
    const big = frames(3, (i) => 70_000 + i);
    t.answers.length = 0;
    got.length = 0;
    t.readIn(big.wire, 10_000);
    assert.deepEqual(got, big.pkgs);
    assert.ok(t.answers.some((a) => a !== true), "reads holding part of a frame over 64 KiB are kept");
    await server.close();
  });

  it("keeps the packages of an async onMessage and those queued behind it", async () => {
    const got: Uint8Array[] = [];
    const { server, connect } = await fakeServer({ reuseReadBuffer: true }, (s) => {
      s.setPkgHandler(codec);
      s.setEventListener({
        onMessage: async (_s, pkg) => {
          await sleep(1);
          got.push(pkg.slice()); // read after the read that delivered it has returned
        },
      });
    });
    const t = await connect();
    const { wire, pkgs } = frames(30, (i) => 10 + i);
    t.readFrames(wire, pkgs);
    await waitFor(() => got.length === 30, 5_000, "all handled");
    assert.deepEqual(got, pkgs);
    assert.ok(t.answers.every((a) => a !== true), "no read is handed back while a handler may still use it");
    // Split reads: packages completed in the session's own buffer are kept as well (it is not reused under them).
    got.length = 0;
    t.readIn(wire, 7);
    await waitFor(() => got.length === 30, 5_000, "all handled");
    assert.deepEqual(got, pkgs);
    await server.close();
  });

  it("keeps the packages read through session.readable", async () => {
    let session: Session<Uint8Array> | undefined;
    const { server, connect } = await fakeServer({ reuseReadBuffer: true }, (s) => {
      s.setPkgHandler(codec);
      session = s;
    });
    const t = await connect();
    const reader = session!.readable.getReader();
    const { wire, pkgs } = frames(20, (i) => 5 + i * 3);
    t.readIn(wire, 40);
    const got: Uint8Array[] = [];
    while (got.length < 20) got.push((await reader.read()).value!);
    reader.releaseLock();
    // Read after every read was made: a read holding one of them that had been handed back would be written over.
    assert.deepEqual(got, pkgs);
    assert.ok(t.answers.includes(false), "reads whose packages wait in readable are kept");
    await server.close();
  });

  it("copies a writer's view of the package when the write has not left yet", async () => {
    // Writers without encodeInto (the slow write path): one returns new bytes (a control), one a view of the
    // package it was given, i.e. of the read buffer.
    const freshWriter: Writer<Uint8Array> = { write: (_s, pkg) => codec.write(undefined, pkg) };
    const aliasWriter: Writer<Uint8Array> = { write: (_s, pkg) => pkg.subarray(0) };
    for (const [name, writer, framed] of [["fresh", freshWriter, true], ["alias", aliasWriter, false]] as const) {
      const { server, connect } = await fakeServer({ reuseReadBuffer: true }, (s) => {
        s.setReader(codec);
        s.setWriter(writer);
        s.setEventListener({ onMessage: (s, pkg) => void s.send(pkg) });
      });
      const t = await connect();
      const { wire, pkgs } = frames(16, (i) => 8 + i);
      // One package per read, so each echo is a write of its own, pending (or queued) when its read returns and
      // the chunk is scribbled over.
      t.readFrames(wire, pkgs);
      assert.deepEqual(t.answers, Array(16).fill(true));
      const expected = framed ? wire : new Uint8Array(pkgs.flatMap((p) => [...p]));
      assert.deepEqual(await t.drain(expected.length), expected, `${name} writer`);
      await server.close();
    }
  });

  it("rejects a reuseReadBuffer that is not a boolean, naming the option", () => {
    assert.throws(
      () => new TcpServer({ port: 0, session: { reuseReadBuffer: 1 as unknown as boolean } }),
      (e: unknown) => e instanceof InvalidOptionError && e.message.includes("TcpServer.session.reuseReadBuffer"),
    );
  });
});

describe(`reuseReadBuffer on real loopback sockets (${current})`, T, () => {
  after(assertNoLeaks);

  /** Echo server with the option; records where each package's bytes were. */
  async function echo(where: Array<[ArrayBufferLike, number]>) {
    const server = new TcpServer<Uint8Array>({ port: 0, session: { reuseReadBuffer: true } });
    await server.runEventLoop((s) => {
      s.setPkgHandler(codec);
      s.setEventListener({
        onMessage: (s, pkg) => {
          where.push([pkg.buffer, pkg.byteOffset]);
          s.send(pkg);
        },
      });
    });
    return server;
  }

  it("ping-pong: every echo intact; on Deno the reads reuse one place of a buffer sized to them", async () => {
    const where: Array<[ArrayBufferLike, number]> = [];
    const server = await echo(where);
    const client = new TcpClient<Uint8Array>({
      host: "127.0.0.1",
      port: server.port,
      reconnectAttempts: 0,
      session: { outboundCap: 64 << 20 },
    });
    try {
      const got: Uint8Array[] = [];
      await client.runEventLoop((s) => {
        s.setPkgHandler(codec);
        s.setEventListener({ onMessage: (_s, p) => void got.push(p) });
      });
      const s = client.sessions[0];
      const roundTrip = async (pkg: Uint8Array) => {
        const n = got.length;
        await s.writePkg(pkg);
        await waitFor(() => got.length === n + 1, 5_000, `echo ${n}`);
        assert.deepEqual(got[n], pkg);
      };
      // A 300 KB package grows the read buffer; then one small package per read (each waits for its echo).
      await roundTrip(pattern(300_000, 99));
      for (let i = 0; i < 60; i++) await roundTrip(pattern(100 + i, i));
      const small = where.slice(1);
      // The buffer shrinks back to 8 KiB once 16 reads in a row stayed small (checked every 16 reads), and every
      // read lands in the same place of it.
      const last = small[small.length - 1];
      const same = small.filter(([b, o]) => b === last[0] && o === last[1]).length;
      if (current === "deno") {
        assert.equal(last[0].byteLength, 8 * 1024, "the reused buffer follows the traffic down to 8 KiB");
        assert.ok(same >= 20, `Deno reads the packages into the same bytes (${same} of 60)`);
      } else {
        assert.equal(same, 1, "on Bun every read is a buffer of its own (and small packages are copies)");
      }
    } finally {
      await client.close();
      await server.close();
    }
  });

  it("pipelined packages of mixed sizes (up to 200 KB, split across reads) echo intact", async () => {
    const server = await echo([]);
    const got: Uint8Array[] = [];
    const client = new TcpClient<Uint8Array>({
      host: "127.0.0.1",
      port: server.port,
      reconnectAttempts: 0,
      session: { outboundCap: 64 << 20 },
    });
    await client.runEventLoop((s) => {
      s.setPkgHandler(codec);
      s.setEventListener({ onMessage: (_s, p) => void got.push(p) });
    });
    const s = client.sessions[0];
    const pkgs = Array.from({ length: 300 }, (_, i) => pattern(i % 50 === 0 ? 200_000 : 1 + (i * 61) % 2000, i));
    for (const p of pkgs) assert.equal(s.send(p), true);
    await waitFor(() => got.length === pkgs.length, 20_000, "all echoes");
    for (let i = 0; i < pkgs.length; i++) assert.deepEqual(got[i], pkgs[i], `package ${i}`);
    await client.close();
    await server.close();
  });
});
