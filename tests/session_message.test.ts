// Message- and datagram-framed sessions (the core behaviour UDP and WebSocket build on), on the memory transport.
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import {
  type Codec,
  CodecError,
  createMemorySessionPair,
  type GettyError,
  LengthFieldCodec,
  MessageTooLongError,
} from "../mod.ts";
import { PACKAGE_COPY_MAX } from "../src/codec/package_bytes.ts";
import { current } from "./helpers/runtimes.ts";
import { assertNoLeaks, bytes, pattern, text, waitFor } from "./helpers/util.ts";

const lengthCodec = new LengthFieldCodec();

/** Byte equality without assert.deepEqual (whose diff of large unequal arrays takes minutes). */
function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

describe("message framing (WebSocket-like)", () => {
  after(assertNoLeaks);

  it("keeps one package per message: text stays a string, binary stays bytes, nothing is coalesced", async () => {
    const got: Array<string | Uint8Array> = [];
    const [a, b] = await createMemorySessionPair<string | Uint8Array>({
      framing: "message",
      b: (s) => s.setEventListener({ onMessage: (_s, p) => void got.push(p) }),
    });
    await Promise.all([a.writePkg("hello"), a.writePkg(bytes("bin")), a.writePkg("")]);
    await waitFor(() => got.length === 3);
    assert.equal(got[0], "hello");
    assert.ok(got[1] instanceof Uint8Array);
    assert.equal(text(got[1] as Uint8Array), "bin");
    assert.equal(got[2], "");
    await a.close();
    await b.closed;
  });

  it("a writer returning a string sends a text message; a reader sees its UTF-8 bytes", async () => {
    type Msg = { n: number };
    const json = {
      read: (_s: unknown, data: Uint8Array) => ({ pkg: JSON.parse(text(data)) as Msg, length: data.length }),
      write: (_s: unknown, m: Msg) => JSON.stringify(m),
    };
    const raw: Array<string | Uint8Array> = [];
    const decoded: Msg[] = [];
    const [a, b] = await createMemorySessionPair<Msg>({
      framing: "message",
      a: (s) => {
        s.setPkgHandler(json);
        s.setEventListener({ onMessage: (_s, m) => void decoded.push(m) });
      },
      b: (s) => s.setEventListener({ onMessage: (_s, p) => void raw.push(p as unknown as string) }),
    });
    await a.writePkg({ n: 1 });
    await waitFor(() => raw.length === 1);
    assert.equal(raw[0], '{"n":1}', "arrived as a text message");
    await b.writePkg('{"n":2}' as unknown as Msg);
    await waitFor(() => decoded.length === 1);
    assert.deepEqual(decoded, [{ n: 2 }]);
    await a.close();
    await b.closed;
  });

  it("a message over maxMsgLen closes the session with 1009, and the peer sees the code", async () => {
    const [a, b] = await createMemorySessionPair<Uint8Array>({
      framing: "message",
      b: (s) => s.setMaxMsgLen(10),
    });
    await a.writePkg(new Uint8Array(11));
    const info = await b.closed;
    assert.ok(info.error instanceof MessageTooLongError);
    assert.equal(info.code, 1009);
    const peer = await a.closed;
    assert.equal(peer.initiator, "peer");
    assert.equal(peer.code, 1009);
    assert.equal(peer.reason, "message too big");
  });

  it("a message the codec rejects closes with 1007; a normal close sends 1000", async () => {
    const [a, b] = await createMemorySessionPair<Uint8Array>({
      framing: "message",
      b: (s) => s.setPkgHandler(new LengthFieldCodec()),
    });
    await a.writePkg(bytes("no length header here"));
    const info = await b.closed;
    assert.equal(info.code, 1007);
    assert.equal((await a.closed).code, 1007);

    const [c, d] = await createMemorySessionPair<Uint8Array>({ framing: "message" });
    const mine = await c.close();
    assert.equal(mine.code, 1000);
    assert.deepEqual(await d.closed, { initiator: "peer", code: 1000, reason: "" });
  });
});

