// Fuzz and property tests of the built-in codecs on their own (no session): random layouts, random packages,
// random garbage. The session read path is fuzzed in fuzz_session.test.ts.
//
// Properties:
// - robustness: any bytes, any valid layout → `read` returns a well-formed result or throws a typed GettyError
//   (ERR_CODEC / ERR_MESSAGE_TOO_LONG); never another exception, never a length out of range;
// - prefix consistency (what makes decoding independent of chunking): the answer on a prefix never contradicts
//   the answer on the whole (same package, same declared length, same error code);
// - round trips for random layouts and random delimiter sets (including overlapping ones).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  DelimiterCodec,
  LengthFieldCodec,
  type LengthFieldCodecOptions,
  LineCodec,
  type Reader,
  type ReadResult,
} from "../mod.ts";
import { concatBytes, splitAt, typedCode } from "./helpers/faults.ts";

const RUNS = Number(process.env.GETTY_FUZZ_RUNS ?? 300);
const READ_CODES = ["ERR_CODEC", "ERR_MESSAGE_TOO_LONG"];

type Outcome<P> =
  | { kind: "more" }
  | { kind: "declared"; declared: number }
  | { kind: "pkg"; pkg: P; length: number }
  | { kind: "error"; code: string };

/** Calls `read` and classifies the outcome, asserting the result is well formed and any error typed. */
function outcome<P>(reader: Reader<P>, data: Uint8Array, maxFrame = Infinity): Outcome<P> {
  let r: ReadResult<P>;
  try {
    r = reader.read(undefined, data.slice());
  } catch (e) {
    return { kind: "error", code: typedCode(e, READ_CODES) };
  }
  if (r === undefined) return { kind: "more" };
  if (!("pkg" in r)) {
    assert.ok(Number.isSafeInteger(r.declared), `declared ${r.declared}`);
    assert.ok(r.declared > data.length, `declared ${r.declared} with ${data.length} bytes buffered`);
    assert.ok(r.declared <= maxFrame, `declared ${r.declared} > maxFrameLength ${maxFrame}`);
    return { kind: "declared", declared: r.declared };
  }
  assert.ok(Number.isInteger(r.length) && r.length >= 1 && r.length <= data.length, `length ${r.length}`);
  return { kind: "pkg", pkg: r.pkg, length: r.length };
}

/** The answer on `data.subarray(0, cut)` must be compatible with the answer on `data`. */
function assertPrefixConsistent<P>(reader: Reader<P>, data: Uint8Array, cut: number, maxFrame?: number): void {
  const whole = outcome(reader, data, maxFrame);
  const part = outcome(reader, data.subarray(0, cut), maxFrame);
  switch (part.kind) {
    case "more":
      return;
    case "pkg":
      assert.equal(whole.kind, "pkg", `prefix of ${cut} gave a package, the whole gave ${whole.kind}`);
      if (whole.kind === "pkg") {
        assert.equal(whole.length, part.length);
        assert.deepEqual(whole.pkg, part.pkg);
      }
      return;
    case "declared":
      if (whole.kind === "declared") assert.equal(whole.declared, part.declared);
      else {
        assert.equal(whole.kind, "pkg", `prefix declared ${part.declared}, the whole gave ${whole.kind}`);
        if (whole.kind === "pkg") assert.equal(whole.length, part.declared);
      }
      return;
    case "error":
      assert.equal(whole.kind, "error", `prefix of ${cut} failed with ${part.code}, the whole gave ${whole.kind}`);
      if (whole.kind === "error") assert.equal(whole.code, part.code);
  }
}

/** Decodes chunks the way a session does: backlog + read until "need more"; errors are returned, typed. */
function decodeChunks<P>(reader: Reader<P>, chunks: Uint8Array[]): { pkgs: P[]; error?: string; rest: number } {
  const pkgs: P[] = [];
  let backlog: Uint8Array = new Uint8Array(0);
  for (const chunk of chunks) {
    backlog = concatBytes([backlog, chunk]);
    for (;;) {
      if (backlog.length === 0) break;
      const o = outcome(reader, backlog);
      if (o.kind === "error") return { pkgs, error: o.code, rest: backlog.length };
      if (o.kind !== "pkg") break;
      pkgs.push(o.pkg);
      backlog = backlog.slice(o.length);
    }
  }
  return { pkgs, rest: backlog.length };
}

