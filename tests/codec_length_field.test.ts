import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { LengthFieldCodec, type LengthFieldCodecOptions } from "../src/codec/mod.ts";
import { CodecError, InvalidOptionError, MessageTooLongError } from "../src/errors.ts";
import type { ReadResult } from "../src/codec.ts";
import { PACKAGE_COPY_MAX } from "../src/codec/package_bytes.ts";

const te = new TextEncoder();
const u8 = (...bytes: number[]): Uint8Array => new Uint8Array(bytes);
const cat = (...parts: (Uint8Array | number[] | string)[]): Uint8Array => {
  const arrays = parts.map((p) => typeof p === "string" ? te.encode(p) : p instanceof Uint8Array ? p : u8(...p));
  const out = new Uint8Array(arrays.reduce((n, a) => n + a.length, 0));
  let at = 0;
  for (const a of arrays) {
    out.set(a, at);
    at += a.length;
  }
  return out;
};

function expectPkg(result: ReadResult<Uint8Array>, pkg: Uint8Array | number[] | string, length: number): void {
  assert.ok(result !== undefined && "pkg" in result, `expected a package, got ${JSON.stringify(result)}`);
  assert.deepEqual(result.pkg, cat(pkg));
  assert.equal(result.length, length);
}

function expectDeclared(result: ReadResult<Uint8Array>, declared: number): void {
  assert.deepEqual(result, { declared });
}

function invalidOption(options: unknown, option: string): void {
  assert.throws(
    () => new LengthFieldCodec(options as LengthFieldCodecOptions),
    (e: unknown) => e instanceof InvalidOptionError && e.option === option && e.message.includes(option),
  );
}

describe("LengthFieldCodec defaults (4-byte big-endian, package = body)", () => {
  const codec = new LengthFieldCodec();

  it("writes the length prefix and the package in one buffer", () => {
    assert.deepEqual(codec.write(undefined, u8(1, 2, 3)), u8(0, 0, 0, 3, 1, 2, 3));
    assert.deepEqual(codec.write(undefined, u8()), u8(0, 0, 0, 0));
  });

  it("needs the whole header, then declares the frame, then yields the body", () => {
    const frame = u8(0, 0, 0, 3, 1, 2, 3, 9, 9);
    assert.equal(codec.read(undefined, frame.subarray(0, 0)), undefined);
    assert.equal(codec.read(undefined, frame.subarray(0, 3)), undefined);
    expectDeclared(codec.read(undefined, frame.subarray(0, 4)), 7);
    expectDeclared(codec.read(undefined, frame.subarray(0, 6)), 7);
    expectPkg(codec.read(undefined, frame.subarray(0, 7)), [1, 2, 3], 7);
    expectPkg(codec.read(undefined, frame), [1, 2, 3], 7);
  });

  it("decodes an empty body as an empty package", () => {
    expectPkg(codec.read(undefined, u8(0, 0, 0, 0, 5)), [], 4);
  });

  it("returns a view of the input for a package above PACKAGE_COPY_MAX (the caller never changes the input)", () => {
    const body = new Uint8Array(300).fill(9);
    const frame = codec.write(undefined, body);
    const pkg = (codec.read(undefined, frame) as { pkg: Uint8Array }).pkg;
    assert.deepEqual([...pkg], [...body]);
    assert.ok(pkg.buffer === frame.buffer, "a view");
    assert.equal(pkg.byteOffset, frame.byteOffset + 4);
  });

  it("copies a package of at most PACKAGE_COPY_MAX bytes on Bun (cheaper there), views it elsewhere", () => {
    assert.equal(PACKAGE_COPY_MAX, typeof (globalThis as { Bun?: unknown }).Bun === "object" ? 256 : -1);
    for (const size of [0, 2, 256, 257]) {
      const frame = codec.write(undefined, new Uint8Array(size).fill(7));
      const pkg = (codec.read(undefined, frame) as { pkg: Uint8Array }).pkg;
      assert.equal(pkg.length, size);
      assert.ok(pkg.every((b) => b === 7));
      assert.equal(pkg.buffer === frame.buffer, size > PACKAGE_COPY_MAX, `${size} bytes: view or copy`);
    }
  });

  it("write does not keep a reference to the package", () => {
    const pkg = u8(4, 5);
    const out = codec.write(undefined, pkg);
    pkg.fill(0);
    assert.deepEqual(out, u8(0, 0, 0, 2, 4, 5));
  });

  it("treats a set top bit of a 4-byte field as a large unsigned value", () => {
    expectDeclared(codec.read(undefined, u8(0x80, 0, 0, 0)), 4 + 0x80000000);
  });
});

