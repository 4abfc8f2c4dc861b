// UDP endpoint and client on real loopback sockets, once per driver available on the runtime running the suite
// (Deno: Deno.listenDatagram only with --unstable-net, node:dgram always; Bun: Bun.udpSocket and node:dgram).
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import {
  type CloseInfo,
  CodecError,
  ConnectError,
  ConnectionError,
  EndpointClosedError,
  type GettyError,
  InvalidOptionError,
  LengthFieldCodec,
  MessageTooLongError,
  type PeerAddress,
  ReadTimeoutError,
  SessionClosedError,
  UdpClient,
  UdpEndpoint,
  type UdpEndpointOptions,
} from "../mod.ts";
import { current } from "./helpers/runtimes.ts";
import { deadPort, frame, rawPeer, udpDrivers } from "./helpers/udp.ts";
import { assertNoLeaks, bytes, collectUnhandled, pattern, sleep, text, waitFor, within } from "./helpers/util.ts";

/** Byte equality without assert.deepEqual (whose diff of large unequal arrays takes minutes). */
function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

const codec = new LengthFieldCodec();
const T = { timeout: 30_000 };

/** An echo endpoint: every package goes back to its sender. */
async function echoEndpoint(driver: "native" | "node", options: UdpEndpointOptions = {}, errors: GettyError[] = []) {
  const endpoint = new UdpEndpoint<Uint8Array>({ port: 0, driver, ...options });
  await endpoint.runEventLoop((s) => {
    s.setPkgHandler(codec);
    s.setEventListener({
      onMessage: (s, pkg, from) => void s.writePkg(pkg, { to: from! }).catch(() => {}),
      onError: (_s, e) => void errors.push(e),
    });
  });
  return endpoint;
}

