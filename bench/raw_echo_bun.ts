/**
 * Raw framed echo server on `Bun.listen`: the baseline the library's `examples/echo_server.ts` is measured
 * against. No library code. Plain Bun style: one handler object, per-socket state in `socket.data`.
 *
 * Same framing work as the library: every package's 4-byte big-endian length is parsed and checked against
 * `--max-len`, packages split across `data` chunks are assembled in a per-socket cumulation buffer (grown to the
 * declared frame, released when it empties if large), and the reply to one chunk holds every complete package
 * of that chunk, each re-framed (length written, body copied) into one fresh buffer: one `socket.write()` per
 * chunk. Bun's `write()` is unbuffered, so the unwritten tail is kept and retried from `drain`; while a tail is
 * pending, later replies are appended to it (order kept) and reading pauses once it exceeds 1 MiB.
 *
 *   bun bench/raw_echo_bun.ts --transport tcp --host 127.0.0.1 --port 0 [--max-len N]
 *
 * Prints `listening tcp <host>:<port>` once ready, like the library's echo server.
 *
 * @module
 */

import { parseArgs, reframeStream, requireTransport } from "./raw_common.ts";

const args = parseArgs("raw_echo_bun", Bun.argv.slice(2), {
  transport: "tcp",
  host: "127.0.0.1",
  port: "0",
  "max-len": String(4 * 1024 * 1024),
});
const MAX_LEN = Number(args["max-len"]);
/** Cumulation buffers up to this size are kept when they empty (same rule as the library's ReadBuffer). */
const KEEP_BYTES = 16 * 1024;
/** Pending reply bytes above which the socket stops reading until `drain` empties them. */
const PAUSE_BYTES = 1024 * 1024;
const EMPTY = new Uint8Array(0);

interface State {
  acc: Uint8Array; // cumulation buffer for a partial frame
  accLen: number;
  tail: Uint8Array | undefined; // reply bytes the kernel has not taken yet
  paused: boolean;
}

type Sock = Bun.Socket<State>;

function send(socket: Sock, st: State, out: Uint8Array): void {
  if (st.tail) {
    const joined = new Uint8Array(st.tail.length + out.length);
    joined.set(st.tail);
    joined.set(out, st.tail.length);
    st.tail = joined;
    if (!st.paused && joined.length > PAUSE_BYTES) {
      st.paused = true;
      socket.pause();
    }
    return;
  }
  const n = socket.write(out);
  if (n < 0) return void socket.end();
  if (n < out.length) st.tail = out.subarray(n);
}

function onData(socket: Sock, chunk: Uint8Array): void {
  const st = socket.data;
  let data: Uint8Array;
  const fromAcc = st.accLen > 0;
  if (fromAcc) {
    if (st.accLen + chunk.length > st.acc.length) {
      const grown = new Uint8Array(Math.max(st.accLen + chunk.length, st.acc.length * 2));
      grown.set(st.acc.subarray(0, st.accLen));
      st.acc = grown;
    }
    st.acc.set(chunk, st.accLen);
    st.accLen += chunk.length;
    data = st.acc.subarray(0, st.accLen);
  } else {
    data = chunk;
  }
  let found;
  try {
    found = reframeStream(data, MAX_LEN);
  } catch {
    return void socket.end(); // oversize frame
  }
  const { reply, consumed: off, need } = found;
  if (reply) send(socket, st, reply);
  const rest = data.length - off;
  if (rest === 0) {
    st.accLen = 0;
    if (st.acc.length > KEEP_BYTES) st.acc = EMPTY;
  } else if (!fromAcc) {
    if (st.acc.length < Math.max(rest, need)) st.acc = new Uint8Array(Math.max(rest, need, 1024));
    st.acc.set(data.subarray(off), 0);
    st.accLen = rest;
  } else {
    if (off > 0) st.acc.copyWithin(0, off, st.accLen);
    st.accLen = rest;
  }
}

function onDrain(socket: Sock): void {
  const st = socket.data;
  const tail = st.tail;
  if (!tail) return;
  const n = socket.write(tail);
  if (n < 0) return void socket.end();
  if (n < tail.length) {
    st.tail = tail.subarray(n);
    return;
  }
  st.tail = undefined;
  if (st.paused) {
    st.paused = false;
    socket.resume();
  }
}

requireTransport("raw_echo_bun", args.transport, "tcp", " (WebSocket, UDP: bench/raw_ws_bun.ts, raw_udp_bun.ts)");

const server = Bun.listen<State>({
  hostname: args.host,
  port: Number(args.port),
  socket: {
    binaryType: "uint8array",
    open(socket) {
      socket.setNoDelay(true);
      socket.data = { acc: EMPTY, accLen: 0, tail: undefined, paused: false };
    },
    data: onData,
    drain: onDrain,
    error(socket) {
      socket.end();
    },
  },
});
console.log(`listening tcp ${args.host}:${server.port}`);
for (const sig of ["SIGINT", "SIGTERM"] as const) process.on(sig, () => process.exit(0));
