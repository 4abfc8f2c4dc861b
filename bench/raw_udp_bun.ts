/**
 * Raw UDP echo server on `Bun.udpSocket`: the baseline the library's `examples/echo_server.ts --transport udp` is
 * measured against. No library code.
 *
 * Same framing work as the library's UDP echo (one length-prefixed package per datagram): every datagram's
 * 4-byte big-endian length is parsed and checked (at most `--max-len`, and exactly the rest of the datagram;
 * anything else is dropped, as the library drops an undecodable datagram), and the package is echoed to its
 * sender re-framed (length written, body copied) into one fresh buffer, one `send()` per datagram. A send the
 * kernel refuses (`false`: send buffer full) is queued and retried from `drain`, in order, as the library's
 * driver does; a send that throws is dropped. The `error` handler (ICMP errors) is required on Bun.
 *
 *   bun bench/raw_udp_bun.ts --host 127.0.0.1 --port 0 [--max-len N]
 *
 * Prints `listening udp <host>:<port>` once ready, like the library's echo server.
 *
 * @module
 */

import { parseArgs, reframeDatagram, requireTransport } from "./raw_common.ts";

const args = parseArgs("raw_udp_bun", Bun.argv.slice(2), {
  transport: "udp",
  host: "127.0.0.1",
  port: "0",
  "max-len": String(4 * 1024 * 1024),
});
const MAX_LEN = Number(args["max-len"]);

requireTransport("raw_udp_bun", args.transport, "udp");

type Pending = [Uint8Array, number, string];
/** Replies the kernel did not take yet, in order. */
let queue: Pending[] = [];

function trySend(socket: { send(d: Uint8Array, port: number, address: string): boolean }, p: Pending): boolean {
  try {
    return socket.send(p[0], p[1], p[2]);
  } catch {
    return true; // can never be sent: dropped
  }
}

const socket = await Bun.udpSocket({
  hostname: args.host,
  port: Number(args.port),
  binaryType: "uint8array",
  socket: {
    data(s, data, port, address) {
      const out = reframeDatagram(data, MAX_LEN);
      if (!out) return;
      const p: Pending = [out, port, address];
      if (queue.length > 0 || !trySend(s, p)) queue.push(p);
    },
    drain(s) {
      let i = 0;
      while (i < queue.length && trySend(s, queue[i])) i++;
      queue = i === queue.length ? [] : queue.slice(i);
    },
    error() {
      // ICMP errors (a client's closed port): without this handler Bun ends the process.
    },
  },
});
console.log(`listening udp ${args.host}:${socket.port}`);
for (const sig of ["SIGINT", "SIGTERM"] as const) process.on(sig, () => process.exit(0));
