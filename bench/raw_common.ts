/**
 * What the raw echo servers share (still no library code): their command-line parsing and the UDP echo's
 * framing. Runs on Deno and Bun.
 *
 * @module
 */
import process from "node:process";

/** `--key value` pairs over `defaults`; an unknown or incomplete option exits with status 2. */
export function parseArgs(name: string, argv: string[], defaults: Record<string, string>): Record<string, string> {
  const out = { ...defaults };
  for (let i = 0; i < argv.length; i++) {
    const key = argv[i].replace(/^--/, "");
    if (!(key in defaults) || i + 1 >= argv.length) {
      console.error(`${name}: unknown or incomplete option ${argv[i]}`);
      process.exit(2);
    }
    out[key] = argv[++i];
  }
  return out;
}

/** Exits with status 2 unless `transport` is `expected` (each raw server serves one transport). */
export function requireTransport(name: string, transport: string, expected: string, others = ""): void {
  if (transport === expected) return;
  console.error(`${name}: only --transport ${expected} (got ${transport})${others}`);
  process.exit(2);
}

/**
 * The UDP echo's reply to one datagram, the library's framing (one package per datagram): the 4-byte big-endian
 * length must be at most `maxLen` and exactly the rest of the datagram, else undefined (drop it); the package is
 * re-framed (length written, body copied) into one fresh buffer.
 */
export function reframeDatagram(data: Uint8Array, maxLen: number): Uint8Array | undefined {
  if (data.length < 4) return undefined;
  const len = ((data[0] << 24) | (data[1] << 16) | (data[2] << 8) | data[3]) >>> 0;
  if (len > maxLen || len !== data.length - 4) return undefined;
  const out = new Uint8Array(4 + len);
  out[0] = len >>> 24;
  out[1] = len >>> 16;
  out[2] = len >>> 8;
  out[3] = len;
  out.set(data.subarray(4), 4);
  return out;
}

/** What {@link reframeStream} found in one read's bytes. */
export interface StreamReply {
  /** Every complete frame, re-framed into one fresh buffer; undefined when there is none. */
  reply: Uint8Array | undefined;
  /** Bytes of `data` those frames took; the rest is the start of an incomplete frame. */
  consumed: number;
  /** Declared size of that incomplete frame (header included) when its header is complete, else 0. */
  need: number;
}

/**
 * The raw TCP echo's work for the bytes of one read (the library's framing: 4-byte big-endian length, then the
 * body): pass 1 finds the complete frames and checks every declared length against `maxLen` (throws above it);
 * pass 2 re-frames each one (length written, body copied) into one fresh buffer, the reply to that read.
 */
export function reframeStream(data: Uint8Array, maxLen: number): StreamReply {
  let off = 0;
  let need = 0;
  while (data.length - off >= 4) {
    const len = ((data[off] << 24) | (data[off + 1] << 16) | (data[off + 2] << 8) | data[off + 3]) >>> 0;
    if (len > maxLen) throw new RangeError(`declared length ${len} > ${maxLen}`);
    if (data.length - off < 4 + len) {
      need = 4 + len;
      break;
    }
    off += 4 + len;
  }
  if (off === 0) return { reply: undefined, consumed: 0, need };
  const out = new Uint8Array(off);
  let p = 0;
  while (p < off) {
    const len = ((data[p] << 24) | (data[p + 1] << 16) | (data[p + 2] << 8) | data[p + 3]) >>> 0;
    out[p] = len >>> 24;
    out[p + 1] = len >>> 16;
    out[p + 2] = len >>> 8;
    out[p + 3] = len;
    out.set(data.subarray(p + 4, p + 4 + len), p + 4);
    p += 4 + len;
  }
  return { reply: out, consumed: off, need };
}