for (const driver of udpDrivers()) {
  const expectedDriver = driver === "node" ? "node" : current;

  describe(`udp endpoint and client (${current}, driver ${driver})`, T, () => {
    after(assertNoLeaks);

    it("echoes datagrams; from addresses, names and addresses are right", T, async () => {
      const endpoint = await echoEndpoint(driver);
      assert.equal(endpoint.endPointType, "UDP_ENDPOINT");
      assert.equal(endpoint.driver, expectedDriver);
      assert.equal(endpoint.perPeer, false);
      assert.ok(endpoint.port > 0);
      assert.deepEqual(endpoint.addr, { hostname: "127.0.0.1", port: endpoint.port });
      const es = endpoint.session!;
      assert.equal(es.name, "udp-session");
      assert.equal(es.localAddr, `127.0.0.1:${endpoint.port}`);
      assert.equal(es.remoteAddr, "");
      assert.equal(es.endPoint(), endpoint);
      assert.equal(endpoint.sessionCount, 1);

      const got: Array<{ session: number; text: string; from?: PeerAddress }> = [];
      const client = new UdpClient<Uint8Array>({ host: "127.0.0.1", port: endpoint.port, driver, connectionNumber: 2 });
      await client.runEventLoop((s) => {
        s.setPkgHandler(codec);
        s.setEventListener({ onMessage: (s, p, from) => void got.push({ session: s.id, text: text(p), from }) });
      });
      assert.equal(client.endPointType, "UDP_CLIENT");
      assert.equal(client.driver, expectedDriver);
      assert.notEqual(client.id, endpoint.id);
      assert.equal(client.sessions.length, 2);
      for (const s of client.sessions) {
        assert.equal(s.name, "udp-session");
        assert.match(s.localAddr, /^127\.0\.0\.1:\d+$/);
        assert.equal(s.remoteAddr, `127.0.0.1:${endpoint.port}`);
        assert.equal(s.endPoint(), client);
      }
      const [a, b] = client.sessions;
      assert.notEqual(a.localAddr, b.localAddr, "one socket per session");
      assert.deepEqual(await a.writePkg(bytes("from a")), { total: 10, sent: 10 });
      await b.writePkg(bytes("from b"));
      await waitFor(() => got.length === 2);
      const byText = Object.fromEntries(got.map((g) => [g.text, g]));
      assert.equal(byText["from a"].session, a.id);
      assert.equal(byText["from b"].session, b.id);
      assert.deepEqual(byText["from a"].from, { hostname: "127.0.0.1", port: endpoint.port });

      // The endpoint saw each client socket as the sender.
      const seen: PeerAddress[] = [];
      const probe = await echoEndpoint(driver);
      const probeClient = new UdpClient<Uint8Array>({ host: "127.0.0.1", port: probe.port, driver });
      await probeClient.runEventLoop((s) => s.setPkgHandler(codec));
      probe.session!.setEventListener({
        onMessage: (_s, _p, from) => void seen.push(from!),
      });
      await probeClient.sessions[0].writePkg(bytes("who am I"));
      await waitFor(() => seen.length === 1);
      const [, port] = probeClient.sessions[0].localAddr.split(":");
      assert.deepEqual(seen[0], { hostname: "127.0.0.1", port: Number(port) });

      assert.equal(a.stat().writePkgs, 1);
      assert.equal(a.stat().readPkgs, 1);
      assert.equal(es.stat().readPkgs, 2);
      assert.equal(es.stat().writePkgs, 2);
      const st = endpoint.stats();
      assert.equal(st.open, 1);
      assert.equal(st.readPkgs, 2);
      assert.equal(st.dropped, 0);
      assert.equal(st.sendErrors, 0);
      await Promise.all([client.close(), probeClient.close()]);
      await Promise.all([endpoint.close(), probe.close()]);
      assert.ok(endpoint.isClosed());
      assert.equal(es.state, "closed");
    });

    it("writes to a given peer with { to }; a write without `to` rejects and the session lives on", T, async () => {
      const endpoint = new UdpEndpoint<Uint8Array>({ port: 0, driver });
      const errors: GettyError[] = [];
      await endpoint.runEventLoop((s) => {
        s.setPkgHandler(codec);
        s.setEventListener({ onError: (_s, e) => void errors.push(e) });
      });
      const s = endpoint.session!;
      const p1 = await rawPeer();
      const p2 = await rawPeer();
      await s.writePkg(bytes("to p2"), { to: p2.address });
      await s.writePkg(bytes("to p1"), { to: { hostname: "localhost", port: p1.port } }); // host names are resolved
      await s.writePkg(bytes("mapped"), { to: { hostname: "::ffff:127.0.0.1", port: p1.port } });
      await p2.waitFor(1);
      await p1.waitFor(2);
      assert.deepEqual(p2.received.map((d) => d.data), [frame(bytes("to p2"))]);
      assert.deepEqual(p1.received.map((d) => d.data), [frame(bytes("to p1")), frame(bytes("mapped"))]);
      assert.deepEqual(p1.received[0].from, { hostname: "127.0.0.1", port: endpoint.port });

      const option = async (p: Promise<unknown>, name: string) => {
        await assert.rejects(p, (e: unknown) => e instanceof InvalidOptionError && e.option === name);
      };
      await option(s.writePkg(bytes("nowhere")), "to");
      await option(s.writePkg(bytes("nowhere"), 1_000), "to");
      await option(s.writeBytes(bytes("nowhere")), "to");
      await option(s.writeBytesArray(bytes("a"), bytes("b")), "to");
      await option(s.writePkg(bytes("x"), { to: { hostname: "127.0.0.1", port: 0 } }), "to.port");
      await option(s.writePkg(bytes("x"), { to: { hostname: "", port: 9 } }), "to.hostname");
      await option(s.writePkg(bytes("x"), { to: { hostname: "::1", port: 9 } }), "to.hostname"); // IPv4 socket
      await assert.rejects(
        s.writePkg(bytes("x"), { to: { hostname: "no-such-host.invalid", port: 9 } }),
        ConnectionError,
      );
      assert.equal(s.state, "open");
      await s.writeBytes(frame(bytes("raw")), { to: p2.address });
      await p2.waitFor(2);
      assert.deepEqual(p2.received[1].data, frame(bytes("raw")));
      // A write nobody awaits never becomes an unhandled rejection.
      const unhandled = await collectUnhandled(async () => {
        void s.writePkg(bytes("nowhere"));
        await sleep(10);
      });
      assert.deepEqual(unhandled, []);
      assert.equal(errors.length, 0, "destination errors are the caller's, not onError's");
      await Promise.all([p1.close(), p2.close()]);
      await endpoint.close();
      await assert.rejects(s.writePkg(bytes("late"), { to: p1.address }), SessionClosedError);
    });

    it("send() (no promise) needs `to` on the endpoint too; host names are resolved, failures counted", T, async () => {
      const failures: PeerAddress[] = [];
      const endpoint = new UdpEndpoint<Uint8Array>({
        port: 0,
        driver,
        onSendError: (_e, to) => void failures.push(to!),
      });
      await endpoint.runEventLoop((s) => s.setPkgHandler(codec));
      const s = endpoint.session!;
      const peer = await rawPeer();
      assert.equal(s.send(bytes("nowhere")), false);
      assert.equal(s.send(bytes("bad port"), { to: { hostname: "127.0.0.1", port: 0 } }), false);
      assert.equal(s.send(bytes("direct"), { to: peer.address }), true);
      assert.equal(s.send(bytes("by name"), { to: { hostname: "localhost", port: peer.port } }), true);
      assert.equal(s.send(bytes("lost"), { to: { hostname: "no-such-host.invalid", port: peer.port } }), true);
      await peer.waitFor(2);
      assert.deepEqual(peer.received.map((d) => text(d.data.subarray(4))).sort(), ["by name", "direct"]);
      await waitFor(() => failures.length === 1);
      assert.deepEqual(failures, [{ hostname: "no-such-host.invalid", port: peer.port }]);
      assert.equal(endpoint.stats().sendErrors, 1);
      assert.equal(s.state, "open");
      await peer.close();
      await endpoint.close();
      assert.equal(s.send(bytes("closed"), { to: peer.address }), false);
    });

    it("delivers each package in its own buffer: packages kept from earlier datagrams stay intact", T, async () => {
      const kept: Uint8Array[] = [];
      const endpoint = new UdpEndpoint<Uint8Array>({ port: 0, driver });
      await endpoint.runEventLoop((s) => {
        s.setPkgHandler(codec);
        s.setEventListener({ onMessage: (_s, p) => void kept.push(p) });
      });
      const peer = await rawPeer();
      // Small and 9 KB datagrams: the Deno driver packs its copies into 64 KiB slabs, so this crosses several.
      const size = (i: number) => (i % 3 === 2 ? 9000 : 200) + i;
      for (let i = 0; i < 30; i++) {
        await peer.send(frame(pattern(size(i), i)), endpoint.port);
        await sleep(1);
      }
      await waitFor(() => kept.length === 30);
      kept.forEach((p, i) => assert.ok(equalBytes(p, pattern(size(i), i)), `package ${i} intact`));
      await peer.close();
      await endpoint.close();
    });

    it(
      "sends a burst of datagrams written in one go, each whole and in order (encoded into pooled slabs)",
      T,
      async () => {
        const endpoint = await echoEndpoint(driver);
        const peer = await rawPeer();
        // 24 datagrams of ~3 KB queued at once: on Deno they wait behind the one in flight, in slabs that grow
        // (8, 16, 32 KiB…), so later ones are encoded while earlier slabs are still being sent.
        const body = (i: number) => pattern(3000 + i * 7, i);
        const s = endpoint.session!;
        for (let i = 0; i < 24; i++) assert.equal(s.send(body(i), { to: peer.address }), true);
        await peer.waitFor(24);
        peer.received.forEach((d, i) => assert.ok(equalBytes(d.data, frame(body(i))), `datagram ${i} whole, in order`));
        await peer.close();
        await endpoint.close();
      },
    );

    it("drops bad datagrams with onError and keeps serving the others", T, async () => {
      const errors: GettyError[] = [];
      const endpoint = await echoEndpoint(driver, { session: { maxMsgLen: 100 } }, errors);
      const peer = await rawPeer();
      const good = await rawPeer();
      const bad: Uint8Array[] = [
        new Uint8Array(0), // empty
        new Uint8Array([0, 0, 0, 9, 1]), // declares 9 bytes, carries 1
        new Uint8Array([...frame(bytes("ok")), 1, 2]), // trailing bytes after the package
        frame(new Uint8Array(200)), // 204 bytes > maxMsgLen 100
        new Uint8Array([0xff, 0xff, 0xff, 0xff, 1, 2, 3]), // garbage: declares 4 GiB
        new Uint8Array([1, 2]), // garbage: not even a header
      ];
      for (const d of bad) {
        await peer.send(d, endpoint.port);
        await good.send(frame(bytes(`good ${d.length}`)), endpoint.port);
      }
      await good.waitFor(bad.length);
      await waitFor(() => errors.length === bad.length);
      assert.deepEqual(good.received.map((d) => text(d.data.subarray(4))), bad.map((d) => `good ${d.length}`));
      assert.equal(peer.received.length, 0, "nothing echoed for bad datagrams");
      assert.deepEqual(errors.map((e) => e.code), [
        "ERR_CODEC",
        "ERR_CODEC",
        "ERR_CODEC",
        "ERR_MESSAGE_TOO_LONG",
        "ERR_CODEC",
        "ERR_CODEC",
      ]);
      assert.ok(errors[0] instanceof CodecError);
      assert.match(errors[0].message, /empty datagram from 127\.0\.0\.1:\d+ dropped/);
      assert.ok(errors[3] instanceof MessageTooLongError);
      assert.equal(endpoint.session!.state, "open");
      assert.equal(endpoint.stats().errors, bad.length);
      // A datagram of exactly maxMsgLen is accepted.
      await peer.send(frame(new Uint8Array(96)), endpoint.port);
      await peer.waitFor(1);
      assert.equal(peer.received[0].data.length, 100);
      await Promise.all([peer.close(), good.close()]);
      await endpoint.close();
    });

    it("fails a write over 65,507 bytes with MessageTooLongError before it reaches the socket", T, async () => {
      const endpoint = await echoEndpoint(driver, { session: { maxMsgLen: 70_000 } });
      const errors: GettyError[] = [];
      const got: Uint8Array[] = [];
      const client = new UdpClient<Uint8Array>({
        host: "127.0.0.1",
        port: endpoint.port,
        driver,
        session: { maxMsgLen: 70_000 },
      });
      await client.runEventLoop((s) => {
        s.setPkgHandler(codec);
        s.setEventListener({ onMessage: (_s, p) => void got.push(p), onError: (_s, e) => void errors.push(e) });
      });
      const s = client.sessions[0];
      await assert.rejects(s.writePkg(new Uint8Array(65_504)), (e: unknown) => {
        assert.ok(e instanceof MessageTooLongError);
        assert.equal(e.length, 65_508);
        assert.equal(e.max, 65_507);
        return true;
      });
      await assert.rejects(
        endpoint.session!.writeBytes(new Uint8Array(65_508), { to: { hostname: "127.0.0.1", port: 9 } }),
        MessageTooLongError,
      );
      assert.equal(errors.length, 1, "reported to onError too");
      assert.equal(s.state, "open");
      const largest = pattern(65_503, 5);
      assert.deepEqual(await s.writePkg(largest), { total: 65_507, sent: 65_507 });
      await waitFor(() => got.length === 1);
      assert.deepEqual(got[0], largest);
      await client.close();
      await endpoint.close();
    });

    it("survives peers that vanished (ICMP port unreachable) and keeps serving", T, async () => {
      const unhandled = await collectUnhandled(async () => {
        const endpoint = await echoEndpoint(driver);
        const dead = await deadPort();
        const live = await rawPeer();
        for (let i = 0; i < 20; i++) {
          await endpoint.session!.writePkg(bytes(`lost ${i}`), { to: { hostname: "127.0.0.1", port: dead } });
          await live.send(frame(bytes(`live ${i}`)), endpoint.port);
          await sleep(2);
        }
        await live.waitFor(20);
        assert.equal(endpoint.session!.state, "open");
        // A connected client whose server vanished: writes still resolve, the session stays open.
        const client = new UdpClient<Uint8Array>({ host: "127.0.0.1", port: dead, driver });
        await client.runEventLoop((s) => s.setPkgHandler(codec));
        for (let i = 0; i < 5; i++) {
          await client.sessions[0].writePkg(bytes(`x${i}`));
          await sleep(5);
        }
        assert.equal(client.sessions.length, 1);
        if (current === "bun" && driver === "native") {
          // Only Bun reports ICMP errors; they are counted and ignored.
          await waitFor(() => endpoint.stats().socketErrors > 0 && client.stats().socketErrors > 0);
        }
        await live.send(frame(bytes("still here")), endpoint.port);
        await live.waitFor(21);
        assert.equal(text(live.received[20].data.subarray(4)), "still here");
        await client.close();
        await live.close();
        await endpoint.close();
      });
      assert.deepEqual(unhandled, []);
    });

    it(
      "reports datagrams that cannot be sent through onSendError; the write resolves, the session lives",
      T,
      async () => {
        const failures: Array<{ error: ConnectionError; to?: PeerAddress }> = [];
        const endpoint = new UdpEndpoint<Uint8Array>({
          port: 0,
          driver,
          onSendError: (error, to) => void failures.push({ error, to }),
        });
        await endpoint.runEventLoop(() => {});
        // A socket bound to 127.0.0.1 cannot reach a documentation (TEST-NET-1) address: EINVAL on every driver.
        const to = { hostname: "192.0.2.1", port: 9 };
        assert.deepEqual(await endpoint.session!.writeBytes(bytes("x"), { to }), { total: 1, sent: 1 });
        await waitFor(() => failures.length === 1);
        assert.ok(failures[0].error instanceof ConnectionError);
        assert.match(failures[0].error.message, /udp send to 192\.0\.2\.1:9 failed/);
        assert.deepEqual(failures[0].to, to);
        assert.equal(endpoint.stats().sendErrors, 1);
        assert.equal(endpoint.session!.state, "open");
        await endpoint.close();
      },
    );

    it(
      "stat, attributes, cron and close callbacks behave as for TCP; close() closes session and socket",
      T,
      async () => {
        const order: string[] = [];
        let crons = 0;
        let info: CloseInfo | undefined;
        const endpoint = new UdpEndpoint<Uint8Array>({ port: 0, driver, session: { cronPeriod: 20 } });
        await endpoint.runEventLoop((s) => {
          s.setPkgHandler(codec);
          s.setAttribute("greeting", "hi");
          s.addCloseCallback("test", "a", () => order.push("callback a"));
          s.addCloseCallback("test", "b", () => order.push("callback b"));
          s.setEventListener({
            onOpen: () => void order.push("open"),
            onCron: () => void crons++,
            onMessage: (s, p, from) => {
              s.setAttribute("count", ((s.getAttribute("count") as number) ?? 0) + 1);
              void s.writePkg(p, { to: from! });
            },
            onClose: (_s, i) => {
              info = i;
              order.push("close");
            },
          });
        });
        const s = endpoint.session!;
        assert.equal(s.getAttribute("greeting"), "hi");
        const peer = await rawPeer();
        for (let i = 0; i < 3; i++) await peer.send(frame(bytes(`n${i}`)), endpoint.port);
        await peer.waitFor(3);
        assert.equal(s.getAttribute("count"), 3);
        s.removeAttribute("greeting");
        assert.equal(s.getAttribute("greeting"), undefined);
        const st = s.stat();
        assert.equal(st.readPkgs, 3);
        assert.equal(st.writePkgs, 3);
        assert.equal(st.readBytes, 18);
        assert.equal(st.writeBytes, 18);
        assert.match(String(st), /udp-session:UDP_ENDPOINT/);
        assert.ok(s.getActive() > 0);
        await waitFor(() => crons >= 2, 2_000, "cron");
        const port = endpoint.port;
        await endpoint.close();
        assert.equal(s.state, "closed");
        assert.deepEqual(info, { initiator: "local" });
        assert.deepEqual(order, ["open", "close", "callback a", "callback b"]);
        assert.ok(endpoint.isClosed());
        await assert.rejects(endpoint.runEventLoop(() => {}), EndpointClosedError);
        // The port was released: a new endpoint can bind it.
        const again = new UdpEndpoint<Uint8Array>({ port, driver });
        await again.runEventLoop(() => {});
        assert.equal(again.port, port);
        await again.close();
        await peer.close();
      },
    );

    it("read timeout closes a silent client session; an endpoint whose session ends closes too", T, async () => {
      const endpoint = new UdpEndpoint<Uint8Array>({ port: 0, driver }); // never answers
      await endpoint.runEventLoop((s) => s.setPkgHandler(codec));
      const errors: GettyError[] = [];
      const client = new UdpClient<Uint8Array>({
        host: "127.0.0.1",
        port: endpoint.port,
        driver,
        session: { readTimeout: 150 },
      });
      await client.runEventLoop((s) => {
        s.setPkgHandler(codec);
        s.setEventListener({ onError: (_s, e) => void errors.push(e) });
      });
      const s = client.sessions[0];
      await s.writePkg(bytes("anyone?"));
      const started = Date.now();
      const info = await within(s.closed, 2_000, "read timeout");
      assert.ok(Date.now() - started >= 100);
      assert.equal(info.initiator, "error");
      assert.ok(info.error instanceof ReadTimeoutError);
      assert.ok(errors[0] instanceof ReadTimeoutError);
      assert.equal(client.sessions.length, 0, "UDP clients do not reconnect");
      assert.equal(client.isClosed(), false);
      await client.close();

      // The endpoint's own session with a read timeout: the endpoint goes with it.
      const quiet = new UdpEndpoint<Uint8Array>({ port: 0, driver, session: { readTimeout: 100 } });
      await quiet.runEventLoop(() => {});
      const closed = await within(quiet.session!.closed, 2_000, "endpoint read timeout");
      assert.ok(closed.error instanceof ReadTimeoutError);
      await waitFor(() => quiet.isClosed());
      await quiet.close();
      await endpoint.close();
    });

    it("awaited writes under load all resolve (backpressure path), and nothing is thrown", T, async () => {
      const endpoint = new UdpEndpoint<Uint8Array>({ port: 0, driver });
      let received = 0;
      await endpoint.runEventLoop((s) => {
        s.setPkgHandler(codec);
        s.setEventListener({ onMessage: () => void received++ });
      });
      const client = new UdpClient<Uint8Array>({
        host: "127.0.0.1",
        port: endpoint.port,
        driver,
        session: { highWaterMark: 64 * 1024, outboundCap: 64 << 20 },
      });
      const changes: boolean[] = [];
      await client.runEventLoop((s) => {
        s.setPkgHandler(codec);
        s.setEventListener({ onWritabilityChange: (_s, w) => void changes.push(w) });
      });
      const s = client.sessions[0];
      const unhandled = await collectUnhandled(async () => {
        const writes = Array.from({ length: 2_000 }, (_, i) => s.writePkg(pattern(1_000, i)));
        const results = await within(Promise.all(writes), 20_000, "2,000 writes");
        assert.ok(results.every((r) => r.sent === 1_004));
      });
      assert.deepEqual(unhandled, []);
      assert.equal(s.stat().writePkgs, 2_000);
      assert.equal(s.pendingBytes, 0);
      if (driver === "native" && current === "bun") {
        // Bun's send() is synchronous and a datagram goes straight to it when nothing is queued: on loopback the
        // kernel may take all 2,000 at once, and then nothing ever waited.
        assert.ok(changes.length === 0 || changes.join() === "false,true", `water marks: ${changes.join()}`);
      } else {
        assert.deepEqual(changes, [false, true], "crossed the water marks and came back");
      }
      await waitFor(() => received > 0);
      assert.ok(received <= 2_000, `received ${received} (UDP may drop under load)`);
      await client.close();
      await endpoint.close();
    });

    it("holds at most pausedBacklog datagrams while the session is not reading", T, async () => {
      let release!: () => void;
      const held = new Promise<void>((r) => (release = r));
      const handled: string[] = [];
      const endpoint = new UdpEndpoint<Uint8Array>({
        port: 0,
        driver,
        pausedBacklog: 4,
        session: { inboundQueueLimit: 1 },
      });
      await endpoint.runEventLoop((s) => {
        s.setPkgHandler(codec);
        s.setEventListener({
          onMessage: async (_s, p) => {
            await held;
            handled.push(text(p));
          },
        });
      });
      const peer = await rawPeer();
      for (let i = 0; i < 20; i++) {
        await peer.send(frame(bytes(`d${i}`)), endpoint.port);
        await sleep(3);
      }
      await sleep(50);
      release();
      if (expectedDriver === "deno") {
        // Deno.listenDatagram stops receiving while paused: the kernel buffer holds the rest.
        await waitFor(() => handled.length === 20);
        assert.equal(endpoint.stats().dropped, 0);
      } else {
        // One being handled + one queued (the queue limit pauses the session) + 4 held; the rest dropped.
        await waitFor(() => handled.length === 6);
        await sleep(50);
        assert.deepEqual(handled, ["d0", "d1", "d2", "d3", "d4", "d5"]);
        assert.equal(endpoint.stats().dropped, 14);
      }
      // Reading resumed: new datagrams are handled again.
      await peer.send(frame(bytes("after")), endpoint.port);
      await waitFor(() => handled.includes("after"));
      await peer.close();
      await endpoint.close();
    });

    it("a dual-stack endpoint (::) sees IPv4 peers as plain IPv4 and serves IPv6 clients", T, async (t) => {
      const endpoint = new UdpEndpoint<Uint8Array>({ host: "::", port: 0, driver });
      const seen: PeerAddress[] = [];
      // An IPv4 endpoint asked to answer the same senders: a sender just reported (the fast path of a write to
      // `from`) is still checked for its family.
      const relay = new UdpEndpoint<Uint8Array>({ port: 0, driver });
      await relay.runEventLoop((s) => s.setPkgHandler(codec));
      const relayed: Array<{ sent: boolean; written: Promise<unknown> }> = [];
      try {
        await endpoint.runEventLoop((s) => {
          s.setPkgHandler(codec);
          s.setEventListener({
            onMessage: (s, p, from) => {
              seen.push(from!);
              relayed.push({
                sent: relay.session!.send(p, { to: from! }),
                written: relay.session!.writePkg(p, { to: from! }).then(() => "written", (e) => e),
              });
              void s.writePkg(p, { to: from! });
            },
          });
        });
      } catch (error) {
        await relay.close();
        t.skip(`no IPv6 here: ${(error as Error).message}`);
        return;
      }
      assert.equal(endpoint.addr?.hostname, "::");
      const got: string[] = [];
      const v4 = new UdpClient<Uint8Array>({ host: "127.0.0.1", port: endpoint.port, driver });
      await v4.runEventLoop((s) => {
        s.setPkgHandler(codec);
        s.setEventListener({ onMessage: (_s, p) => void got.push(text(p)) });
      });
      await v4.sessions[0].writePkg(bytes("v4"));
      await waitFor(() => got.length === 1); // the relay's answers come from another port: the client drops them
      assert.equal(seen[0].hostname, "127.0.0.1", "IPv4-mapped sender normalised");
      let v6: UdpClient<Uint8Array> | undefined;
      try {
        v6 = new UdpClient<Uint8Array>({ host: "::1", port: endpoint.port, driver });
        await v6.runEventLoop((s) => {
          s.setPkgHandler(codec);
          s.setEventListener({ onMessage: (_s, p) => void got.push(text(p)) });
        });
        assert.match(v6.sessions[0].localAddr, /^\[::1\]:\d+$/);
        await v6.sessions[0].writePkg(bytes("v6"));
        await waitFor(() => got.length === 2);
        assert.equal(seen[1].hostname, "::1");
        assert.equal(relayed[0].sent, true);
        assert.equal(await relayed[0].written, "written");
        assert.equal(relayed[1].sent, false, "an IPv6 sender is no destination for an IPv4 socket");
        const refused = await relayed[1].written;
        assert.ok(refused instanceof InvalidOptionError && refused.option === "to.hostname", String(refused));
        assert.equal(relay.session!.state, "open");
      } finally {
        await v6?.close();
        await v4.close();
        await endpoint.close();
        await relay.close();
      }
    });

    it("fails runEventLoop with typed errors and leaves nothing running", T, async () => {
      const first = new UdpEndpoint<Uint8Array>({ port: 0, driver });
      await first.runEventLoop(() => {});
      const taken = new UdpEndpoint<Uint8Array>({ port: first.port, driver });
      await assert.rejects(taken.runEventLoop(() => {}), (e: unknown) => {
        assert.ok(e instanceof ConnectionError);
        assert.match(e.message, new RegExp(`cannot bind 127\\.0\\.0\\.1:${first.port}`));
        return true;
      });
      assert.ok(taken.isClosed());

      const refused = new UdpEndpoint<Uint8Array>({ port: 0, driver });
      const errors: GettyError[] = [];
      await assert.rejects(
        refused.runEventLoop((s) => {
          s.setEventListener({
            onOpen: () => {
              throw new Error("not today");
            },
            onError: (_s, e) => void errors.push(e),
          });
        }),
        EndpointClosedError,
      );
      assert.ok(refused.isClosed());
      assert.equal(errors[0]?.code, "ERR_HANDLER");

      const c1 = new UdpClient<Uint8Array>({ host: "127.0.0.1", port: first.port, driver, connectionNumber: 3 });
      let n = 0;
      await assert.rejects(
        c1.runEventLoop(() => {
          if (++n === 2) throw new Error("no");
        }),
        (e: unknown) => e instanceof ConnectError && /refused/.test(e.message),
      );
      assert.ok(c1.isClosed());
      const c2 = new UdpClient<Uint8Array>({ host: "no-such-host.invalid", port: 9, driver });
      await assert.rejects(c2.runEventLoop(() => {}), (e: unknown) => {
        assert.ok(e instanceof ConnectError);
        assert.match(e.message, /no-such-host\.invalid:9 failed: cannot resolve/);
        return true;
      });
      await first.close();
      const c3 = new UdpClient<Uint8Array>({ host: "localhost", port: first.port, driver });
      await c3.runEventLoop(() => {});
      assert.equal(c3.sessions[0].remoteAddr, `127.0.0.1:${first.port}`);
      await c3.close();
      await assert.rejects(c3.runEventLoop(() => {}), EndpointClosedError);
    });
  });
}

