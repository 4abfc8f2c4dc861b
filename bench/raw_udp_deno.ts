/**
 * Raw UDP echo server on `Deno.listenDatagram` (needs `--unstable-net`): the baseline the library's
 * `examples/echo_server.ts --transport udp` is measured against. No library code.
 *
 * Same framing work as the library's UDP echo (one length-prefixed package per datagram): every datagram's
 * 4-byte big-endian length is parsed and checked (at most `--max-len`, and exactly the rest of the datagram;
 * anything else is dropped, as the library drops an undecodable datagram), and the package is echoed to its
 * sender re-framed (length written, body copied) into one fresh buffer, one `send()` per datagram. Reads go into
 * one reused 64 KiB buffer, like the library's driver. `send()` is not awaited before the next `receive()` (the
 * library's driver too keeps reading while its writes are pending); a failed send is ignored (UDP).
 *
 *   deno run -A --unstable-net bench/raw_udp_deno.ts --host 127.0.0.1 --port 0 [--max-len N] [--await-send 1]
 *
 * `--await-send 1` awaits each `send()` before the next `receive()` instead (the other plain style; slower).
 * Prints `listening udp <host>:<port>` once ready, like the library's echo server.
 *
 * @module
 */

import { parseArgs, reframeDatagram, requireTransport } from "./raw_common.ts";

const args = parseArgs("raw_udp_deno", Deno.args, {
  transport: "udp",
  host: "127.0.0.1",
  port: "0",
  "max-len": String(4 * 1024 * 1024),
  "await-send": "0",
});
const MAX_LEN = Number(args["max-len"]);
const AWAIT_SEND = args["await-send"] === "1";

requireTransport("raw_udp_deno", args.transport, "udp");
if (typeof Deno.listenDatagram !== "function") {
  console.error("raw_udp_deno: Deno.listenDatagram is missing: run with --unstable-net");
  Deno.exit(2);
}

const conn = Deno.listenDatagram({ transport: "udp", hostname: args.host, port: Number(args.port) });
console.log(`listening udp ${args.host}:${(conn.addr as Deno.NetAddr).port}`);
for (const sig of ["SIGINT", "SIGTERM"] as const) Deno.addSignalListener(sig, () => Deno.exit(0));
const buf = new Uint8Array(64 * 1024);
const ignore = () => {};
for (;;) {
  const [data, addr] = await conn.receive(buf);
  const out = reframeDatagram(data, MAX_LEN);
  if (!out) continue;
  if (AWAIT_SEND) await conn.send(out, addr).catch(ignore);
  else conn.send(out, addr).catch(ignore);
}
