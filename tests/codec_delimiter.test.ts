import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { decodeStream, DelimiterCodec, type DelimiterCodecOptions, LineCodec } from "../src/codec/mod.ts";
import { CodecError, InvalidOptionError, MessageTooLongError } from "../src/errors.ts";
import type { Reader, ReadResult } from "../src/codec.ts";
import { PACKAGE_COPY_MAX } from "../src/codec/package_bytes.ts";

const te = new TextEncoder();
const td = new TextDecoder();
const b = (s: string): Uint8Array => te.encode(s);
const u8 = (...bytes: number[]): Uint8Array => new Uint8Array(bytes);

/** The package of `result` as text (bytes) or as is (string), with its length. */
function pkgOf(result: ReadResult<Uint8Array | string>): [string, number] {
  assert.ok(result !== undefined && "pkg" in result, `expected a package, got ${JSON.stringify(result)}`);
  return [typeof result.pkg === "string" ? result.pkg : td.decode(result.pkg), result.length];
}

async function decodeAll<P>(reader: Reader<P>, chunks: Uint8Array[]): Promise<P[]> {
  const out: P[] = [];
  const input = new ReadableStream<Uint8Array>({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(chunk);
      controller.close();
    },
  });
  await input.pipeThrough(decodeStream(reader)).pipeTo(new WritableStream({ write: (p) => void out.push(p) }));
  return out;
}

function invalidOption(make: () => unknown, option: string): void {
  assert.throws(make, (e: unknown) => e instanceof InvalidOptionError && e.option === option);
}

