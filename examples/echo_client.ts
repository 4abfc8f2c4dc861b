/**
 * Echo client, the counterpart of echo_server.ts: sends `--count` packages of `--size` bytes over each of
 * `--connections` sessions, checks that every echo matches (content and order), and prints a summary.
 * Exits 0 when every package came back intact, 1 otherwise.
 *
 *   deno run -A examples/echo_client.ts --transport tcp --host 127.0.0.1 --port 8000 --count 100
 *   bun examples/echo_client.ts --transport tls --port 8443 --ca tests/fixtures/tls/ca.crt
 *
 * @module
 */
import { readFileSync } from "node:fs";
import process from "node:process";
import { parseArgs } from "node:util";
import type { Session } from "../mod.ts";
import type { Connect } from "./echo/types.ts";

const FAMILIES: Record<string, string> = { tcp: "tcp", tls: "tcp", udp: "udp", ws: "ws", wss: "ws" };

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    transport: { type: "string", default: "tcp" },
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string" },
    ca: { type: "string" },
    "server-name": { type: "string" },
    count: { type: "string", default: "10" },
    size: { type: "string", default: "32" },
    connections: { type: "string", default: "1" },
    timeout: { type: "string", default: "30000" },
    verbose: { type: "boolean", default: false },
  },
});

function fail(message: string): never {
  console.error(`echo_client: ${message}`);
  process.exit(2);
}

if (!values.port) fail("--port is required");
const transport = values.transport;
const family = FAMILIES[transport];
if (!family) fail(`unsupported --transport ${transport} (${Object.keys(FAMILIES).join(", ")})`);
const count = Number(values.count);
const size = Number(values.size);
const log = values.verbose ? (line: string) => console.log(`[client] ${line}`) : () => {};

/** Package i of a session: its index and a byte pattern, so reordering or corruption is detected. */
function makePackage(i: number): Uint8Array {
  const pkg = new Uint8Array(Math.max(size, 4));
  new DataView(pkg.buffer).setUint32(0, i);
  for (let j = 4; j < pkg.length; j++) pkg[j] = (i + j) & 0xff;
  return pkg;
}

const { connect } = await import(`./echo/${family}.ts`) as { connect: Connect };
const done: Array<Promise<number>> = [];
const received: number[] = [];
const echoed = () => received.reduce((a, b) => a + b, 0);
const started = performance.now();
const client = await connect({
  transport,
  host: values.host,
  port: Number(values.port),
  ca: values.ca ? readFileSync(values.ca, "utf8") : undefined,
  serverName: values["server-name"],
  connections: Number(values.connections),
}, (session: Session<Uint8Array>) => {
  let next = 0;
  let bad = 0;
  const slot = received.push(0) - 1;
  let resolve!: (bad: number) => void;
  done.push(new Promise((r) => (resolve = r)));
  session.setEventListener({
    onOpen: (s) => log(`connected ${s.localAddr} -> ${s.remoteAddr}`),
    onMessage: (s, pkg) => {
      const expected = makePackage(next);
      if (pkg.length !== expected.length || pkg.some((b, j) => b !== expected[j])) bad++;
      if (next < 3) log(`echo ${next}: ${pkg.length} bytes ${pkg.length === expected.length ? "ok" : "BAD"}`);
      received[slot] = next + 1 - bad;
      if (++next === count) {
        log(`session ${s.id}: ${count} echoes, ${bad} bad; ${s.stat()}`);
        resolve(bad);
      }
    },
    onClose: (_s, info) => {
      if (next < count) {
        console.error(`session closed after ${next}/${count} echoes: ${info.error?.message ?? info.initiator}`);
        resolve(bad + count - next);
      }
    },
  });
});
for (const session of client.sessions) {
  for (let i = 0; i < count; i++) void session.writePkg(makePackage(i)).catch(() => {});
}
// --timeout bounds the wait: over UDP a lost datagram would otherwise never be echoed.
let timedOut = false;
let timer: ReturnType<typeof setTimeout> | undefined;
const deadline = new Promise<void>((resolve) => {
  timer = setTimeout(() => {
    timedOut = true;
    resolve();
  }, Number(values.timeout));
});
await Promise.race([Promise.all(done), deadline]);
clearTimeout(timer);
const bad = timedOut ? count * client.sessions.length - echoed() : (await Promise.all(done)).reduce((a, b) => a + b, 0);
if (timedOut) console.error(`timed out after ${values.timeout} ms: ${bad} package(s) never came back`);
const ms = performance.now() - started;
const total = count * client.sessions.length;
const sessions = client.sessions.length;
await client.close();
const verdict = bad === 0 ? "ok" : "FAILED";
const summary = `${verdict}: ${total - bad}/${total} packages echoed intact over ${sessions} ${transport} session(s)`;
// Exit once the line is written: process.exit() right after console.log can drop it when stdout is a pipe.
process.stdout.write(`${summary} in ${ms.toFixed(1)} ms\n`, () => process.exit(bad === 0 ? 0 : 1));
