// Deno-only: a full TCP and TLS server/client cycle under Deno's op and resource sanitizers, which fail the
// test on any leaked socket, listener, timer or pending op. (node:test tests are never sanitized on Deno, so
// this file uses Deno.test; it is run by scripts/test.mjs, not discovered by `bun test`.)
import assert from "node:assert/strict";
import { LengthFieldCodec, TcpClient, TcpServer } from "../mod.ts";
import { tlsFixtures } from "./helpers/tls.ts";

const codec = new LengthFieldCodec();

for (const secure of [false, true]) {
  Deno.test({
    name: `${secure ? "tls" : "tcp"} server and client leave no ops, resources or timers behind`,
    sanitizeOps: true,
    sanitizeResources: true,
    async fn() {
      const { cert, key, ca } = tlsFixtures();
      const server = new TcpServer<Uint8Array>({ port: 0, tls: secure ? { cert, key } : undefined });
      await server.runEventLoop((s) => {
        s.setPkgHandler(codec);
        s.setCronPeriod(10);
        s.setEventListener({ onMessage: (s, p) => void s.writePkg(p), onCron: () => {} });
      });
      const got: Uint8Array[] = [];
      const client = new TcpClient<Uint8Array>({
        host: "127.0.0.1",
        port: server.port,
        connectionNumber: 2,
        tls: secure ? { caCerts: [ca] } : undefined,
      });
      await client.runEventLoop((s) => {
        s.setPkgHandler(codec);
        s.setReadTimeout(5_000);
        s.setEventListener({ onMessage: (_s, p) => void got.push(p) });
      });
      for (const s of client.sessions) await s.writePkg(new Uint8Array([1, 2, 3]));
      while (got.length < 2) await new Promise((r) => setTimeout(r, 5));
      assert.equal(got.length, 2);
      await client.close();
      await server.close();
    },
  });
}