describe("LengthFieldCodec widths and byte orders (known vectors)", () => {
  const cases: { width: 1 | 2 | 3 | 4 | 8; order: "big" | "little"; field: number[]; value: number }[] = [
    { width: 1, order: "big", field: [0xfe], value: 0xfe },
    { width: 1, order: "little", field: [0xfe], value: 0xfe },
    { width: 2, order: "big", field: [0x01, 0x02], value: 0x0102 },
    { width: 2, order: "little", field: [0x02, 0x01], value: 0x0102 },
    { width: 3, order: "big", field: [0x01, 0x02, 0x03], value: 0x010203 },
    { width: 3, order: "little", field: [0x03, 0x02, 0x01], value: 0x010203 },
    { width: 4, order: "big", field: [0x01, 0x02, 0x03, 0x04], value: 0x01020304 },
    { width: 4, order: "little", field: [0x04, 0x03, 0x02, 0x01], value: 0x01020304 },
    { width: 8, order: "big", field: [0, 0, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06], value: 0x010203040506 },
    { width: 8, order: "little", field: [0x06, 0x05, 0x04, 0x03, 0x02, 0x01, 0, 0], value: 0x010203040506 },
    { width: 8, order: "big", field: [0, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xf0], value: 2 ** 53 - 16 },
  ];
  for (const { width, order, field, value } of cases) {
    it(`reads a ${width}-byte ${order}-endian field [${field.join(",")}] as ${value}`, () => {
      const codec = new LengthFieldCodec({ lengthFieldLength: width, byteOrder: order });
      assert.equal(codec.read(undefined, u8(...field.slice(0, width - 1))), undefined);
      expectDeclared(codec.read(undefined, u8(...field)), width + value);
    });
  }

  const small: { width: 1 | 2 | 3 | 4 | 8; order: "big" | "little"; field: number[] }[] = [
    { width: 1, order: "big", field: [3] },
    { width: 2, order: "big", field: [0, 3] },
    { width: 2, order: "little", field: [3, 0] },
    { width: 3, order: "big", field: [0, 0, 3] },
    { width: 3, order: "little", field: [3, 0, 0] },
    { width: 4, order: "little", field: [3, 0, 0, 0] },
    { width: 8, order: "big", field: [0, 0, 0, 0, 0, 0, 0, 3] },
    { width: 8, order: "little", field: [3, 0, 0, 0, 0, 0, 0, 0] },
  ];
  for (const { width, order, field } of small) {
    it(`writes and reads a ${width}-byte ${order}-endian frame`, () => {
      const codec = new LengthFieldCodec({ lengthFieldLength: width, byteOrder: order });
      const frame = codec.write(undefined, u8(7, 8, 9));
      assert.deepEqual(frame, cat(field, [7, 8, 9]));
      expectPkg(codec.read(undefined, frame), [7, 8, 9], width + 3);
    });
  }

  it("writes multi-byte values in the right order", () => {
    const pkg = new Uint8Array(0x0102);
    assert.deepEqual(new LengthFieldCodec({ lengthFieldLength: 2 }).write(undefined, pkg).subarray(0, 2), u8(1, 2));
    const le = new LengthFieldCodec({ lengthFieldLength: 3, byteOrder: "little" }).write(undefined, pkg);
    assert.deepEqual(le.subarray(0, 3), u8(2, 1, 0));
    assert.equal(le.length, 3 + 0x0102);
  });

  it("rejects an 8-byte value above Number.MAX_SAFE_INTEGER", () => {
    const codec = new LengthFieldCodec({ lengthFieldLength: 8 });
    assert.throws(() => codec.read(undefined, u8(0, 0x20, 0, 0, 0, 0, 0, 0)), CodecError);
    assert.throws(() => codec.read(undefined, u8(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)), CodecError);
    const le = new LengthFieldCodec({ lengthFieldLength: 8, byteOrder: "little" });
    assert.throws(() => le.read(undefined, u8(0, 0, 0, 0, 0, 0, 0x20, 0)), CodecError);
  });

  it("rejects a value that does not fit the field on write", () => {
    const one = new LengthFieldCodec({ lengthFieldLength: 1 });
    assert.equal(one.write(undefined, new Uint8Array(255)).length, 256);
    assert.throws(() => one.write(undefined, new Uint8Array(256)), CodecError);
    assert.throws(
      () => new LengthFieldCodec({ lengthFieldLength: 2 }).write(undefined, new Uint8Array(65536)),
      CodecError,
    );
  });
});