describe("DelimiterCodec", () => {
  it("views packages above PACKAGE_COPY_MAX and copies smaller ones on Bun (see codec/package_bytes.ts)", () => {
    const codec = new DelimiterCodec();
    for (const size of [3, 300]) {
      const data = b("x".repeat(size) + "\n");
      const pkg = (codec.read(undefined, data) as { pkg: Uint8Array }).pkg;
      assert.equal(td.decode(pkg), "x".repeat(size));
      assert.equal(pkg.buffer === data.buffer, size > PACKAGE_COPY_MAX, `${size} bytes: view or copy`);
    }
  });

  it("defaults to \\n, strips it and leaves the rest", () => {
    const codec = new DelimiterCodec();
    assert.deepEqual(pkgOf(codec.read(undefined, b("abc\ndef\n"))), ["abc", 4]);
    assert.deepEqual(pkgOf(codec.read(undefined, b("\nx"))), ["", 1]);
    assert.equal(codec.read(undefined, b("abc")), undefined);
    assert.equal(codec.read(undefined, u8()), undefined);
  });

  it("keeps the delimiter with stripDelimiter false", () => {
    const codec = new DelimiterCodec({ delimiters: "\r\n", stripDelimiter: false });
    assert.deepEqual(pkgOf(codec.read(undefined, b("ab\r\ncd"))), ["ab\r\n", 4]);
  });

  it("accepts Uint8Array and multi-byte UTF-8 delimiters", () => {
    const nul = new DelimiterCodec({ delimiters: u8(0) });
    const result = nul.read(undefined, u8(1, 2, 0, 3));
    assert.deepEqual(result, { pkg: u8(1, 2), length: 3 });
    const arrow = new DelimiterCodec({ delimiters: "→" });
    assert.deepEqual(pkgOf(arrow.read(undefined, b("a→b"))), ["a", 4]);
    assert.deepEqual(arrow.write(undefined, b("x")), u8(0x78, 0xe2, 0x86, 0x92));
  });

  it("ends the frame at the earliest of several delimiters", () => {
    const codec = new DelimiterCodec({ delimiters: ["XY", "Z"] });
    assert.deepEqual(pkgOf(codec.read(undefined, b("aZbXY"))), ["a", 2]);
    assert.deepEqual(pkgOf(codec.read(undefined, b("aXYbZ"))), ["a", 3]);
    const lines = new DelimiterCodec({ delimiters: ["\r\n", "\n"] });
    assert.deepEqual(pkgOf(lines.read(undefined, b("a\nb\r\n"))), ["a", 2]);
    assert.deepEqual(pkgOf(lines.read(undefined, b("b\r\nc\n"))), ["b", 3]);
  });

  it("prefers the longest delimiter at the same position, waiting if it may still complete", () => {
    const codec = new DelimiterCodec({ delimiters: ["\r", "\r\n"] });
    assert.deepEqual(pkgOf(codec.read(undefined, b("a\r\nb"))), ["a", 3]);
    assert.deepEqual(pkgOf(codec.read(undefined, b("a\rb"))), ["a", 2]);
    assert.equal(codec.read(undefined, b("a\r")), undefined);
  });

  it("waits when a delimiter starting earlier is cut off at the end of the data", () => {
    const codec = new DelimiterCodec({ delimiters: ["y", "xyz"] });
    assert.equal(codec.read(undefined, b("axy")), undefined);
    assert.deepEqual(pkgOf(codec.read(undefined, b("axyz"))), ["a", 4]);
    assert.deepEqual(pkgOf(codec.read(undefined, b("axyq"))), ["ax", 3]);
  });

  it("fails fast on maxFrameLength without a delimiter", () => {
    const codec = new DelimiterCodec({ maxFrameLength: 4 });
    assert.equal(codec.read(undefined, b("abcd")), undefined);
    assert.throws(
      () => codec.read(undefined, b("abcde")),
      (e: unknown) => e instanceof MessageTooLongError && e.length === 5 && e.max === 4,
    );
    assert.deepEqual(pkgOf(codec.read(undefined, b("abcd\n"))), ["abcd", 5]);
    assert.throws(() => codec.read(undefined, b("abcde\n")), MessageTooLongError);
  });

  it("maxFrameLength leaves room for a multi-byte delimiter that has only started", () => {
    const codec = new DelimiterCodec({ delimiters: "\r\n", maxFrameLength: 3 });
    assert.equal(codec.read(undefined, b("abc\r")), undefined);
    assert.deepEqual(pkgOf(codec.read(undefined, b("abc\r\n"))), ["abc", 5]);
    assert.throws(() => codec.read(undefined, b("abcde")), MessageTooLongError);
  });

  it("writes the package followed by the first delimiter", () => {
    const codec = new DelimiterCodec({ delimiters: ["\r\n", "\n"] });
    const pkg = b("hi");
    const out = codec.write(undefined, pkg);
    pkg.fill(0);
    assert.equal(td.decode(out), "hi\r\n");
    assert.equal(td.decode(new DelimiterCodec().write(undefined, u8())), "\n");
  });

  it("refuses to write what would not read back as the same package", () => {
    assert.throws(() => new DelimiterCodec().write(undefined, b("a\nb")), CodecError);
    assert.throws(() => new DelimiterCodec({ delimiters: ["\r\n", "\n"] }).write(undefined, b("a\nb")), CodecError);
    assert.throws(() => new DelimiterCodec({ delimiters: "aa" }).write(undefined, b("xa")), CodecError);
    assert.throws(() => new DelimiterCodec({ delimiters: ["\r", "\r\n"] }).write(undefined, b("x")), CodecError);
  });

  it("with stripDelimiter false writes a complete frame as is and rejects anything else", () => {
    const codec = new DelimiterCodec({ stripDelimiter: false });
    assert.equal(td.decode(codec.write(undefined, b("abc\n"))), "abc\n");
    assert.throws(() => codec.write(undefined, b("abc")), CodecError);
    assert.throws(() => codec.write(undefined, b("a\nb\n")), CodecError);
  });

  it("write enforces maxFrameLength on the package", () => {
    const codec = new DelimiterCodec({ maxFrameLength: 2 });
    assert.equal(codec.write(undefined, b("ab")).length, 3);
    assert.throws(() => codec.write(undefined, b("abc")), MessageTooLongError);
  });

  it("decodes a delimiter split across chunks through decodeStream", async () => {
    const codec = new DelimiterCodec({ delimiters: "\r\n" });
    const chunks = ["ab", "c\r", "\nde", "f\r", "\n", "\r", "\n"].map(b);
    assert.deepEqual((await decodeAll(codec, chunks)).map((p) => td.decode(p)), ["abc", "def", ""]);
    const prefixed = new DelimiterCodec({ delimiters: ["\r", "\r\n"] });
    assert.deepEqual((await decodeAll(prefixed, ["a\r", "\nb\r", "c\r\n"].map(b))).map((p) => td.decode(p)), [
      "a",
      "b",
      "c",
    ]);
  });

  it("validates options, naming the option", () => {
    const make = (options: unknown) => () => new DelimiterCodec(options as DelimiterCodecOptions);
    invalidOption(make({ delimiters: [] }), "delimiters");
    invalidOption(make({ delimiters: "" }), "delimiters");
    invalidOption(make({ delimiters: 10 }), "delimiters");
    invalidOption(make({ delimiters: ["a", new Uint8Array(0)] }), "delimiters[1]");
    invalidOption(make({ delimiters: ["a", 3] }), "delimiters[1]");
    invalidOption(make({ stripDelimiter: "yes" }), "stripDelimiter");
    invalidOption(make({ maxFrameLength: -1 }), "maxFrameLength");
    invalidOption(make({ maxFrameLength: 1.5 }), "maxFrameLength");
    invalidOption(make({ delimiter: "\n" }), "DelimiterCodec.delimiter");
    invalidOption(make(null), "DelimiterCodec");
  });

  it("copies Uint8Array delimiters at construction", () => {
    const delimiter = u8(0);
    const codec = new DelimiterCodec({ delimiters: delimiter });
    delimiter[0] = 1;
    assert.deepEqual(codec.read(undefined, u8(5, 0)), { pkg: u8(5), length: 2 });
  });
});