const width = fc.constantFrom(1 as const, 2 as const, 3 as const, 4 as const, 8 as const);
const order = fc.constantFrom("big" as const, "little" as const);
/** Any valid LengthFieldCodec layout, including ones that cannot encode. */
const anyLayout: fc.Arbitrary<LengthFieldCodecOptions> = fc.record({
  lengthFieldOffset: fc.integer({ min: 0, max: 6 }),
  lengthFieldLength: width,
  byteOrder: order,
  lengthAdjustment: fc.integer({ min: -12, max: 12 }),
  initialBytesToStrip: fc.integer({ min: 0, max: 14 }),
  maxFrameLength: fc.oneof(fc.integer({ min: 14, max: 300 }), fc.constant(Number.MAX_SAFE_INTEGER)),
}).map((l) => ({ ...l, maxFrameLength: Math.max(l.maxFrameLength, l.lengthFieldOffset + l.lengthFieldLength) }));

/** Garbage with a bias towards the interesting: small and huge length fields, delimiter-ish bytes. */
const garbage = fc.oneof(
  fc.uint8Array({ maxLength: 400 }),
  fc.array(fc.constantFrom(0, 1, 0x0a, 0x0d, 0x7f, 0x80, 0xc3, 0xff), { maxLength: 200 }).map((a) =>
    Uint8Array.from(a)
  ),
);

