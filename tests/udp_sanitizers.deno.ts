// Deno only: UDP endpoints (default and per-peer) and a client under Deno's op and resource sanitizers, which
// fail on any leaked socket, pending receive, timer or op once close() resolved. (node:test tests are never
// sanitized on Deno, hence Deno.test; scripts/test.mjs runs this file with deno only.)
import assert from "node:assert/strict";
import { LengthFieldCodec, UdpClient, UdpEndpoint } from "../mod.ts";
import { udpDrivers } from "./helpers/udp.ts";

const codec = new LengthFieldCodec();
{
  for (const driver of udpDrivers()) {
    for (const perPeer of [false, true]) {
      Deno.test({
        name: `udp (${driver}${perPeer ? ", per peer" : ""}) endpoint and client leave no ops, resources or timers`,
        sanitizeOps: true,
        sanitizeResources: true,
        async fn() {
          const endpoint = new UdpEndpoint<Uint8Array>({
            port: 0,
            driver,
            perPeer: perPeer ? { idleTimeout: 5_000 } : false,
            session: { cronPeriod: 10 },
          });
          await endpoint.runEventLoop((s) => {
            s.setPkgHandler(codec);
            s.setEventListener({
              onMessage: (s, p, from) => void (perPeer ? s.writePkg(p) : s.writePkg(p, { to: from! })),
              onCron: () => {},
            });
          });
          const got: Uint8Array[] = [];
          const client = new UdpClient<Uint8Array>({
            host: "127.0.0.1",
            port: endpoint.port,
            driver,
            connectionNumber: 2,
            session: { readTimeout: 5_000 },
          });
          await client.runEventLoop((s) => {
            s.setPkgHandler(codec);
            s.setEventListener({ onMessage: (_s, p) => void got.push(p) });
          });
          for (const s of client.sessions) await s.writePkg(new Uint8Array([1, 2, 3]));
          while (got.length < 2) await new Promise((r) => setTimeout(r, 5));
          assert.equal(got.length, 2);
          await client.close();
          await endpoint.close();
        },
      });
    }
  }
}