describe("LineCodec", () => {
  const codec = new LineCodec();

  it("reads \\n and \\r\\n lines, including empty ones", () => {
    assert.deepEqual(pkgOf(codec.read(undefined, b("hello\nworld"))), ["hello", 6]);
    assert.deepEqual(pkgOf(codec.read(undefined, b("hi\r\nrest"))), ["hi", 4]);
    assert.deepEqual(pkgOf(codec.read(undefined, b("\n"))), ["", 1]);
    assert.deepEqual(pkgOf(codec.read(undefined, b("\r\n"))), ["", 2]);
    assert.equal(codec.read(undefined, b("partial\r")), undefined);
  });

  it("only strips one \\r right before the \\n", () => {
    assert.deepEqual(pkgOf(codec.read(undefined, b("a\rb\n"))), ["a\rb", 4]);
    assert.deepEqual(pkgOf(codec.read(undefined, b("\r\r\n"))), ["\r", 3]);
  });

  it("decodes UTF-8 and keeps a byte order mark", () => {
    assert.deepEqual(pkgOf(codec.read(undefined, b("héllo → 😀\n"))), ["héllo → 😀", 16]);
    assert.deepEqual(pkgOf(codec.read(undefined, b("\uFEFFx\n"))), ["\uFEFFx", 5]);
  });

  it("rejects invalid UTF-8 with a CodecError", () => {
    assert.throws(() => codec.read(undefined, u8(0x61, 0xff, 0x0a)), CodecError);
    assert.throws(() => codec.read(undefined, u8(0xe2, 0x82, 0x0a)), CodecError);
    assert.throws(() => codec.read(undefined, u8(0xed, 0xa0, 0x80, 0x0a)), CodecError);
    assert.deepEqual(pkgOf(codec.read(undefined, u8(0xe2, 0x82, 0xac, 0x0a))), ["€", 4]);
  });

  it("enforces maxLineLength in bytes, line ending excluded, failing fast", () => {
    const short = new LineCodec({ maxLineLength: 3 });
    assert.deepEqual(pkgOf(short.read(undefined, b("abc\r\n"))), ["abc", 5]);
    assert.equal(short.read(undefined, b("abc\r")), undefined);
    assert.equal(short.read(undefined, b("abc")), undefined);
    assert.throws(
      () => short.read(undefined, b("abcd")),
      (e: unknown) => e instanceof MessageTooLongError && e.length === 4 && e.max === 3,
    );
    assert.throws(() => short.read(undefined, b("abcd\n")), MessageTooLongError);
    assert.throws(() => short.read(undefined, b("ééé\n")), MessageTooLongError);
  });

  it("writes the line as UTF-8 plus \\n", () => {
    assert.deepEqual(codec.write(undefined, "hé"), u8(0x68, 0xc3, 0xa9, 0x0a));
    assert.deepEqual(codec.write(undefined, ""), u8(0x0a));
    assert.deepEqual(pkgOf(codec.read(undefined, codec.write(undefined, "a\rb"))), ["a\rb", 4]);
  });

  it("refuses lines that would not read back the same", () => {
    assert.throws(() => codec.write(undefined, "a\nb"), CodecError);
    assert.throws(() => codec.write(undefined, "a\r"), CodecError);
    assert.throws(() => codec.write(undefined, "\ud800"), CodecError);
  });

  it("write enforces maxLineLength in bytes", () => {
    const short = new LineCodec({ maxLineLength: 2 });
    assert.equal(short.write(undefined, "é").length, 3);
    assert.throws(
      () => short.write(undefined, "éa"),
      (e: unknown) => e instanceof MessageTooLongError && e.length === 3 && e.max === 2,
    );
  });

  it("decodes lines whose \\r\\n and characters are split across chunks", async () => {
    const bytes = b("un\r\ndeux €\nтри\r\n");
    const chunks = Array.from(bytes, (x) => u8(x));
    assert.deepEqual(await decodeAll(codec, chunks), ["un", "deux €", "три"]);
  });

  it("validates options, naming the option", () => {
    invalidOption(() => new LineCodec({ maxLineLength: -1 }), "maxLineLength");
    invalidOption(() => new LineCodec({ maxLineLength: "10" as unknown as number }), "maxLineLength");
    invalidOption(() => new LineCodec({ maxLength: 1 } as unknown as { maxLineLength: number }), "LineCodec.maxLength");
  });
});