describe("LengthFieldCodec layouts (Netty LengthFieldBasedFrameDecoder examples)", () => {
  const hello = "HELLO, WORLD";

  it("strip 0 keeps the whole frame", () => {
    const codec = new LengthFieldCodec({ lengthFieldLength: 2, initialBytesToStrip: 0 });
    expectPkg(codec.read(undefined, cat([0, 12], hello)), cat([0, 12], hello), 14);
  });

  it("negative adjustment: the length counts the header", () => {
    const codec = new LengthFieldCodec({ lengthFieldLength: 2, lengthAdjustment: -2, initialBytesToStrip: 0 });
    expectPkg(codec.read(undefined, cat([0, 14], hello, "tail")), cat([0, 14], hello), 14);
    expectDeclared(codec.read(undefined, u8(0, 14)), 14);
  });

  it("positive adjustment: a header after the length field", () => {
    const codec = new LengthFieldCodec({ lengthFieldLength: 3, lengthAdjustment: 2, initialBytesToStrip: 0 });
    const frame = cat([0, 0, 12, 0xca, 0xfe], hello);
    expectPkg(codec.read(undefined, frame), frame, 17);
  });

  it("offset: a header before the length field, default strip drops header and field", () => {
    const codec = new LengthFieldCodec({ lengthFieldOffset: 2, lengthFieldLength: 3 });
    const frame = cat([0xca, 0xfe, 0, 0, 12], hello);
    assert.equal(codec.read(undefined, frame.subarray(0, 4)), undefined);
    expectDeclared(codec.read(undefined, frame.subarray(0, 5)), 17);
    expectPkg(codec.read(undefined, frame), hello, 17);
  });

  it("offset, adjustment and partial strip combined", () => {
    const codec = new LengthFieldCodec({
      lengthFieldOffset: 1,
      lengthFieldLength: 2,
      lengthAdjustment: 1,
      initialBytesToStrip: 3,
    });
    expectPkg(codec.read(undefined, cat([0xca, 0, 12, 0xfe], hello)), cat([0xfe], hello), 16);
    const total = new LengthFieldCodec({
      lengthFieldOffset: 1,
      lengthFieldLength: 2,
      lengthAdjustment: -3,
      initialBytesToStrip: 3,
    });
    expectPkg(total.read(undefined, cat([0xca, 0, 16, 0xfe], hello)), cat([0xfe], hello), 16);
  });

  it("write with adjustment -4 puts the whole frame length in the field and reads back", () => {
    const codec = new LengthFieldCodec({ lengthAdjustment: -4 });
    const frame = codec.write(undefined, u8(1, 2, 3));
    assert.deepEqual(frame, u8(0, 0, 0, 7, 1, 2, 3));
    expectPkg(codec.read(undefined, frame), [1, 2, 3], 7);
  });

  it("write with a positive adjustment larger than the package is a CodecError", () => {
    const codec = new LengthFieldCodec({ lengthFieldLength: 2, lengthAdjustment: 2 });
    assert.throws(() => codec.write(undefined, u8(1)), CodecError);
    assert.deepEqual(codec.write(undefined, u8(1, 2, 3)), u8(0, 1, 1, 2, 3));
  });

  it("write refuses layouts it cannot produce and says to supply a Writer", () => {
    for (const options of [{ lengthFieldOffset: 1 }, { initialBytesToStrip: 0 }, { initialBytesToStrip: 2 }]) {
      const codec = new LengthFieldCodec(options);
      assert.throws(
        () => codec.write(undefined, u8(1)),
        (e: unknown) => e instanceof CodecError && /Writer/.test(e.message),
      );
    }
  });
});

