/**
 * The library's JavaScript cost per package, without sockets: a fake stream transport feeds 50 sessions (the
 * echo server's codec and handler: `LengthFieldCodec`, `onMessage` → `send`) chunks of 16 framed 64-byte packages,
 * and its `write` / `writeRange` return at once (`writeRange` makes a view on Deno, as the Deno adapter does;
 * `--pkgs 1` or `4` weighs the per-read costs). The raw servers' parse-and-copy loop (bench/raw_echo_*.ts) runs on the same
 * chunks for comparison. Prints CPU ns per package for each, best of 15 rounds. Not a test and not the benchmark of
 * record (bench/run.mjs): it isolates the code a change touches, e.g. to compare two checkouts on one runtime.
 *
 *   deno run -A bench/micro_session.ts        bun bench/micro_session.ts        [--sessions N] [--pkgs N]
 *
 * @module
 */
import process from "node:process";
import { parseArgs } from "node:util";
import { LengthFieldCodec, type Session, TcpServer } from "../mod.ts";
import { onJavaScriptCore } from "../src/runtime/select.ts";
import type { RuntimeAdapter, Transport, TransportSink } from "../src/transport.ts";
import { reframeStream } from "./raw_common.ts";

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: { sessions: { type: "string", default: "50" }, pkgs: { type: "string", default: "16" } },
});
const SESSIONS = Number(values.sessions);
const PKGS = Number(values.pkgs);
const SIZE = 64;
const CHUNKS = 1000;
const READS = 100_000;
const ROUNDS = 15;
const MAX_LEN = 4 * 1024 * 1024;

const codec = new LengthFieldCodec();
const frame = codec.write(undefined, new Uint8Array(SIZE).fill(7));

function chunks(): Uint8Array[] {
  return Array.from({ length: CHUNKS }, () => {
    const c = new Uint8Array(frame.length * PKGS);
    for (let i = 0; i < PKGS; i++) c.set(frame, i * frame.length);
    return c;
  });
}

/** CPU time (user + system) of `fn`, in ns per package. */
function cpuNsPerPkg(fn: () => void): number {
  const start = process.cpuUsage();
  fn();
  const used = process.cpuUsage(start);
  return (used.user + used.system) * 1000 / (READS * PKGS);
}

// ---- the library: sessions on a fake transport -----------------------------------------------------------------

const sinks: TransportSink[] = [];
let written = 0;
const fakeTransport = (): Transport => ({
  framing: "stream",
  retainableChunks: true,
  localAddr: "127.0.0.1:1",
  remoteAddr: "127.0.0.1:2",
  start: (sink) => void sinks.push(sink),
  pause() {},
  resume() {},
  write(chunk) {
    written += chunk.length;
    return true;
  },
  // Like the adapters: Bun writes the range itself, Deno writes a view of it.
  writeRange: onJavaScriptCore()
    ? (_buf, start, end) => {
      written += end - start;
      return true;
    }
    : (buf, start, end) => {
      written += buf.subarray(start, end).length;
      return true;
    },
  close() {},
});
let connect: (t: Transport) => void = () => {};
const adapter: RuntimeAdapter = {
  name: "fake",
  listenTcp(options) {
    connect = options.onConnection;
    return Promise.resolve({ hostname: "127.0.0.1", port: 1, close() {} });
  },
  connectTcp: () => Promise.reject(new Error("not supported")),
};
const server = new TcpServer<Uint8Array>({ host: "127.0.0.1", port: 0, adapter });
await server.runEventLoop((session: Session<Uint8Array>) => {
  session.setPkgHandler(codec);
  session.setEventListener({ onMessage: (s, pkg) => void s.send(pkg) });
});
for (let i = 0; i < SESSIONS; i++) connect(fakeTransport());
while (sinks.length < SESSIONS) await new Promise((resolve) => setTimeout(resolve, 1));

// ---- raw: the raw TCP echo servers' per-read work (the same function) --------------------------------------------------------------------

let rawWritten = 0;
function rawRead(data: Uint8Array): void {
  rawWritten += reframeStream(data, MAX_LEN).reply?.length ?? 0;
}

const best = { library: Infinity, raw: Infinity };
for (let round = 0; round < ROUNDS; round++) {
  const input = chunks();
  best.library = Math.min(
    best.library,
    cpuNsPerPkg(() => {
      for (let i = 0; i < READS; i++) sinks[i % SESSIONS].data(input[i % CHUNKS]);
    }),
  );
  best.raw = Math.min(
    best.raw,
    cpuNsPerPkg(() => {
      for (let i = 0; i < READS; i++) rawRead(input[i % CHUNKS]);
    }),
  );
}
const expected = ROUNDS * READS * PKGS * frame.length;
if (written !== expected || rawWritten !== expected) {
  console.error(`micro_session: echoed ${written} / ${rawWritten} bytes, expected ${expected}`);
  process.exit(1);
}
console.log(
  `${SESSIONS} sessions × ${PKGS} packages of ${SIZE} B per read: library ${best.library.toFixed(1)} ns/package, ` +
    `raw loop ${best.raw.toFixed(1)} ns/package (CPU time, best of ${ROUNDS} rounds)`,
);
await server.close();
process.exit(0);