describe(`udp options (${current})`, () => {
  after(assertNoLeaks);

  it("are validated at construction, naming the option", () => {
    const bad = (fn: () => unknown, option: string) =>
      assert.throws(fn, (e: unknown) => e instanceof InvalidOptionError && e.option === option);
    bad(() => new UdpEndpoint({ hots: "x" } as UdpEndpointOptions), "UdpEndpoint.hots");
    bad(() => new UdpEndpoint({ host: "" }), "UdpEndpoint.host");
    bad(() => new UdpEndpoint({ port: 70_000 }), "UdpEndpoint.port");
    bad(() => new UdpEndpoint({ driver: "fast" as "node" }), "UdpEndpoint.driver");
    bad(() => new UdpEndpoint({ pausedBacklog: -1 }), "UdpEndpoint.pausedBacklog");
    bad(() => new UdpEndpoint({ onSendError: 1 as unknown as () => void }), "UdpEndpoint.onSendError");
    bad(() => new UdpEndpoint({ perPeer: 3 as unknown as boolean }), "UdpEndpoint.perPeer");
    bad(() => new UdpEndpoint({ perPeer: { idleTimeout: -1 } }), "UdpEndpoint.perPeer.idleTimeout");
    bad(() => new UdpEndpoint({ perPeer: { maxPeers: 0 } }), "UdpEndpoint.perPeer.maxPeers");
    bad(() => new UdpEndpoint({ perPeer: { idle: 5 } as unknown as boolean }), "UdpEndpoint.perPeer.idle");
    bad(() => new UdpEndpoint({ session: { maxMsgLen: 0 } }), "UdpEndpoint.session.maxMsgLen");
    bad(() => new UdpClient({ host: "127.0.0.1", port: 0 }), "UdpClient.port");
    bad(() => new UdpClient({ host: "", port: 9 }), "UdpClient.host");
    bad(() => new UdpClient({ host: "127.0.0.1", port: 9, connectionNumber: 0 }), "UdpClient.connectionNumber");
    bad(
      () => new UdpClient({ host: "127.0.0.1", port: 9, reconnectInterval: 5 } as unknown as { host: string; port: 9 }),
      "UdpClient.reconnectInterval",
    );
    bad(() => new UdpClient({ host: "127.0.0.1", port: 9, localHost: "" }), "UdpClient.localHost");
    if (current === "deno" && !udpDrivers().includes("native")) {
      // Without --unstable-net, "native" cannot work on Deno: said at construction, not at first use.
      assert.throws(() => new UdpEndpoint({ driver: "native" }), /--unstable-net/);
    }
    assert.equal(new UdpEndpoint({ perPeer: true }).perPeer, true);
    assert.equal(new UdpEndpoint({}).driver, current === "bun" || udpDrivers().includes("native") ? current : "node");
  });

  it("runEventLoop needs a function", async () => {
    const endpoint = new UdpEndpoint();
    await assert.rejects(endpoint.runEventLoop(undefined as unknown as () => void), InvalidOptionError);
    await endpoint.close();
  });
});
