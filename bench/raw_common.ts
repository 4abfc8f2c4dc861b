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
