// TLS server and client on real loopback sockets: the same Session API as TCP, and verification on by default.
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { ConnectError, LengthFieldCodec, TcpClient, TcpServer } from "../mod.ts";
import { assertNoLeaks, bytes, text, waitFor } from "./helpers/util.ts";
import { tlsFixtures } from "./helpers/tls.ts";

const codec = new LengthFieldCodec();

async function tlsEchoServer() {
  const { cert, key } = tlsFixtures();
  const server = new TcpServer<Uint8Array>({ port: 0, tls: { cert, key } });
  await server.runEventLoop((s) => {
    s.setPkgHandler(codec);
    s.setEventListener({ onMessage: (s, pkg) => void s.writePkg(pkg).catch(() => {}) });
  });
  return server;
}

describe("tls", () => {
  after(assertNoLeaks);

  it("echoes over TLS with the same Session API, trusting a custom CA", async () => {
    const server = await tlsEchoServer();
    const got: string[] = [];
    const client = new TcpClient<Uint8Array>({
      host: "127.0.0.1",
      port: server.port,
      tls: { caCerts: [tlsFixtures().ca] },
      connectionNumber: 2,
    });
    await client.runEventLoop((s) => {
      s.setPkgHandler(codec);
      s.setEventListener({ onMessage: (_s, p) => void got.push(text(p)) });
    });
    assert.equal(client.sessions[0].name, "tls-session");
    const results = await Promise.all(client.sessions.map((s, i) => s.writePkg(bytes(`secret ${i}`))));
    assert.deepEqual(results, [{ total: 12, sent: 12 }, { total: 12, sent: 12 }]);
    await waitFor(() => got.length === 2);
    assert.deepEqual(got.sort(), ["secret 0", "secret 1"]);
    assert.equal(client.sessions[0].stat().readPkgs, 1);
    await client.close();
    await server.close();
  });

  it("verifies the server name: 'localhost' matches the certificate, 'example.com' does not", async () => {
    const server = await tlsEchoServer();
    const ok = new TcpClient<Uint8Array>({
      host: "127.0.0.1",
      port: server.port,
      tls: { caCerts: [tlsFixtures().ca], serverName: "localhost" },
    });
    await ok.runEventLoop(() => {});
    assert.equal(ok.sessions.length, 1);
    await ok.close();
    const bad = new TcpClient<Uint8Array>({
      host: "127.0.0.1",
      port: server.port,
      tls: { caCerts: [tlsFixtures().ca], serverName: "example.com" },
    });
    await assert.rejects(bad.runEventLoop(() => {}), ConnectError);
    await server.close();
  });

  it("refuses a server signed by an untrusted CA, and verifies by default (no caCerts)", async () => {
    const server = await tlsEchoServer();
    for (const tls of [{ caCerts: [tlsFixtures().otherCa] }, {}]) {
      const client = new TcpClient<Uint8Array>({ host: "127.0.0.1", port: server.port, tls });
      await assert.rejects(client.runEventLoop(() => {}), (e: unknown) => {
        assert.ok(e instanceof ConnectError, String(e));
        return true;
      });
      assert.ok(client.isClosed());
    }
    // The server is unharmed by the failed handshakes.
    const good = new TcpClient<Uint8Array>({
      host: "127.0.0.1",
      port: server.port,
      tls: { caCerts: [tlsFixtures().ca] },
    });
    const got: string[] = [];
    await good.runEventLoop((s) => {
      s.setPkgHandler(codec);
      s.setEventListener({ onMessage: (_s, p) => void got.push(text(p)) });
    });
    await good.sessions[0].writePkg(bytes("after"));
    await waitFor(() => got.length === 1);
    await good.close();
    await server.close();
  });

  it("a plain TCP client cannot talk to a TLS server by accident", async () => {
    const server = await tlsEchoServer();
    const got: string[] = [];
    const plain = new TcpClient<Uint8Array>({ host: "127.0.0.1", port: server.port, reconnectAttempts: 0 });
    await plain.runEventLoop((s) => {
      s.setPkgHandler(codec);
      s.setEventListener({ onMessage: (_s, p) => void got.push(text(p)), onError: () => {} });
    });
    const session = plain.sessions[0];
    await session.writePkg(bytes("plaintext")).catch(() => {});
    await session.closed;
    assert.deepEqual(got, []);
    await plain.close();
    await server.close();
  });
});
