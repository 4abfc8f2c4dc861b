import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { decodeStream, DelimiterCodec, LengthFieldCodec, LineCodec } from "../src/codec/mod.ts";
import type { Reader } from "../src/codec.ts";

const RUNS = 150;

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Splits `bytes` at the given cut points (taken modulo its length); chunks are independent copies. */
function split(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let from = 0;
  for (const p of [...points, bytes.length]) {
    chunks.push(bytes.slice(from, p));
    from = p;
  }
  return chunks;
}

/**
 * Decodes like a session would: append each chunk to a backlog and read packages until the reader needs
 * more. Each read gets a fresh owned copy (packages may be views of it, as the contract allows).
 */
function decodeLoop<P>(reader: Reader<P>, chunks: Uint8Array[]): P[] {
  const out: P[] = [];
  let backlog: Uint8Array = new Uint8Array(0);
  for (const chunk of chunks) {
    backlog = concat([backlog, chunk]);
    while (backlog.length > 0) {
      const view = backlog.slice();
      const result = reader.read(undefined, view);
      if (result === undefined || "declared" in result) break;
      assert.ok(result.length >= 1 && result.length <= backlog.length);
      out.push(result.pkg);
      backlog = backlog.subarray(result.length);
    }
  }
  assert.equal(backlog.length, 0, "bytes left over");
  return out;
}

async function decodeWithStream<P>(reader: Reader<P>, chunks: Uint8Array[]): Promise<P[]> {
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

/** Checks that `bytes`, cut anywhere, decodes to `expected` with both decoding paths. */
async function checkBoth<P>(reader: Reader<P>, bytes: Uint8Array, cuts: number[], expected: P[]): Promise<void> {
  const chunks = split(bytes, cuts);
  assert.deepEqual(decodeLoop(reader, chunks), expected);
  assert.deepEqual(await decodeWithStream(reader, chunks), expected);
}

const cuts = fc.array(fc.nat(), { maxLength: 20 });
const width = fc.constantFrom(1 as const, 2 as const, 3 as const, 4 as const, 8 as const);
const order = fc.constantFrom("big" as const, "little" as const);

describe("codec round trip properties (random packages, random chunking)", () => {
  it("LengthFieldCodec, encodable layouts: decode(encode(pkgs)) === pkgs", async () => {
    const layout = fc.record({ width, order, countsHeader: fc.boolean() });
    await fc.assert(
      fc.asyncProperty(
        layout,
        fc.array(fc.uint8Array({ maxLength: 200 }), { maxLength: 15 }),
        cuts,
        async (l, pkgs, c) => {
          const codec = new LengthFieldCodec({
            lengthFieldLength: l.width,
            byteOrder: l.order,
            lengthAdjustment: l.countsHeader ? -l.width : 0,
          });
          const bytes = concat(pkgs.map((p) => codec.write(undefined, p)));
          await checkBoth(codec, bytes, c, pkgs);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it("LengthFieldCodec, offset/adjustment/strip layouts: frames decode to frame.slice(strip)", async () => {
    const layout = fc.record({
      width,
      order,
      offset: fc.integer({ min: 0, max: 4 }),
      adjustment: fc.integer({ min: -3, max: 3 }),
      strip: fc.nat(),
    });
    const frames = fc.array(
      fc.tuple(fc.uint8Array({ minLength: 4, maxLength: 4 }), fc.uint8Array({ minLength: 3, maxLength: 100 })),
      {
        maxLength: 10,
      },
    );
    await fc.assert(
      fc.asyncProperty(layout, frames, cuts, async (l, parts, c) => {
        // The field's value is body length - adjustment, exactly what a prepender with that adjustment writes.
        const prepender = new LengthFieldCodec({
          lengthFieldLength: l.width,
          byteOrder: l.order,
          lengthAdjustment: l.adjustment,
        });
        const strip = l.strip % (l.offset + l.width + 1);
        const codec = new LengthFieldCodec({
          lengthFieldOffset: l.offset,
          lengthFieldLength: l.width,
          byteOrder: l.order,
          lengthAdjustment: l.adjustment,
          initialBytesToStrip: strip,
        });
        const framed = parts.map(([prefix, body]) =>
          concat([prefix.subarray(0, l.offset), prepender.write(undefined, body)])
        );
        await checkBoth(codec, concat(framed), c, framed.map((f) => f.slice(strip)));
      }),
      { numRuns: RUNS },
    );
  });

  it("DelimiterCodec: packages without delimiter bytes round-trip", async () => {
    const te = new TextEncoder();
    const sets: (string | Uint8Array)[][] = [["\n"], ["\r\n"], [new Uint8Array([0])], ["\r\n", "\n"], ["END", "\n"], [
      "\n\n\n",
      "\n",
    ]];
    const config = fc.record({ delimiters: fc.constantFrom(...sets), strip: fc.boolean() });
    await fc.assert(
      fc.asyncProperty(
        config,
        fc.array(fc.uint8Array({ maxLength: 60 }), { maxLength: 15 }),
        cuts,
        async (cfg, raw, c) => {
          const codec = new DelimiterCodec({ delimiters: cfg.delimiters, stripDelimiter: cfg.strip });
          const used = new Set(cfg.delimiters.flatMap((d) => [...(typeof d === "string" ? te.encode(d) : d)]));
          const pkgs = raw.map((p) => p.map((x) => (used.has(x) ? 0x61 : x)));
          const first = typeof cfg.delimiters[0] === "string" ? te.encode(cfg.delimiters[0]) : cfg.delimiters[0];
          const expected = cfg.strip ? pkgs : pkgs.map((p) => concat([p, first]));
          const bytes = concat(expected.map((p) => codec.write(undefined, p)));
          await checkBoth(codec, bytes, c, expected);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it("LineCodec: lines round-trip with \\n and \\r\\n endings", async () => {
    const te = new TextEncoder();
    const text = fc.oneof(
      fc.string({ unit: "binary", maxLength: 30 }),
      fc.string({ unit: fc.constantFrom("a", "\r", "\n", "é", "€", "😀", "\uFEFF"), maxLength: 30 }),
    );
    const line = text.map((s) => s.replaceAll("\n", " ").replace(/\r+$/, ""));
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(line, fc.boolean()), { maxLength: 15 }), cuts, async (items, c) => {
        const codec = new LineCodec();
        const lines = items.map(([l]) => l);
        const bytes = concat(items.map(([l, crlf]) => (crlf ? te.encode(`${l}\r\n`) : codec.write(undefined, l))));
        await checkBoth(codec, bytes, c, lines);
      }),
      { numRuns: RUNS },
    );
  });
});
