// Fuzz and property tests of the SESSION READ PATH, through createMemorySessionPair and over real TCP and TLS
// sockets (raw node:net / node:tls peers that write chunks exactly as the property says):
// - random packages split at random points decode to the same packages, in order, with every built-in codec;
// - random garbage never crashes the process: the session ends with a typed GettyError (or as a clean peer close
//   when the garbage happened to be valid framing), and only that session; others keep working;
// - memory stays bounded: the reader never sees more than maxMsgLen plus the chunk being delivered;
// - a reader that misbehaves (throws anything, returns nonsense) is contained the same way.
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { setImmediate } from "node:timers";
import fc from "fast-check";
import {
  type CloseInfo,
  type Codec,
  createMemorySessionPair,
  DelimiterCodec,
  type GettyError,
  LengthFieldCodec,
  LineCodec,
  type ReadResult,
  type Session,
  type TcpServer,
} from "../mod.ts";
import {
  BoundedReader,
  type ChunkProbe,
  collectingClient,
  concatBytes,
  frame4,
  probedAdapter,
  recordingServer,
  type SessionRecord,
  splitAt,
  streamTargets,
  typedCode,
} from "./helpers/faults.ts";
import { assertNoLeaks, collectUnhandled, pattern, sleep, waitFor, within } from "./helpers/util.ts";

const RUNS = Number(process.env.GETTY_FUZZ_RUNS ?? 100);
const T = { timeout: 45_000 };
const READ_CODES = ["ERR_CODEC", "ERR_MESSAGE_TOO_LONG"];
const te = new TextEncoder();
const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A codec of the suite as bytes in, packages out, with how to encode a random package for it. */
interface CodecKind {
  readonly name: string;
  make(): Codec<unknown>;
  /** Packages the codec round-trips, from random bytes. */
  pkgs: fc.Arbitrary<unknown[]>;
}

const bytesPkgs = (max: number) => fc.array(fc.uint8Array({ maxLength: max }), { maxLength: 25 });
const KINDS: CodecKind[] = [
  { name: "length-field u32be", make: () => new LengthFieldCodec(), pkgs: bytesPkgs(300) },
  {
    name: "length-field u16le, header counted",
    make: () => new LengthFieldCodec({ lengthFieldLength: 2, byteOrder: "little", lengthAdjustment: -2 }),
    pkgs: bytesPkgs(300),
  },
  {
    name: "length-field u8 after a 3-byte prefix, whole frame kept",
    // Reading only (offset/strip layouts cannot encode): packages are whole frames built by hand below.
    make: () => new LengthFieldCodec({ lengthFieldOffset: 3, lengthFieldLength: 1, initialBytesToStrip: 0 }),
    pkgs: fc.array(fc.tuple(fc.uint8Array({ minLength: 3, maxLength: 3 }), fc.uint8Array({ maxLength: 255 })), {
      maxLength: 20,
    }).map((fs) => fs.map(([prefix, body]) => concatBytes([prefix, Uint8Array.of(body.length), body]))),
  },
  {
    name: "delimiter \\r\\n | \\n",
    make: () => new DelimiterCodec({ delimiters: ["\r\n", "\n"] }),
    pkgs: bytesPkgs(120).map((ps) => ps.map((p) => p.map((b) => (b === 0x0a || b === 0x0d ? 0x20 : b)))),
  },
  {
    name: "line (utf-8)",
    make: () => new LineCodec({ maxLineLength: 4096 }),
    pkgs: fc.array(
      fc.string({ unit: "grapheme", maxLength: 60 }).map((s) => s.replaceAll("\n", " ").replace(/\r+$/, "")),
      { maxLength: 25 },
    ),
  },
];

/** The bytes of `pkgs` for `kind` (encoded by its writer, or already frames). */
function encodeAll(kind: CodecKind, pkgs: unknown[]): Uint8Array {
  const codec = kind.make();
  if (kind.name.startsWith("length-field u8 after")) return concatBytes(pkgs as Uint8Array[]);
  return concatBytes(pkgs.map((p) => codec.write(undefined, p) as Uint8Array));
}

/**
 * Memory pair: side a writes each chunk raw (one chunk per macrotask, so each is its own read on side b); side b
 * decodes with a bounded reader; a then closes. Resolves with what b saw.
 */