describe("LengthFieldCodec limits and invalid frames", () => {
  it("fails fast on maxFrameLength from the header alone", () => {
    const codec = new LengthFieldCodec({ maxFrameLength: 10 });
    expectDeclared(codec.read(undefined, u8(0, 0, 0, 6)), 10);
    assert.throws(
      () => codec.read(undefined, u8(0, 0, 0, 7)),
      (e: unknown) => e instanceof MessageTooLongError && e.length === 11 && e.max === 10,
    );
  });

  it("maxFrameLength counts the frame as adjusted", () => {
    const codec = new LengthFieldCodec({ lengthFieldLength: 1, lengthAdjustment: -1, maxFrameLength: 5 });
    expectPkg(codec.read(undefined, u8(5, 1, 2, 3, 4)), [1, 2, 3, 4], 5);
    assert.throws(() => codec.read(undefined, u8(6)), MessageTooLongError);
  });

  it("write enforces maxFrameLength on header + package", () => {
    const codec = new LengthFieldCodec({ maxFrameLength: 10 });
    assert.equal(codec.write(undefined, new Uint8Array(6)).length, 10);
    assert.throws(
      () => codec.write(undefined, new Uint8Array(7)),
      (e: unknown) => e instanceof MessageTooLongError && e.length === 11 && e.max === 10,
    );
  });

  it("a frame shorter than its header is a CodecError", () => {
    const codec = new LengthFieldCodec({ lengthFieldLength: 2, lengthAdjustment: -3 });
    assert.throws(() => codec.read(undefined, u8(0, 2)), CodecError);
    assert.deepEqual(codec.read(undefined, u8(0, 3)), { pkg: u8(), length: 2 });
  });

  it("initialBytesToStrip beyond the frame is a CodecError as soon as the header is read", () => {
    const codec = new LengthFieldCodec({ lengthFieldLength: 1, initialBytesToStrip: 5 });
    assert.throws(() => codec.read(undefined, u8(2)), CodecError);
    expectPkg(codec.read(undefined, u8(4, 1, 2, 3, 4)), [], 5);
  });
});

describe("LengthFieldCodec option validation", () => {
  it("names the invalid option", () => {
    invalidOption({ lengthFieldOffset: -1 }, "lengthFieldOffset");
    invalidOption({ lengthFieldOffset: 1.5 }, "lengthFieldOffset");
    invalidOption({ lengthFieldOffset: "0" }, "lengthFieldOffset");
    invalidOption({ lengthFieldLength: 5 }, "lengthFieldLength");
    invalidOption({ lengthFieldLength: 0 }, "lengthFieldLength");
    invalidOption({ byteOrder: "BIG" }, "byteOrder");
    invalidOption({ lengthAdjustment: 0.5 }, "lengthAdjustment");
    invalidOption({ lengthAdjustment: Number.NaN }, "lengthAdjustment");
    invalidOption({ initialBytesToStrip: -1 }, "initialBytesToStrip");
    invalidOption({ maxFrameLength: 0 }, "maxFrameLength");
    invalidOption({ maxFrameLength: 3 }, "maxFrameLength");
    invalidOption({ lengthFieldOffset: 4, lengthFieldLength: 2, maxFrameLength: 5 }, "maxFrameLength");
    invalidOption({ lengthFieldSize: 2 }, "LengthFieldCodec.lengthFieldSize");
    invalidOption(null, "LengthFieldCodec");
  });

  it("accepts every valid width, both orders and explicit defaults", () => {
    for (const width of [1, 2, 3, 4, 8] as const) {
      for (const byteOrder of ["big", "little"] as const) {
        const codec = new LengthFieldCodec({
          lengthFieldOffset: 0,
          lengthFieldLength: width,
          byteOrder,
          lengthAdjustment: 0,
          initialBytesToStrip: width,
          maxFrameLength: 100,
        });
        expectPkg(codec.read(undefined, codec.write(undefined, u8(42))), [42], width + 1);
      }
    }
  });
});
