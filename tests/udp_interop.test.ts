// Cross-runtime UDP: the echo example's UDP server on the other runtime with a UdpClient here, and the echo
// client on the other runtime against a UdpEndpoint here (default and per-peer mode). (A Deno child runs without
// --unstable-net, so it uses the node:dgram driver.)
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { LengthFieldCodec, type PeerAddress, UdpClient, UdpEndpoint } from "../mod.ts";
import { current, other, runScript, startEchoServer } from "./helpers/runtimes.ts";
import { udpDrivers } from "./helpers/udp.ts";
import { assertNoLeaks, pattern, sleep, waitFor } from "./helpers/util.ts";

const codec = new LengthFieldCodec();

describe(`udp interop: ${current} <-> ${other}`, { timeout: 120_000 }, () => {
  after(assertNoLeaks);

  it(`the UDP echo example on ${other} prints one 'listening' line and echoes to a ${current} client`, async () => {
    const server = await startEchoServer(other, ["--transport", "udp", "--host", "127.0.0.1", "--port", "0"]);
    try {
      assert.deepEqual(server.lines, [`listening udp 127.0.0.1:${server.port}`]);
      const echoed: Array<{ pkg: Uint8Array; from?: PeerAddress; session: number }> = [];
      const client = new UdpClient<Uint8Array>({ host: "127.0.0.1", port: server.port, connectionNumber: 2 });
      await client.runEventLoop((s) => {
        s.setPkgHandler(codec);
        s.setEventListener({ onMessage: (s, pkg, from) => void echoed.push({ pkg, from, session: s.id }) });
      });
      const sent = [pattern(1, 1), pattern(100, 2), pattern(60_000, 3), pattern(0, 4)];
      for (const [i, s] of client.sessions.entries()) {
        for (const p of sent) {
          await s.writePkg(p);
          await sleep(2);
        }
        await waitFor(() => echoed.length === sent.length * (i + 1), 10_000);
      }
      const [a, b] = client.sessions;
      assert.deepEqual(echoed.filter((e) => e.session === a.id).map((e) => e.pkg), sent);
      assert.deepEqual(echoed.filter((e) => e.session === b.id).map((e) => e.pkg), sent);
      assert.ok(echoed.every((e) => e.from?.hostname === "127.0.0.1" && e.from.port === server.port));
      await client.close();
    } finally {
      await server.stop();
    }
  });

  it(`--max-len on ${other} drops only the oversized datagram; the sender is still served`, async () => {
    const server = await startEchoServer(other, ["--transport", "udp", "--port", "0", "--max-len", "1000"]);
    try {
      const echoed: Uint8Array[] = [];
      const client = new UdpClient<Uint8Array>({ host: "127.0.0.1", port: server.port });
      await client.runEventLoop((s) => {
        s.setPkgHandler(codec);
        s.setEventListener({ onMessage: (_s, p) => void echoed.push(p) });
      });
      const s = client.sessions[0];
      await s.writePkg(new Uint8Array(1001)); // declared length 1001 > --max-len 1000: dropped by the server
      await s.writePkg(pattern(1000, 9)); // exactly --max-len is accepted
      await waitFor(() => echoed.length === 1, 10_000);
      await sleep(50);
      assert.deepEqual(echoed, [pattern(1000, 9)]);
      assert.equal(s.state, "open");
      await client.close();
    } finally {
      await server.stop();
    }
  });

  for (const driver of udpDrivers()) {
    for (const perPeer of [false, true]) {
      it(`the echo client on ${other} talks to a ${current} UdpEndpoint (driver ${driver}${perPeer ? ", per peer" : ""})`, async () => {
        const endpoint = new UdpEndpoint<Uint8Array>({ port: 0, driver, perPeer });
        await endpoint.runEventLoop((s) => {
          s.setPkgHandler(codec);
          s.setEventListener({
            onMessage: (s, p, from) => void (perPeer ? s.writePkg(p) : s.writePkg(p, { to: from! })).catch(() => {}),
          });
        });
        const args = ["--transport", "udp", "--port", String(endpoint.port), "--count", "30", "--connections", "2"];
        try {
          const r = await runScript(other, "examples/echo_client.ts", args);
          assert.equal(r.code, 0, r.stdout + r.stderr);
          assert.match(r.stdout, /^ok: 60\/60 packages echoed intact over 2 udp session/m);
          const st = endpoint.stats();
          assert.equal(st.readPkgs, 60);
          assert.equal(st.writePkgs, 60);
          assert.equal(st.opened, perPeer ? 2 : 1, perPeer ? "one session per client socket" : "one session");
        } finally {
          await endpoint.close();
        }
      });
    }
  }
});
