/**
 * Echo server. Over TCP and TLS each package is a 4-byte big-endian length followed by that many bytes, and
 * every package is echoed back framed the same way. Prints exactly one line
 * `listening <transport> <host>:<port>` on stdout once ready (other tools depend on it).
 *
 *   deno run -A examples/echo_server.ts --transport tcp --host 127.0.0.1 --port 0
 *   bun examples/echo_server.ts --transport tls --cert tests/fixtures/tls/leaf.crt --key tests/fixtures/tls/leaf.key
 *
 * Options: --transport (default tcp; see TRANSPORTS), --host (127.0.0.1), --port (0 = any), --max-len N
 * (largest declared length, default 4 MiB: a longer one closes that session only), --cert/--key PEM files
 * for secure transports, --verbose (log sessions to stderr). Each transport family lives in examples/echo/.
 *
 * @module
 */
import { readFileSync } from "node:fs";
import process from "node:process";
import { parseArgs } from "node:util";
import { SESSION_DEFAULTS } from "../mod.ts";
import type { Serve } from "./echo/types.ts";

/** Transport name → module in examples/echo/, and whether it needs --cert/--key. */
const TRANSPORTS: Record<string, { family: string; secure: boolean }> = {
  tcp: { family: "tcp", secure: false },
  tls: { family: "tcp", secure: true },
  udp: { family: "udp", secure: false },
  ws: { family: "ws", secure: false },
  wss: { family: "ws", secure: true },
};

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    transport: { type: "string", default: "tcp" },
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string", default: "0" },
    "max-len": { type: "string", default: String(SESSION_DEFAULTS.maxMsgLen) },
    cert: { type: "string" },
    key: { type: "string" },
    verbose: { type: "boolean", default: false },
  },
});

function fail(message: string): never {
  console.error(`echo_server: ${message}`);
  process.exit(2);
}

const transport = values.transport;
const spec = TRANSPORTS[transport];
if (!spec) fail(`unsupported --transport ${transport} (${Object.keys(TRANSPORTS).join(", ")})`);
if (spec.secure && (!values.cert || !values.key)) fail(`--transport ${transport} needs --cert FILE and --key FILE`);

const { serve } = await import(`./echo/${spec.family}.ts`) as { serve: Serve };
const server = await serve({
  transport,
  host: values.host,
  port: Number(values.port),
  maxLen: Number(values["max-len"]),
  cert: spec.secure ? readFileSync(values.cert!, "utf8") : undefined,
  key: spec.secure ? readFileSync(values.key!, "utf8") : undefined,
  log: values.verbose ? (line) => console.error(`[server] ${line}`) : () => {},
});
console.log(`listening ${transport} ${values.host}:${server.port}`);

const stop = async () => {
  await server.close();
  process.exit(0);
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
