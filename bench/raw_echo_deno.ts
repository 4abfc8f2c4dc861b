/**
 * Raw framed echo server on `Deno.listen`: the baseline the library's `examples/echo_server.ts` is measured
 * against. No library code. The fastest plain style on Deno: per connection a `conn.read()` loop into one reused
 * buffer (the same 64 KiB as the library's adapter), and one `conn.write()` loop (partial writes continued) per
 * read, awaited before the next read.
 *
 * Same framing work as the library: every package's 4-byte big-endian length is parsed and checked against
 * `--max-len`, packages split across reads are assembled in a per-connection cumulation buffer (grown to the
 * declared frame, released when it empties if large), and the reply to one read holds every complete package of
 * that read, each re-framed (length written, body copied) into one fresh buffer: one socket write per read.
 *
 *   deno run -A bench/raw_echo_deno.ts --transport tcp --host 127.0.0.1 --port 0 [--max-len N] [--read-buf N]
 *
 * Prints `listening tcp <host>:<port>` once ready, like the library's echo server.
 *
 * @module
 */

import { parseArgs, reframeStream, requireTransport } from "./raw_common.ts";

const args = parseArgs("raw_echo_deno", Deno.args, {
  transport: "tcp",
  host: "127.0.0.1",
  port: "0",
  "max-len": String(4 * 1024 * 1024),
  "read-buf": String(64 * 1024),
});
const MAX_LEN = Number(args["max-len"]);
const READ_BUF = Number(args["read-buf"]);
/** Cumulation buffers up to this size are kept when they empty (same rule as the library's ReadBuffer). */
const KEEP_BYTES = 16 * 1024;

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  let off = 0;
  while (off < data.length) off += await conn.write(off === 0 ? data : data.subarray(off));
}

/** One connection: read, cut frames, echo every complete frame of this read in one write. */
async function serve(conn: Deno.TcpConn): Promise<void> {
  conn.setNoDelay(true);
  const buf = new Uint8Array(READ_BUF);
  let acc = new Uint8Array(0); // cumulation buffer for a partial frame
  let accLen = 0;
  try {
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      let data: Uint8Array;
      const fromAcc = accLen > 0;
      if (fromAcc) {
        if (accLen + n > acc.length) {
          const grown = new Uint8Array(Math.max(accLen + n, acc.length * 2));
          grown.set(acc.subarray(0, accLen));
          acc = grown;
        }
        acc.set(buf.subarray(0, n), accLen);
        accLen += n;
        data = acc.subarray(0, accLen);
      } else {
        data = buf.subarray(0, n);
      }
      const { reply, consumed: off, need } = reframeStream(data, MAX_LEN); // throws on an oversize frame
      if (reply) await writeAll(conn, reply);
      // Keep the rest (a partial frame) for the next read.
      const rest = data.length - off;
      if (rest === 0) {
        accLen = 0;
        if (acc.length > KEEP_BYTES) acc = new Uint8Array(0);
      } else if (!fromAcc) {
        if (acc.length < Math.max(rest, need)) acc = new Uint8Array(Math.max(rest, need, 1024));
        acc.set(data.subarray(off), 0);
        accLen = rest;
      } else {
        if (off > 0) acc.copyWithin(0, off, accLen);
        accLen = rest;
      }
    }
  } catch {
    // reset by peer, oversize frame, …: drop the connection
  } finally {
    try {
      conn.close();
    } catch {
      // already closed
    }
  }
}

requireTransport("raw_echo_deno", args.transport, "tcp", " (WebSocket, UDP: bench/raw_ws_deno.ts, raw_udp_deno.ts)");
const listener = Deno.listen({ hostname: args.host, port: Number(args.port) });
console.log(`listening tcp ${args.host}:${(listener.addr as Deno.NetAddr).port}`);
for (const sig of ["SIGINT", "SIGTERM"] as const) Deno.addSignalListener(sig, () => Deno.exit(0));
for (;;) {
  let conn: Deno.Conn;
  try {
    conn = await listener.accept();
  } catch (error) {
    console.error(`raw_echo_deno: accept failed: ${error}`); // e.g. EMFILE: keep going, like the library
    await new Promise((resolve) => setTimeout(resolve, 10));
    continue;
  }
  void serve(conn as Deno.TcpConn);
}
