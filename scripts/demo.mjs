// The demo: an echo server on Deno and an echo client on Bun exchanging length-prefixed packages over TCP,
// then the same over TLS (test certificate from tests/fixtures/tls), printing what happened.
import { spawn, spawnSync } from "node:child_process";
import { createInterface } from "node:readline";
import { bun, deno, root, setup } from "./setup.mjs";

setup();

function startServer(args) {
  return new Promise((resolve, reject) => {
    const child = spawn(deno, ["run", "-A", "examples/echo_server.ts", "--verbose", ...args], {
      cwd: root,
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stderr.on("data", (d) => process.stdout.write(String(d)));
    child.on("exit", (code) => reject(new Error(`echo server exited early (${code})`)));
    createInterface({ input: child.stdout }).on("line", (line) => {
      console.log(`[server] stdout: ${line}`);
      const m = line.match(/^listening (\w+) (\S+):(\d+)$/);
      if (m) resolve({ child, port: m[3] });
    });
  });
}

function runClient(args) {
  const r = spawnSync(bun, ["examples/echo_client.ts", "--verbose", ...args], { cwd: root, encoding: "utf8" });
  process.stdout.write(r.stdout + r.stderr);
  return r.status === 0;
}

let ok = true;
for (
  const [title, serverArgs, clientArgs] of [
    ["TCP", ["--transport", "tcp"], ["--transport", "tcp"]],
    [
      "TLS",
      ["--transport", "tls", "--cert", "tests/fixtures/tls/leaf.crt", "--key", "tests/fixtures/tls/leaf.key"],
      ["--transport", "tls", "--ca", "tests/fixtures/tls/ca.crt"],
    ],
  ]
) {
  console.log(`\n--- ${title}: echo server on Deno, echo client on Bun ---`);
  const { child, port } = await startServer(["--host", "127.0.0.1", "--port", "0", ...serverArgs]);
  ok = runClient(["--host", "127.0.0.1", "--port", port, "--count", "5", "--connections", "2", ...clientArgs]) && ok;
  child.removeAllListeners("exit");
  await new Promise((r) => {
    child.on("exit", r);
    child.kill("SIGTERM");
  });
}
console.log(ok ? "\ndemo ok" : "\ndemo FAILED");
process.exit(ok ? 0 : 1);
