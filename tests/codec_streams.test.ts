import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  decodeStream,
  type DecodeStreamOptions,
  DelimiterCodec,
  encodeStream,
  LengthFieldCodec,
  LineCodec,
} from "../src/codec/mod.ts";
import { CodecError, InvalidOptionError, MessageTooLongError } from "../src/errors.ts";
import type { Reader, ReadResult } from "../src/codec.ts";

const te = new TextEncoder();
const u8 = (...bytes: number[]): Uint8Array => new Uint8Array(bytes);

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function source<T>(items: T[]): ReadableStream<T> {
  return new ReadableStream<T>({
    start(controller) {
      for (const item of items) controller.enqueue(item);
      controller.close();
    },
  });
}

async function run<I, O>(stream: TransformStream<I, O>, inputs: I[]): Promise<O[]> {
  const out: O[] = [];
  await source(inputs).pipeThrough(stream).pipeTo(new WritableStream({ write: (o) => void out.push(o) }));
  return out;
}

/** A reader that always answers `result` (for testing how decodeStream checks readers). */
const fixed = (result: ReadResult<string>): Reader<string> => ({ read: () => result });

const lengthField = new LengthFieldCodec({ lengthFieldLength: 2 });
const pkg = (n: number, size: number): Uint8Array => new Uint8Array(size).fill(n & 0xff);