describe("datagram framing (UDP-like)", () => {
  after(assertNoLeaks);

  it("drops bad datagrams with onError and keeps serving", async () => {
    const errors: GettyError[] = [];
    const got: Uint8Array[] = [];
    const [a, b] = await createMemorySessionPair<Uint8Array>({
      framing: "datagram",
      b: (s) => {
        s.setPkgHandler(new LengthFieldCodec());
        s.setMaxMsgLen(100);
        s.setEventListener({ onMessage: (_s, p) => void got.push(p), onError: (_s, e) => void errors.push(e) });
      },
    });
    const frame = (body: Uint8Array) => new LengthFieldCodec().write(undefined, body);
    await a.writeBytes(new Uint8Array(0)); // empty
    await a.writeBytes(new Uint8Array(200)); // over maxMsgLen
    await a.writeBytes(new Uint8Array([0, 0, 0, 9, 1])); // header disagrees with the datagram
    await a.writeBytes(new Uint8Array([...frame(bytes("ok")), 1, 2])); // trailing bytes
    await a.writeBytes(frame(bytes("good")));
    await waitFor(() => got.length === 1);
    assert.equal(text(got[0]), "good");
    assert.deepEqual(errors.map((e) => e.code), ["ERR_CODEC", "ERR_MESSAGE_TOO_LONG", "ERR_CODEC", "ERR_CODEC"]);
    assert.ok(errors[0] instanceof CodecError);
    assert.equal(b.state, "open");
    await a.close();
    await b.closed;
  });

  it("encodes datagrams in place with an encodeInto writer (on Bun only above PACKAGE_COPY_MAX bytes)", async () => {
    const calls = { write: 0, encodeInto: 0 };
    const counting: Codec<Uint8Array> = {
      read: (s, data) => lengthCodec.read(s, data),
      write: (s, pkg) => (calls.write++, lengthCodec.write(s, pkg)),
      encodedLength: (s, pkg) => lengthCodec.encodedLength(s, pkg),
      encodeInto: (s, pkg, target, offset) => (calls.encodeInto++, lengthCodec.encodeInto(s, pkg, target, offset)),
    };
    const got: Uint8Array[] = [];
    const [a, b] = await createMemorySessionPair<Uint8Array>({
      framing: "datagram",
      a: (s) => s.setPkgHandler(counting),
      b: (s) => {
        s.setPkgHandler(lengthCodec);
        s.setEventListener({ onMessage: (_s, p) => void got.push(p) });
      },
    });
    const sizes = [60, 252, 253, 1000, 40_000];
    for (const [i, n] of sizes.entries()) assert.equal(a.send(pattern(n, i)), true);
    await waitFor(() => got.length === sizes.length);
    sizes.forEach((n, i) => assert.ok(equalBytes(got[i], pattern(n, i)), `package ${i} (${n} bytes) intact`));
    // Encoded sizes are n + 4: on Bun those up to 256 bytes are written into buffers of their own.
    const small = sizes.filter((n) => n + 4 <= PACKAGE_COPY_MAX).length;
    assert.deepEqual(calls, { write: small, encodeInto: sizes.length - small });
    assert.equal(small, current === "bun" ? 2 : 0);
    await a.close();
    await b.closed;
  });

  it("zeroes a datagram's reservation in a pooled slab for a writer not known to fill it", async () => {
    // The first writer fills its datagrams with 0xee; the second reserves 300 bytes but writes only the length.
    const lazy: Codec<Uint8Array> = {
      read: (s, data) => lengthCodec.read(s, data),
      write: () => new Uint8Array(300),
      encodedLength: () => 300,
      encodeInto: (_s, _pkg, target, offset) => void target.set([0, 0, 1, 40], offset),
    };
    const got: Uint8Array[] = [];
    const [a, b] = await createMemorySessionPair<Uint8Array>({
      framing: "datagram",
      b: (s) => s.setEventListener({ onMessage: (_s, p) => void got.push(p) }),
    });
    a.setPkgHandler(lengthCodec);
    for (let i = 0; i < 3; i++) a.send(new Uint8Array(296).fill(0xee));
    await waitFor(() => got.length === 3);
    a.setPkgHandler(lazy);
    for (let i = 0; i < 3; i++) a.send(new Uint8Array(296));
    await waitFor(() => got.length === 6);
    for (let i = 3; i < 6; i++) {
      assert.deepEqual(got[i].subarray(0, 4), new Uint8Array([0, 0, 1, 40]));
      assert.ok(got[i].subarray(4).every((x) => x === 0), `datagram ${i}: zeros, not 0xee`);
    }
    await a.close();
    await b.closed;
  });

  it("writePkg takes an options object with a timeout", async () => {
    const [a, b] = await createMemorySessionPair<Uint8Array>({ framing: "datagram" });
    assert.deepEqual(await a.writePkg(bytes("x"), { timeoutMs: 1000 }), { total: 1, sent: 1 });
    await a.close();
    await b.closed;
  });
});

describe("message ownership", () => {
  after(assertNoLeaks);

  it("packages stay intact when the transport reuses its read buffer", async () => {
    // A transport that delivers every datagram in the same reused buffer, as a Deno read loop would.
    const { EndpointCore } = await import("../src/endpoint_core.ts");
    const shared = new Uint8Array(16);
    let sink: { data(c: Uint8Array): void } | undefined;
    const transport = {
      framing: "datagram" as const,
      localAddr: "x:1",
      remoteAddr: "y:2",
      start: (s: { data(c: Uint8Array): void }) => void (sink = s),
      pause() {},
      resume() {},
      write: () => true as const,
      close() {},
    };
    const endpoint = { id: 0, endPointType: "MEMORY" as const, isClosed: () => false, close: async () => {} };
    const core = new EndpointCore<Uint8Array>("test", endpoint, {}, "t");
    const got: Uint8Array[] = [];
    const session = await core.open(transport, (s) => {
      s.setPkgHandler(new LengthFieldCodec());
      s.setEventListener({ onMessage: (_s, p) => void got.push(p) });
    });
    for (const v of [1, 2, 3]) {
      shared.set([0, 0, 0, 1, v]);
      sink!.data(shared.subarray(0, 5));
    }
    assert.deepEqual(got.map((p) => p[0]), [1, 2, 3]);
    await session!.close();
  });
});