async function memoryRun(
  codec: Codec<unknown>,
  chunks: Uint8Array[],
  maxMsgLen: number,
): Promise<{ pkgs: unknown[]; info: CloseInfo; errors: GettyError[]; reader: BoundedReader<unknown> }> {
  const pkgs: unknown[] = [];
  const errors: GettyError[] = [];
  let current = 0;
  const reader = new BoundedReader(codec, maxMsgLen, () => current);
  const [a, b] = await createMemorySessionPair<unknown>({
    session: { maxMsgLen },
    b: (s) => {
      s.setPkgHandler(reader);
      s.setEventListener({ onMessage: (_s, p) => void pkgs.push(p), onError: (_s, e) => void errors.push(e) });
    },
  });
  for (const chunk of chunks) {
    if (b.isClosed()) break;
    current = chunk.length;
    await a.writeBytes(chunk).catch(() => {});
    await tick();
  }
  await a.close();
  const info = await within(b.closed, 5_000, "memory session b to close");
  return { pkgs, info, errors, reader };
}

/** Asserts how a session that read garbage ended: a typed read error (also reported to onError), or a clean close. */
function assertGarbageEnding(info: CloseInfo, errors: GettyError[], mustFail: boolean): void {
  if (info.error) {
    assert.equal(info.initiator, "error");
    typedCode(info.error, READ_CODES);
    assert.ok(errors.includes(info.error), "the closing error reached onError");
  } else {
    assert.ok(!mustFail, "garbage that can never frame must end in an error");
    assert.ok(info.initiator === "peer" || info.initiator === "local", `initiator ${info.initiator}`);
  }
  for (const e of errors) typedCode(e, READ_CODES);
}

describe("fuzz: session read path, in memory", () => {
  after(assertNoLeaks);

  for (const kind of KINDS) {
    it(`${kind.name}: random packages split anywhere arrive identical and in order`, T, async () => {
      await fc.assert(
        fc.asyncProperty(kind.pkgs, fc.array(fc.nat(), { maxLength: 24 }), async (pkgs, cuts) => {
          const bytes = encodeAll(kind, pkgs);
          const max = 1024;
          const r = await memoryRun(kind.make(), splitAt(bytes, cuts), max);
          assert.deepEqual(r.pkgs, pkgs);
          assert.equal(r.info.initiator, "peer");
          assert.equal(r.info.error, undefined);
          assert.deepEqual(r.errors, []);
          assert.deepEqual(r.reader.violations, []);
        }),
        { numRuns: RUNS },
      );
    });
  }

  it(
    "random garbage in random chunks: a typed error or a clean end, never more than maxMsgLen + one chunk",
    T,
    async () => {
      const unhandled = await collectUnhandled(async () => {
        await fc.assert(
          fc.asyncProperty(
            fc.constantFrom(...KINDS),
            fc.integer({ min: 1, max: 512 }),
            fc.uint8Array({ maxLength: 3000 }),
            fc.array(fc.nat(), { maxLength: 16 }),
            async (kind, max, junk, cuts) => {
              const r = await memoryRun(kind.make(), splitAt(junk, cuts), max);
              assertGarbageEnding(r.info, r.errors, false);
              assert.deepEqual(r.reader.violations, []);
            },
          ),
          { numRuns: RUNS * 2 },
        );
      });
      assert.deepEqual(unhandled, []);
    },
  );

  it("a header declaring more than maxMsgLen fails before the body is buffered (ERR_MESSAGE_TOO_LONG)", T, async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 8, max: 4096 }), fc.integer({ min: 1, max: 1 << 30 }), async (max, extra) => {
        const declared = Math.min(max + extra, 0xffff_ffff - 4);
        const header = new Uint8Array(4);
        new DataView(header.buffer).setUint32(0, declared);
        const r = await memoryRun(new LengthFieldCodec(), [header, pattern(Math.min(max, 64))], max);
        assert.equal(r.info.error?.code, "ERR_MESSAGE_TOO_LONG");
        assert.ok(r.reader.maxSeen <= 4 + Math.min(max, 64), `buffered ${r.reader.maxSeen}`);
      }),
      { numRuns: RUNS },
    );
  });

  it(
    "a misbehaving reader (throws anything, returns nonsense) closes only its session with ERR_CODEC / ERR_MESSAGE_TOO_LONG",
    T,
    async () => {
      const answer = fc.oneof(
        fc.constant<"more">("more"),
        fc.constant<"real">("real"),
        fc.record({ declared: fc.oneof(fc.integer({ min: -5, max: 5000 }), fc.constantFrom(NaN, Infinity, 0.5)) }),
        fc.record({ length: fc.oneof(fc.integer({ min: -5, max: 5000 }), fc.constantFrom(NaN, Infinity, 1.5)) }),
        fc.constantFrom<unknown>(new TypeError("boom"), "a string", 42, null, { code: "ERR_FAKE" }),
      );
      await fc.assert(
        fc.asyncProperty(
          fc.array(answer, { minLength: 1, maxLength: 12 }),
          fc.uint8Array({ maxLength: 600 }),
          fc.array(fc.nat(), { maxLength: 8 }),
          async (answers, data, cuts) => {
            let i = 0;
            const real = new LengthFieldCodec();
            const evil: Codec<unknown> = {
              read(_s, d): ReadResult<unknown> {
                const a = answers[i++ % answers.length];
                if (a === "more") return undefined;
                if (a === "real") return real.read(undefined, d);
                if (typeof a === "object" && a !== null && ("declared" in a || "length" in a)) {
                  return ("declared" in a
                    ? a
                    : { pkg: d.slice(0, 1), length: (a as { length: number }).length }) as ReadResult<unknown>;
                }
                throw a;
              },
              write: (_s, p) => p as Uint8Array,
            };
            const r = await memoryRun(evil, splitAt(data, cuts), 1000);
            assertGarbageEnding(r.info, r.errors, false);
            assert.deepEqual(r.reader.violations, []);
            if (r.info.error?.code === "ERR_CODEC" && r.info.error.message === "read failed") {
              assert.ok(r.info.error.cause !== undefined, "the thrown value is kept as the cause");
            }
          },
        ),
        { numRuns: RUNS * 2 },
      );
    },
  );
});

