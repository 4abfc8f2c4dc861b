// Cross-runtime interop and the echo example's contract: a server on this runtime with a client on the other
// runtime, and the reverse, over TCP and TLS.
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { LengthFieldCodec, TcpClient, TcpServer } from "../mod.ts";
import { assertNoLeaks, pattern, waitFor } from "./helpers/util.ts";
import { current, other, runScript, startEchoServer } from "./helpers/runtimes.ts";
import { tlsFixtures } from "./helpers/tls.ts";

const codec = new LengthFieldCodec();
const TLS_ARGS = ["--cert", "tests/fixtures/tls/leaf.crt", "--key", "tests/fixtures/tls/leaf.key"];

describe(`interop: ${current} <-> ${other}`, { timeout: 120_000 }, () => {
  after(assertNoLeaks);

  it(`the echo example on ${other} prints one 'listening' line and echoes for a ${current} client`, async () => {
    const server = await startEchoServer(other, ["--transport", "tcp", "--host", "127.0.0.1", "--port", "0"]);
    try {
      assert.deepEqual(server.lines, [`listening tcp 127.0.0.1:${server.port}`]);
      const echoed: Uint8Array[] = [];
      const client = new TcpClient<Uint8Array>({ host: "127.0.0.1", port: server.port, connectionNumber: 2 });
      await client.runEventLoop((s) => {
        s.setPkgHandler(codec);
        s.setEventListener({ onMessage: (_s, p) => void echoed.push(p) });
      });
      const sent = [pattern(1, 1), pattern(100, 2), pattern(300_000, 3), pattern(0, 4)];
      for (const p of sent) void client.sessions[0].writePkg(p);
      await waitFor(() => echoed.length === sent.length, 10_000);
      assert.deepEqual(echoed, sent);
      await client.close();
    } finally {
      await server.stop();
    }
  });

  it(`--max-len on ${other} closes only the offending session`, async () => {
    const server = await startEchoServer(other, ["--transport", "tcp", "--port", "0", "--max-len", "1000"]);
    try {
      const echoed: Uint8Array[] = [];
      const good = new TcpClient<Uint8Array>({ host: "127.0.0.1", port: server.port });
      await good.runEventLoop((s) => {
        s.setPkgHandler(codec);
        s.setEventListener({ onMessage: (_s, p) => void echoed.push(p) });
      });
      const bad = new TcpClient<Uint8Array>({ host: "127.0.0.1", port: server.port, reconnectAttempts: 0 });
      await bad.runEventLoop((s) => s.setPkgHandler(codec));
      const badSession = bad.sessions[0];
      void badSession.writePkg(new Uint8Array(1001)).catch(() => {}); // declared length 1001 > 1000
      const info = await badSession.closed;
      assert.equal(info.initiator === "peer" || info.initiator === "error", true);
      await good.sessions[0].writePkg(pattern(1000, 9)); // exactly --max-len is accepted
      await waitFor(() => echoed.length === 1);
      assert.deepEqual(echoed[0], pattern(1000, 9));
      await good.close();
      await bad.close();
    } finally {
      await server.stop();
    }
  });

  it(`a TLS echo server on ${other} serves a ${current} TLS client`, async () => {
    const server = await startEchoServer(other, ["--transport", "tls", "--port", "0", ...TLS_ARGS]);
    try {
      assert.deepEqual(server.lines, [`listening tls 127.0.0.1:${server.port}`]);
      const echoed: Uint8Array[] = [];
      const client = new TcpClient<Uint8Array>({
        host: "127.0.0.1",
        port: server.port,
        tls: { caCerts: [tlsFixtures().ca] },
      });
      await client.runEventLoop((s) => {
        s.setPkgHandler(codec);
        s.setEventListener({ onMessage: (_s, p) => void echoed.push(p) });
      });
      await client.sessions[0].writePkg(pattern(70_000, 5));
      await waitFor(() => echoed.length === 1, 10_000);
      assert.deepEqual(echoed[0], pattern(70_000, 5));
      await client.close();
    } finally {
      await server.stop();
    }
  });

  for (const transport of ["tcp", "tls"] as const) {
    it(`the echo client on ${other} talks to a ${current} ${transport} server`, async () => {
      const { cert, key } = tlsFixtures();
      const server = new TcpServer<Uint8Array>({ port: 0, tls: transport === "tls" ? { cert, key } : undefined });
      await server.runEventLoop((s) => {
        s.setPkgHandler(codec);
        s.setEventListener({ onMessage: (s, p) => void s.writePkg(p) });
      });
      const args = ["--transport", transport, "--port", String(server.port), "--count", "200", "--connections", "3"];
      if (transport === "tls") args.push("--ca", "tests/fixtures/tls/ca.crt");
      try {
        const r = await runScript(other, "examples/echo_client.ts", args);
        assert.equal(r.code, 0, r.stdout + r.stderr);
        assert.match(r.stdout, new RegExp(`^ok: 600/600 packages echoed intact over 3 ${transport} session`, "m"));
        assert.equal(server.stats().opened, 3);
      } finally {
        await server.close();
      }
    });
  }
});