describe("decodeStream", () => {
  it("emits many packages from one chunk", async () => {
    const pkgs = Array.from({ length: 100 }, (_, i) => pkg(i, i % 7));
    const chunk = concat(pkgs.map((p) => lengthField.write(undefined, p)));
    assert.deepEqual(await run(decodeStream(lengthField), [chunk]), pkgs);
  });

  it("assembles one package from many chunks", async () => {
    const big = Uint8Array.from({ length: 5000 }, (_, i) => i * 31);
    const frame = lengthField.write(undefined, big);
    const chunks = Array.from({ length: Math.ceil(frame.length / 7) }, (_, i) => frame.slice(i * 7, i * 7 + 7));
    const out = await run(decodeStream(lengthField), chunks);
    assert.equal(out.length, 1);
    assert.deepEqual(out[0], big);
  });

  it("handles frames straddling chunk boundaries, one byte at a time", async () => {
    const pkgs = [pkg(1, 3), pkg(2, 0), pkg(3, 300), pkg(4, 1)];
    const bytes = concat(pkgs.map((p) => lengthField.write(undefined, p)));
    assert.deepEqual(await run(decodeStream(lengthField), Array.from(bytes, (b) => u8(b))), pkgs);
  });

  it("keeps data intact while its buffer grows and compacts over a long stream", async () => {
    const pkgs = Array.from({ length: 3000 }, (_, i) => Uint8Array.from({ length: i % 23 }, (_, j) => i + j));
    const bytes = concat(pkgs.map((p) => lengthField.write(undefined, p)));
    for (const size of [13, 1000, 5000]) {
      const chunks = Array.from(
        { length: Math.ceil(bytes.length / size) },
        (_, i) => bytes.slice(i * size, (i + 1) * size),
      );
      assert.deepEqual(await run(decodeStream(lengthField), chunks), pkgs, `chunks of ${size} bytes`);
    }
  });

  it("emits packages that do not alias the input chunks", async () => {
    const chunk = concat([lengthField.write(undefined, u8(1, 2)), lengthField.write(undefined, u8(3))]);
    const out = await run(decodeStream(lengthField), [chunk.subarray(0, 3), chunk.subarray(3)]);
    chunk.fill(0xee);
    assert.deepEqual(out, [u8(1, 2), u8(3)]);
  });

  it("errors with a CodecError when the stream ends inside a frame", async () => {
    const frame = lengthField.write(undefined, u8(1, 2, 3, 4));
    await assert.rejects(
      run(decodeStream(lengthField), [frame.subarray(0, 5)]),
      (e: unknown) => e instanceof CodecError && e.message === "stream ended inside a frame (5 bytes pending)",
    );
    await assert.rejects(run(decodeStream(new LineCodec()), [te.encode("a\nbc")]), /\(2 bytes pending\)/);
  });

  it("accepts an empty stream and empty chunks", async () => {
    assert.deepEqual(await run(decodeStream(lengthField), []), []);
    assert.deepEqual(await run(decodeStream(new LineCodec()), [u8(), te.encode("x\n"), u8()]), ["x"]);
  });

  it("errors with MessageTooLongError as soon as a declared length exceeds maxMsgLen", async () => {
    const stream = decodeStream(new LengthFieldCodec(), { maxMsgLen: 100 });
    const writer = stream.writable.getWriter();
    const reader = stream.readable.getReader();
    writer.write(u8(0, 0, 0, 97)).catch(() => {});
    await assert.rejects(reader.read(), (e: unknown) => e instanceof MessageTooLongError && e.length === 101);
  });

  it("accepts packages of exactly maxMsgLen bytes", async () => {
    const frame = new LengthFieldCodec().write(undefined, pkg(1, 96));
    assert.deepEqual(await run(decodeStream(new LengthFieldCodec(), { maxMsgLen: 100 }), [frame]), [pkg(1, 96)]);
  });

  it("errors with MessageTooLongError when undecoded data grows past maxMsgLen", async () => {
    const line = new LineCodec();
    await assert.rejects(
      run(decodeStream(line, { maxMsgLen: 5 }), [te.encode("abc"), te.encode("def")]),
      (e: unknown) => e instanceof MessageTooLongError && e.length === 6 && e.max === 5,
    );
    assert.deepEqual(await run(decodeStream(line, { maxMsgLen: 5 }), [te.encode("abc"), te.encode("d\n")]), ["abcd"]);
  });

  it("errors when a decoded package used more than maxMsgLen bytes", async () => {
    await assert.rejects(
      run(decodeStream(new LineCodec(), { maxMsgLen: 3 }), [te.encode("abc\n")]),
      MessageTooLongError,
    );
  });

  it("rejects invalid reader results with a CodecError", async () => {
    const bad: ReadResult<string>[] = [
      { pkg: "x", length: 0 },
      { pkg: "x", length: 4 },
      { pkg: "x", length: 1.5 },
      { declared: 3 },
      { declared: 2.5 },
    ];
    for (const result of bad) {
      await assert.rejects(run(decodeStream(fixed(result)), [u8(1, 2, 3)]), CodecError, JSON.stringify(result));
    }
  });

  it("propagates what the reader throws", async () => {
    const boom = new Error("boom");
    const reader: Reader<string> = {
      read: () => {
        throw boom;
      },
    };
    await assert.rejects(run(decodeStream(reader), [u8(1)]), (e: unknown) => e === boom);
  });

  it("passes undefined as the session", async () => {
    const sessions: unknown[] = [];
    const reader: Reader<number> = {
      read: (session, data) => {
        sessions.push(session);
        return { pkg: data[0], length: 1 };
      },
    };
    assert.deepEqual(await run(decodeStream(reader), [u8(7, 8)]), [7, 8]);
    assert.deepEqual(sessions, [undefined, undefined]);
  });

  it("validates its options", () => {
    const bad = (options: unknown, option: string) =>
      assert.throws(
        () => decodeStream(lengthField, options as DecodeStreamOptions),
        (e: unknown) => e instanceof InvalidOptionError && e.option === option,
      );
    bad({ maxMsgLen: 0 }, "maxMsgLen");
    bad({ maxMsgLen: 1.5 }, "maxMsgLen");
    bad({ maxLen: 10 }, "decodeStream.maxLen");
  });
});

describe("encodeStream", () => {
  it("encodes each package with the writer", async () => {
    const out = await run(encodeStream(new LineCodec()), ["a", "", "é"]);
    assert.deepEqual(out, [te.encode("a\n"), te.encode("\n"), te.encode("é\n")]);
  });

  it("round-trips through decodeStream", async () => {
    const codec = new DelimiterCodec({ delimiters: u8(0) });
    const pkgs = [u8(1, 2), u8(), u8(3)];
    const decoded: Uint8Array[] = [];
    await source(pkgs).pipeThrough(encodeStream(codec)).pipeThrough(decodeStream(codec)).pipeTo(
      new WritableStream({ write: (p) => void decoded.push(p) }),
    );
    assert.deepEqual(decoded, pkgs);
  });

  it("errors the stream with what the writer throws", async () => {
    await assert.rejects(run(encodeStream(new LineCodec()), ["ok", "bad\n"]), CodecError);
  });
});