/** One connection of a stream property over TCP/TLS: write the chunks one by one, FIN, wait for the server side. */
async function streamRun(
  target: ReturnType<typeof streamTargets>[number],
  port: number,
  records: SessionRecord[],
  chunks: Uint8Array[],
): Promise<SessionRecord> {
  const raw = await target.raw(port);
  // Several runs may connect at once: find this connection's session by its client port.
  const remote = `127.0.0.1:${raw.localPort}`;
  let record: SessionRecord | undefined;
  await waitFor(() => (record = records.find((r) => r.session.remoteAddr === remote)), 5_000, "server session");
  for (const chunk of chunks) {
    if (raw.isClosed()) break;
    await raw.write(chunk);
    await tick();
  }
  raw.end();
  await within(record!.session.closed, 5_000, "server session to close");
  raw.destroy();
  await raw.closed;
  return record!;
}

/** A recording server whose sessions decode with `make()` behind a BoundedReader on the probed adapter. */
async function probedServer(
  target: ReturnType<typeof streamTargets>[number],
  make: () => Codec<unknown>,
  maxMsgLen: number,
): Promise<
  { server: TcpServer<Uint8Array>; records: SessionRecord[]; probe: ChunkProbe; readers: BoundedReader<unknown>[] }
> {
  const { adapter, probe } = await probedAdapter();
  const readers: BoundedReader<unknown>[] = [];
  const bySession = new WeakMap<object, BoundedReader<unknown>>();
  const codec = {
    read: (s: Session<Uint8Array> | undefined, d: Uint8Array) => {
      // One bounded reader per session (codecs may keep state), made on first use.
      let reader = bySession.get(s!);
      if (!reader) {
        reader = new BoundedReader(make(), maxMsgLen, () => probe.current);
        bySession.set(s!, reader);
        readers.push(reader);
      }
      return reader.read(undefined, d) as ReadResult<Uint8Array>;
    },
    write: (_s: unknown, p: Uint8Array) => p,
  } as Codec<Uint8Array>;
  const { server, records } = await recordingServer(
    target,
    { adapter, session: { maxMsgLen, readTimeout: 10_000 } },
    { echo: false, codec },
  );
  return { server, records, probe, readers };
}

