/**
 * The library's JavaScript cost per UDP datagram on Deno, without sockets: `Deno.listenDatagram` is replaced by a
 * fake whose `receive()` hands out 64-byte length-prefixed datagrams from 32 peers at once and whose `send()`
 * resolves at once. The echo server's endpoint (examples/echo/udp.ts: one session, `onMessage` → `send(pkg,
 * { to: from })`) runs on it, and so does the raw server's loop (bench/raw_udp_deno.ts). Prints CPU ns per datagram
 * for each, best of 7 rounds. Not a test and not the benchmark of record (bench/run.mjs): it isolates the code a
 * change touches, e.g. to compare two checkouts.
 *
 *   deno run -A --unstable-net bench/micro_udp_deno.ts
 *
 * @module
 */
import process from "node:process";
import { LengthFieldCodec, UdpEndpoint } from "../mod.ts";
import { reframeDatagram } from "./raw_common.ts";

const PEERS = 32;
const DATAGRAMS = 400_000;
const ROUNDS = 7;
const SIZE = 64;

const payload = new Uint8Array(4 + SIZE);
new DataView(payload.buffer).setUint32(0, SIZE);
const addrs: Deno.NetAddr[] = [];
for (let i = 0; i < PEERS; i++) addrs.push({ transport: "udp", hostname: "127.0.0.1", port: 40_000 + i });

/** A fake DatagramConn: `limit` datagrams per round, then receive() waits for the next round. */
class FakeConn {
  readonly addr: Deno.NetAddr = { transport: "udp", hostname: "127.0.0.1", port: 9 };
  left = 0;
  sent = 0;
  #i = 0;
  #next: ((v: [Uint8Array, Deno.Addr]) => void) | undefined;
  #buf: Uint8Array | undefined;
  receive(buf: Uint8Array): Promise<[Uint8Array, Deno.Addr]> {
    if (this.left === 0) {
      this.#buf = buf;
      return new Promise((resolve) => (this.#next = resolve));
    }
    return Promise.resolve(this.#datagram(buf));
  }
  #datagram(buf: Uint8Array): [Uint8Array, Deno.Addr] {
    this.left--;
    buf.set(payload);
    const addr = addrs[this.#i++ % PEERS];
    return [buf.subarray(0, payload.length), { transport: "udp", hostname: addr.hostname, port: addr.port }];
  }
  /** Starts a round of `n` datagrams. */
  feed(n: number): void {
    this.left = n;
    const next = this.#next;
    this.#next = undefined;
    next?.(this.#datagram(this.#buf!));
  }
  send(data: Uint8Array, _addr: Deno.Addr): Promise<number> {
    this.sent++;
    return Promise.resolve(data.length);
  }
  close(): void {}
}

let conn = new FakeConn();
(Deno as unknown as { listenDatagram: () => FakeConn }).listenDatagram = () => conn;

/** CPU ns per datagram for one round of {@link DATAGRAMS} through `fake`. */
async function round(fake: FakeConn): Promise<number> {
  const target = fake.sent + DATAGRAMS;
  const start = process.cpuUsage();
  fake.feed(DATAGRAMS);
  while (fake.sent < target) await new Promise((r) => setTimeout(r, 1));
  const used = process.cpuUsage(start);
  return ((used.user + used.system) * 1000) / DATAGRAMS;
}

/** Prints the best of {@link ROUNDS} rounds. */
async function best(name: string, fake: FakeConn): Promise<void> {
  let min = Infinity;
  for (let i = 0; i < ROUNDS; i++) min = Math.min(min, await round(fake));
  console.log(`${name}: ${min.toFixed(0)} ns per datagram`);
}

// The library: the echo example's endpoint.
const endpoint = new UdpEndpoint<Uint8Array>({ port: 0, session: { reuseReadBuffer: true } });
await endpoint.runEventLoop((session) => {
  session.setPkgHandler(new LengthFieldCodec());
  session.setEventListener({ onMessage: (s, pkg, from) => void s.send(pkg, { to: from! }) });
});
const libraryConn = conn;

// The raw loop of bench/raw_udp_deno.ts on a fake of its own.
conn = new FakeConn();
const rawConn = conn;
const ignore = () => {};
void (async () => {
  const buf = new Uint8Array(64 * 1024);
  for (;;) {
    const [data, addr] = await rawConn.receive(buf);
    const out = reframeDatagram(data, 4 * 1024 * 1024);
    if (!out) continue;
    rawConn.send(out, addr).catch(ignore);
  }
})();

for (let i = 0; i < 2; i++) {
  await best("raw", rawConn);
  await best("library", libraryConn);
}
Deno.exit(0);
