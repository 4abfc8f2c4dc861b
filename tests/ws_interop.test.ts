// WebSocket across runtimes and the WebSocket examples: the echo example (ws, wss), the hono chat and the
// TCP gateway run on the other runtime in a child process, with getty clients (or the echo client) here.
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { type CloseInfo, WsClient, WsServer } from "../mod.ts";
import { assertNoLeaks, bytes, pattern, waitFor } from "./helpers/util.ts";
import { current, other, runScript, startEchoServer } from "./helpers/runtimes.ts";
import { tlsFixtures } from "./helpers/tls.ts";
import { startExample } from "./helpers/ws.ts";

type Msg = string | Uint8Array;
const TLS_ARGS = ["--cert", "tests/fixtures/tls/leaf.crt", "--key", "tests/fixtures/tls/leaf.key"];

async function collect(url: string, extra: Partial<ConstructorParameters<typeof WsClient<Msg>>[0]> = {}) {
  const got: Msg[] = [];
  const closes: CloseInfo[] = [];
  const client = new WsClient<Msg>({ url, reconnectAttempts: 0, ...extra });
  await client.runEventLoop((s) => {
    s.setEventListener({ onMessage: (_s, m) => void got.push(m), onClose: (_s, i) => void closes.push(i) });
  });
  return { client, got, closes };
}

describe(`ws interop: ${current} <-> ${other}`, { timeout: 120_000 }, () => {
  after(assertNoLeaks);

  it(`the echo example on ${other} (--transport ws) echoes text as text and binary as binary`, async () => {
    const server = await startEchoServer(other, ["--transport", "ws", "--port", "0", "--max-len", "2000000"]);
    try {
      assert.deepEqual(server.lines, [`listening ws 127.0.0.1:${server.port}`]);
      const { client, got } = await collect(`ws://127.0.0.1:${server.port}/ws`, { session: { maxMsgLen: 2 << 20 } });
      const sent: Msg[] = ["text", pattern(1, 1), "", pattern(1 << 20, 2), "x".repeat(1 << 20), new Uint8Array(0)];
      for (const m of sent) void client.sessions[0].writePkg(m);
      await waitFor(() => got.length === sent.length, 10_000);
      assert.deepEqual(got, sent);
      await client.close();
    } finally {
      await server.stop();
    }
  });

  it(`--max-len on ${other} closes an oversized message's session with 1009`, async () => {
    const server = await startEchoServer(other, ["--transport", "ws", "--port", "0", "--max-len", "1000"]);
    try {
      const { client, got, closes } = await collect(`ws://127.0.0.1:${server.port}/ws`);
      await client.sessions[0].writePkg(pattern(1000, 3)); // exactly the limit
      await waitFor(() => got.length === 1);
      void client.sessions[0].writePkg(pattern(1001, 3)).catch(() => {});
      await waitFor(() => closes.length === 1);
      assert.deepEqual({ ...closes[0] }, { initiator: "peer", code: 1009, reason: "message too big" });
      await client.close();
    } finally {
      await server.stop();
    }
  });

  it(`a wss echo server on ${other} serves a ${current} client that trusts the test CA`, async () => {
    const server = await startEchoServer(other, ["--transport", "wss", "--port", "0", ...TLS_ARGS]);
    try {
      assert.deepEqual(server.lines, [`listening wss 127.0.0.1:${server.port}`]);
      const { client, got } = await collect(`wss://localhost:${server.port}/ws`, {
        tls: { caCerts: [tlsFixtures().ca] },
      });
      await client.sessions[0].writePkg(pattern(300_000, 4));
      await client.sessions[0].writePkg("secure text");
      await waitFor(() => got.length === 2, 10_000);
      assert.deepEqual(got, [pattern(300_000, 4), "secure text"]);
      await client.close();
    } finally {
      await server.stop();
    }
  });

  for (const transport of ["ws", "wss"]) {
    it(`a ${current} ${transport} server serves the echo client on ${other}`, async () => {
      const { cert, key } = tlsFixtures();
      const server = new WsServer<Msg>({ port: 0, tls: transport === "wss" ? { cert, key } : undefined });
      await server.runEventLoop((s) => s.setEventListener({ onMessage: (s, m) => void s.writePkg(m) }));
      try {
        const r = await runScript(other, "examples/echo_client.ts", [
          ...["--transport", transport, "--port", String(server.port), "--ca", "tests/fixtures/tls/ca.crt"],
          ...["--count", "300", "--size", "5000", "--connections", "3"],
        ]);
        assert.equal(r.code, 0, r.stderr + r.stdout);
        assert.match(r.stdout, new RegExp(`^ok: 900/900 packages echoed intact over 3 ${transport} session`, "m"));
      } finally {
        await server.close();
      }
    });
  }

  it(`examples/hono_chat.ts on ${other}: page, broadcast, stats`, async () => {
    const chat = await startExample(other, "examples/hono_chat.ts", ["--port", "0"], /^chat (http:\/\/\S+\/)$/);
    try {
      const base = chat.match[1];
      const page = await fetch(base);
      assert.equal(page.status, 200);
      assert.match(await page.text(), /new WebSocket/);
      const wsBase = base.replace(/^http/, "ws");
      const ann = await collect(`${wsBase}ws?name=ann`);
      await waitFor(() => ann.got.length === 1);
      const bob = await collect(`${wsBase}ws?name=bob`);
      await waitFor(() => ann.got.length === 2 && bob.got.length === 1);
      await bob.client.sessions[0].writePkg("hello ann");
      await waitFor(() => ann.got.length === 3 && bob.got.length === 2);
      assert.deepEqual(JSON.parse(ann.got[2] as string), { from: "bob", text: "hello ann" });
      assert.deepEqual(JSON.parse(bob.got[1] as string), { from: "bob", text: "hello ann" });
      assert.equal(typeof ann.got[0], "string", "JSON arrives as text messages");
      const stats = await (await fetch(`${base}stats`)).json();
      assert.equal(stats.open, 2);
      assert.deepEqual(stats.names.sort(), ["ann", "bob"]);
      await bob.client.close();
      await waitFor(() => ann.got.length === 4);
      assert.deepEqual(JSON.parse(ann.got[3] as string), { notice: "bob left" });
      const closing = waitFor(() => ann.closes.length === 1, 5_000);
      // (no exit-code check: a Deno parent reports a child that handled SIGTERM and exited 0 as killed by it)
      await chat.stop();
      await closing;
      assert.equal(ann.closes[0].code, 1000, "SIGTERM closes sessions gracefully");
      await ann.client.close();
    } finally {
      await chat.stop();
    }
  });

  it(`examples/ws_gateway.ts on ${other}: WebSocket messages reach a length-field TCP backend and back`, async () => {
    const gw = await startExample(other, "examples/ws_gateway.ts", ["--port", "0"], /^gateway (ws:\/\/\S+) -> tcp /);
    try {
      const { client, got, closes } = await collect(gw.match[1]);
      await client.sessions[0].writePkg(new Uint8Array([1, 2, 3]));
      await client.sessions[0].writePkg("abc");
      await client.sessions[0].writePkg(pattern(200_000, 6));
      await waitFor(() => got.length === 3, 10_000);
      assert.deepEqual(got[0], new Uint8Array([3, 2, 1]));
      assert.deepEqual(got[1], bytes("cba"));
      assert.deepEqual(got[2], pattern(200_000, 6).reverse());
      await client.close();
      assert.equal(closes.length, 1);
    } finally {
      await gw.stop();
    }
  });
});