for (const target of streamTargets()) {
  describe(`fuzz: session read path over real ${target.name}`, T, () => {
    after(assertNoLeaks);
    const runs = target.name === "tls" ? Math.ceil(RUNS / 6) : Math.ceil(RUNS / 3);

    it(`random packages, random splits, every built-in codec: identical and in order (${target.name})`, T, async () => {
      for (const kind of KINDS) {
        const { server, records, readers } = await probedServer(target, kind.make, 64 * 1024);
        try {
          await fc.assert(
            fc.asyncProperty(kind.pkgs, fc.array(fc.nat(), { maxLength: 12 }), async (pkgs, cuts) => {
              const record = await streamRun(target, server.port, records, splitAt(encodeAll(kind, pkgs), cuts));
              assert.deepEqual(record.packages, pkgs, kind.name);
              assert.equal(record.info?.initiator, "peer");
              assert.deepEqual(record.errors, []);
            }),
            { numRuns: runs },
          );
          for (const r of readers) assert.deepEqual(r.violations, []);
        } finally {
          await server.close();
        }
      }
    });

    it(
      `random garbage from many peers: typed errors on those sessions only; a healthy client keeps its round trips (${target.name})`,
      T,
      async () => {
        const max = 1024;
        const echo = await recordingServer(target, { session: { maxMsgLen: 4096 } });
        const { server, records, probe, readers } = await probedServer(target, () => new LengthFieldCodec(), max);
        const healthy = await collectingClient(target, echo.server.port);
        const hs = healthy.client.sessions[0];
        const inbox = healthy.got.get(hs)!;
        let trips = 0;
        const unhandled = await collectUnhandled(async () => {
          await fc.assert(
            fc.asyncProperty(
              fc.array(
                fc.tuple(
                  fc.boolean(),
                  fc.uint8Array({ minLength: 1, maxLength: 4000 }),
                  fc.array(fc.nat(), { maxLength: 6 }),
                ),
                {
                  minLength: 1,
                  maxLength: 4,
                },
              ),
              async (peers) => {
                // Several garbage peers at once; `poison` ones start with a header declaring 4 GiB.
                const ends = await Promise.all(peers.map(async ([poison, junk, cuts]) => {
                  const data = poison ? concatBytes([Uint8Array.of(0xff, 0xff, 0xff, 0xff), junk]) : junk;
                  return { poison, record: await streamRun(target, server.port, records, splitAt(data, cuts)) };
                }));
                for (const { poison, record } of ends) {
                  assertGarbageEnding(record.info!, record.errors, poison);
                  if (poison) assert.equal(record.info!.error!.code, "ERR_MESSAGE_TOO_LONG");
                }
                // The healthy session, on another server, is untouched.
                const want = inbox.length + 1;
                await hs.writePkg(pattern(100, trips));
                await waitFor(() => inbox.length >= want, 5_000, "healthy echo");
                assert.deepEqual(inbox[inbox.length - 1], pattern(100, trips++));
              },
            ),
            { numRuns: runs },
          );
        });
        assert.deepEqual(unhandled, []);
        for (const r of readers) assert.deepEqual(r.violations, []);
        assert.ok(probe.max > 0);
        assert.equal(hs.state, "open");
        assert.deepEqual(healthy.errors, []);
        assert.equal(server.isClosed(), false);
        // The garbage server still serves a well-behaved peer.
        const good = await streamRun(target, server.port, records, [frame4(te.encode("still serving"))]);
        assert.equal(good.packages.length, 1);
        await healthy.client.close();
        await Promise.all([server.close(), echo.server.close()]);
      },
    );
  });
}

describe("fuzz: read path memory bound, large frames over tcp", () => {
  after(assertNoLeaks);

  it("a 1 MiB frame trickled in random chunks: the reader never sees more than maxMsgLen + the chunk", T, async () => {
    const [target] = streamTargets();
    const max = 1 << 20;
    const { server, records, probe, readers } = await probedServer(target, () => new LengthFieldCodec(), max);
    const body = pattern(max - 4, 3);
    const cuts = Array.from({ length: 40 }, (_, i) => Math.floor(((i + 1) * max) / 41) + (i % 7) * 13);
    const record = await streamRun(target, server.port, records, splitAt(frame4(body), cuts));
    assert.equal(record.packages.length, 1);
    assert.deepEqual(record.packages[0], body);
    // And one byte more than maxMsgLen is refused from the header, before the body.
    const over = await streamRun(target, server.port, records, [frame4(new Uint8Array(max - 3))]);
    assert.equal(over.info?.error?.code, "ERR_MESSAGE_TOO_LONG");
    assert.equal(over.packages.length, 0);
    for (const r of readers) assert.deepEqual(r.violations, []);
    const seen = Math.max(...readers.map((r) => r.maxSeen));
    assert.ok(seen <= max + probe.max, `reader saw ${seen} > ${max} + ${probe.max}`);
    await server.close();
    await sleep(0);
  });
});