describe("fuzz: codecs alone", () => {
  it("LengthFieldCodec, any layout, any bytes: well-formed result or a typed error, consistent on prefixes", () => {
    fc.assert(
      fc.property(anyLayout, garbage, fc.nat(), (layout, data, cut) => {
        const codec = new LengthFieldCodec(layout);
        assertPrefixConsistent(codec, data, cut % (data.length + 1), layout.maxFrameLength);
        const o = outcome(codec, data, layout.maxFrameLength);
        if (o.kind === "pkg") {
          assert.ok(o.length <= layout.maxFrameLength!);
          assert.equal(o.pkg.length, o.length - layout.initialBytesToStrip!);
        }
      }),
      { numRuns: RUNS * 2 },
    );
  });

  it("LengthFieldCodec: a declared length over maxFrameLength fails from the header alone", () => {
    fc.assert(
      // (8-byte fields: all-ones is beyond 2^53, a CodecError; see below.)
      fc.property(
        fc.constantFrom(1 as const, 2 as const, 3 as const, 4 as const),
        order,
        fc.integer({ min: 16, max: 4096 }),
        (w, o, max) => {
          const codec = new LengthFieldCodec({ lengthFieldLength: w, byteOrder: o, maxFrameLength: max });
          const header = new Uint8Array(w).fill(0xff); // the largest value the field holds
          const frame = 256 ** w - 1 + w;
          const r = outcome(codec, header, max);
          if (frame > max) assert.deepEqual(r, { kind: "error", code: "ERR_MESSAGE_TOO_LONG" });
          else assert.deepEqual(r, { kind: "declared", declared: frame });
        },
      ),
      { numRuns: 100 },
    );
    // An 8-byte field beyond 2^53 is a CodecError, not a silent wrap.
    const huge = new LengthFieldCodec({ lengthFieldLength: 8 });
    assert.deepEqual(outcome(huge, new Uint8Array(8).fill(0xff)), { kind: "error", code: "ERR_CODEC" });
    // A negative frame (adjustment below the value) is a CodecError.
    const negative = new LengthFieldCodec({ lengthFieldLength: 1, lengthAdjustment: -10 });
    assert.deepEqual(outcome(negative, new Uint8Array([3, 0, 0, 0])), { kind: "error", code: "ERR_CODEC" });
  });

  it("LengthFieldCodec, encodable layouts: random packages, random splits decode identically", () => {
    const layout = fc.record({ w: width, o: order, adj: fc.integer({ min: -8, max: 8 }) });
    fc.assert(
      fc.property(
        layout,
        fc.array(fc.uint8Array({ maxLength: 120 }), { maxLength: 12 }),
        fc.array(fc.nat(), { maxLength: 30 }),
        (l, raw, cuts) => {
          // The field holds `length - adj`: with a positive adjustment, packages shorter than it cannot be encoded.
          const pkgs = raw.map((p) => (p.length >= l.adj ? p : concatBytes([p, new Uint8Array(l.adj)])));
          const codec = new LengthFieldCodec({ lengthFieldLength: l.w, byteOrder: l.o, lengthAdjustment: l.adj });
          const bytes = concatBytes(pkgs.map((p) => codec.write(undefined, p)));
          const { pkgs: got, error, rest } = decodeChunks(codec, splitAt(bytes, cuts));
          assert.equal(error, undefined);
          assert.equal(rest, 0);
          assert.deepEqual(got, pkgs);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it("DelimiterCodec, random delimiter sets (overlapping too): round trips under any split, garbage is safe", () => {
    const delim = fc.uint8Array({ minLength: 1, maxLength: 4 });
    const config = fc.record({
      delimiters: fc.array(delim, { minLength: 1, maxLength: 3 }),
      strip: fc.boolean(),
      max: fc.oneof(fc.integer({ min: 0, max: 200 }), fc.constant(Number.MAX_SAFE_INTEGER)),
    });
    fc.assert(
      fc.property(
        config,
        fc.array(fc.uint8Array({ maxLength: 50 }), { maxLength: 10 }),
        fc.array(fc.nat(), { maxLength: 20 }),
        garbage,
        fc.nat(),
        (cfg, raw, cuts, junk, cut) => {
          const codec = new DelimiterCodec({
            delimiters: cfg.delimiters,
            stripDelimiter: cfg.strip,
            maxFrameLength: cfg.max,
          });
          // Garbage: typed errors only, consistent on prefixes.
          assertPrefixConsistent(codec, junk, cut % (junk.length + 1));
          // Round trip of the packages the codec agrees to write (a package holding a delimiter is refused).
          const encoded: Uint8Array[] = [];
          const expected: Uint8Array[] = [];
          for (const p of raw) {
            const input = cfg.strip ? p : concatBytes([p, cfg.delimiters[0]]);
            try {
              encoded.push(codec.write(undefined, input));
              expected.push(input);
            } catch (e) {
              typedCode(e, ["ERR_CODEC", "ERR_MESSAGE_TOO_LONG"]);
            }
          }
          const { pkgs, error, rest } = decodeChunks(codec, splitAt(concatBytes(encoded), cuts));
          assert.equal(error, undefined);
          assert.equal(rest, 0);
          assert.deepEqual(pkgs, expected);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it("LineCodec: any bytes give lines, ERR_CODEC (bad UTF-8) or ERR_MESSAGE_TOO_LONG; prefixes agree", () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.integer({ min: 0, max: 64 }), fc.constant(Number.MAX_SAFE_INTEGER)),
        garbage,
        fc.nat(),
        (max, data, cut) => {
          const codec = new LineCodec({ maxLineLength: max });
          assertPrefixConsistent(codec, data, cut % (data.length + 1));
          const o = outcome(codec, data);
          if (o.kind === "pkg") {
            assert.equal(typeof o.pkg, "string");
            assert.ok(!o.pkg.includes("\n"));
          }
        },
      ),
      { numRuns: RUNS * 2 },
    );
  });

  it("LineCodec: random text lines (\\n and \\r\\n) under random splits decode identically", () => {
    const te = new TextEncoder();
    const line = fc.string({ unit: "grapheme", maxLength: 40 }).map((s) => s.replaceAll("\n", " ").replace(/\r+$/, ""));
    fc.assert(
      fc.property(fc.array(fc.tuple(line, fc.boolean()), { maxLength: 12 }), fc.array(fc.nat(), { maxLength: 20 }), (
        items,
        cuts,
      ) => {
        const codec = new LineCodec({ maxLineLength: 1024 });
        const bytes = concatBytes(items.map(([l, crlf]) => crlf ? te.encode(`${l}\r\n`) : codec.write(undefined, l)));
        const { pkgs, error, rest } = decodeChunks(codec, splitAt(bytes, cuts));
        assert.equal(error, undefined);
        assert.equal(rest, 0);
        assert.deepEqual(pkgs, items.map(([l]) => l));
      }),
      { numRuns: RUNS },
    );
  });

  it("writers refuse what would not read back, with typed errors (never a corrupt frame)", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 30 }), (s) => {
        const codec = new LineCodec({ maxLineLength: 20 });
        let bytes: Uint8Array;
        try {
          bytes = codec.write(undefined, s);
        } catch (e) {
          typedCode(e, ["ERR_CODEC", "ERR_MESSAGE_TOO_LONG"]);
          return;
        }
        const r = codec.read(undefined, bytes);
        assert.ok(r && "pkg" in r);
        assert.equal(r.pkg, s);
        assert.equal(r.length, bytes.length);
      }),
      { numRuns: RUNS },
    );
    fc.assert(
      fc.property(width, fc.integer({ min: 0, max: 300 }), (w, n) => {
        const codec = new LengthFieldCodec({ lengthFieldLength: w, maxFrameLength: 200 });
        try {
          const bytes = codec.write(undefined, new Uint8Array(n));
          assert.ok(bytes.length <= 200 && n < 256 ** w);
        } catch (e) {
          const code = typedCode(e, ["ERR_CODEC", "ERR_MESSAGE_TOO_LONG"]);
          assert.ok(code === "ERR_MESSAGE_TOO_LONG" ? w + n > 200 : n >= 256 ** w);
        }
      }),
      { numRuns: 200 },
    );
  });
});
