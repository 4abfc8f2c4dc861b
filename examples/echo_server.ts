/**
 * Echo server. Each package is a 4-byte big-endian length followed by that many bytes; every package is
 * echoed back framed the same way. Prints exactly one line `listening <transport> <host>:<port>` on stdout
 * once ready (other tools depend on it).
 *
 *   deno run -A examples/echo_server.ts --transport tcp --host 127.0.0.1 --port 0
 *   bun examples/echo_server.ts --transport tls --cert tests/fixtures/tls/leaf.crt --key tests/fixtures/tls/leaf.key
 *
 * Options: --transport tcp|tls (default tcp), --host (127.0.0.1), --port (0 = any), --max-len N (largest
 * declared length, default 4 MiB: a longer declared length closes that session only; the session's maxMsgLen
 * is N + 4, since it counts the header too), --cert/--key PEM files for tls,
 * --verbose (log sessions to stderr).
 *
 * @module
 */
import { readFileSync } from "node:fs";
import process from "node:process";
import { parseArgs } from "node:util";
import { LengthFieldCodec, SESSION_DEFAULTS, TcpServer } from "../mod.ts";

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
if (transport !== "tcp" && transport !== "tls") fail(`unsupported --transport ${transport} (tcp or tls)`);
let tls: { cert: string; key: string } | undefined;
if (transport === "tls") {
  if (!values.cert || !values.key) fail("--transport tls needs --cert FILE and --key FILE");
  tls = { cert: readFileSync(values.cert, "utf8"), key: readFileSync(values.key, "utf8") };
}
const log = values.verbose ? (line: string) => console.error(`[server] ${line}`) : () => {};

const server = new TcpServer<Uint8Array>({
  host: values.host,
  port: Number(values.port),
  tls,
  // --max-len limits the declared length (the 4-byte field, i.e. the body); maxMsgLen counts the whole frame.
  session: { maxMsgLen: Number(values["max-len"]) + 4 },
});
const codec = new LengthFieldCodec();

await server.runEventLoop((session) => {
  session.setPkgHandler(codec);
  session.setEventListener({
    onOpen: (s) => log(`open ${s.remoteAddr}`),
    onMessage: (s, pkg) => void s.writePkg(pkg).catch(() => {}),
    onError: (s, e) => log(`error ${s.remoteAddr}: ${e.code} ${e.message}`),
    onClose: (s, info) => log(`close ${s.remoteAddr} (${info.initiator}) ${s.stat()}`),
  });
});
console.log(`listening ${transport} ${values.host}:${server.port}`);

const stop = async () => {
  await server.close();
  process.exit(0);
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
