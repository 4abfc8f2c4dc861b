// Per-peer mode of the UDP endpoint: one session per remote address over the shared socket, with eviction after
// idleTimeout, a cap on concurrent peers, and refusal per peer. Run once per available driver.
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import {
  type CloseInfo,
  type Codec,
  type GettyError,
  LengthFieldCodec,
  type PeerAddress,
  ReadTimeoutError,
  type Session,
  UdpEndpoint,
  type UdpEndpointOptions,
} from "../mod.ts";
import { current } from "./helpers/runtimes.ts";
import { frame, rawPeer, udpDrivers } from "./helpers/udp.ts";
import { assertNoLeaks, bytes, sleep, text, waitFor, within } from "./helpers/util.ts";

const T = { timeout: 30_000 };

/** A codec with per-instance state: every package it writes carries the instance's own sequence number. */
class SequencingCodec implements Codec<Uint8Array> {
  readonly #frame = new LengthFieldCodec();
  #next = 0;
  read(s: Session<Uint8Array> | undefined, data: Uint8Array) {
    return this.#frame.read(s, data);
  }
  write(s: Session<Uint8Array> | undefined, pkg: Uint8Array) {
    return this.#frame.write(s, new Uint8Array([...pkg, this.#next++]));
  }
}

/** The body and trailing sequence number of a datagram written by a {@link SequencingCodec}. */
function decode(d: Uint8Array): { body: string; seq: number } {
  return { body: text(d.subarray(4, d.length - 1)), seq: d[d.length - 1] };
}

interface Recorder {
  opened: Session<Uint8Array>[];
  closed: Array<{ session: Session<Uint8Array>; info: CloseInfo }>;
  errors: Array<{ session: Session<Uint8Array>; error: GettyError }>;
  from: PeerAddress[];
}

/** A per-peer echo endpoint that answers each package with `writePkg(pkg)` (no `to`), counting per session. */
async function peerEndpoint(
  driver: "native" | "node",
  options: UdpEndpointOptions = {},
  hook?: (s: Session<Uint8Array>) => void,
) {
  const rec: Recorder = { opened: [], closed: [], errors: [], from: [] };
  const endpoint = new UdpEndpoint<Uint8Array>({ port: 0, driver, perPeer: { idleTimeout: 0 }, ...options });
  await endpoint.runEventLoop((s) => {
    s.setPkgHandler(new SequencingCodec());
    s.setEventListener({
      onOpen: (s) => void rec.opened.push(s),
      onMessage: (s, pkg, from) => {
        rec.from.push(from!);
        s.setAttribute("count", ((s.getAttribute("count") as number | undefined) ?? 0) + 1);
        void s.writePkg(pkg).catch(() => {});
      },
      onError: (s, error) => void rec.errors.push({ session: s, error }),
      onClose: (s, info) => void rec.closed.push({ session: s, info }),
    });
    hook?.(s);
  });
  return { endpoint, rec };
}

for (const driver of udpDrivers()) {
  describe(`udp endpoint per-peer mode (${current}, driver ${driver})`, T, () => {
    after(assertNoLeaks);

    it("gives two peers independent sessions: codec state, attributes, addresses, replies", T, async () => {
      const { endpoint, rec } = await peerEndpoint(driver);
      assert.equal(endpoint.perPeer, true);
      assert.equal(endpoint.session, undefined);
      assert.equal(endpoint.sessionCount, 0, "sessions are created by datagrams");
      const a = await rawPeer();
      const b = await rawPeer();
      for (let i = 0; i < 3; i++) {
        await a.send(frame(bytes(`a${i}`)), endpoint.port);
        await sleep(2);
      }
      await b.send(frame(bytes("b0")), endpoint.port);
      await a.waitFor(3);
      await b.waitFor(1);
      assert.deepEqual(a.received.map((d) => decode(d.data)), [
        { body: "a0", seq: 0 },
        { body: "a1", seq: 1 },
        { body: "a2", seq: 2 },
      ]);
      assert.deepEqual(b.received.map((d) => decode(d.data)), [{ body: "b0", seq: 0 }], "b has its own codec");
      assert.deepEqual(a.received[0].from, { hostname: "127.0.0.1", port: endpoint.port });

      assert.equal(rec.opened.length, 2);
      assert.equal(endpoint.sessionCount, 2);
      const sa = endpoint.sessionFor(a.address)!;
      const sb = endpoint.sessionFor(b.address)!;
      assert.notEqual(sa, sb);
      assert.equal(sa.remoteAddr, `127.0.0.1:${a.port}`);
      assert.equal(sb.remoteAddr, `127.0.0.1:${b.port}`);
      assert.equal(sa.localAddr, `127.0.0.1:${endpoint.port}`);
      assert.equal(sa.name, "udp-session");
      assert.equal(sa.endPoint(), endpoint);
      assert.equal(sa.getAttribute("count"), 3);
      assert.equal(sb.getAttribute("count"), 1);
      assert.deepEqual(rec.from.filter((f) => f.port === b.port), [b.address]);
      assert.equal(sa.stat().readPkgs, 3);
      assert.equal(sb.stat().readPkgs, 1);
      assert.equal(endpoint.sessionFor({ hostname: "127.0.0.1", port: 1 }), undefined);

      // A write without `to` goes to the session's own peer (a `to` option is ignored).
      await sb.writePkg(bytes("push"));
      await sb.writePkg(bytes("still b"), { to: a.address });
      await b.waitFor(3);
      assert.deepEqual(b.received.slice(1).map((d) => decode(d.data).body), ["push", "still b"]);
      assert.equal(a.received.length, 3);

      // A bad datagram is dropped and reported on its peer's session only.
      await b.send(new Uint8Array([0, 0, 0, 50, 1]), endpoint.port);
      await waitFor(() => rec.errors.length === 1);
      assert.equal(rec.errors[0].session, sb);
      assert.equal(rec.errors[0].error.code, "ERR_CODEC");
      assert.equal(sb.state, "open");

      const stats = endpoint.stats();
      assert.equal(stats.open, 2);
      assert.equal(stats.opened, 2);
      assert.equal(stats.readPkgs, 4);
      await Promise.all([a.close(), b.close()]);
      await endpoint.close();
      assert.equal(rec.closed.length, 2);
      assert.ok(rec.closed.every((c) => c.info.initiator === "local"));
    });

    it("evicts a silent peer after idleTimeout as if it had closed; it comes back to a new session", T, async () => {
      const { endpoint, rec } = await peerEndpoint(driver, { perPeer: { idleTimeout: 150 } });
      const quiet = await rawPeer();
      const chatty = await rawPeer();
      await quiet.send(frame(bytes("q0")), endpoint.port);
      await quiet.waitFor(1);
      const first = endpoint.sessionFor(quiet.address)!;
      first.setAttribute("mark", "first");
      const started = Date.now();
      while (Date.now() - started < 400) {
        await chatty.send(frame(bytes("c")), endpoint.port);
        await sleep(40);
      }
      const info = await within(first.closed, 1_000, "eviction");
      assert.deepEqual(info, { initiator: "peer" }, "no error: eviction is the peer going quiet");
      assert.equal(rec.errors.length, 0, "no onError for an eviction");
      assert.equal(endpoint.sessionFor(quiet.address), undefined);
      const chattySession = endpoint.sessionFor(chatty.address)!;
      assert.equal(chattySession.state, "open", "a peer that keeps talking stays");
      assert.equal(endpoint.stats().evicted, 1);

      await quiet.send(frame(bytes("q1")), endpoint.port);
      await quiet.waitFor(2);
      const second = endpoint.sessionFor(quiet.address)!;
      assert.notEqual(second, first);
      assert.notEqual(second.id, first.id);
      assert.equal(second.getAttribute("mark"), undefined, "fresh state");
      assert.equal(second.getAttribute("count"), 1);
      assert.deepEqual(decode(quiet.received[1].data), { body: "q1", seq: 0 }, "fresh codec");
      assert.equal(rec.opened.filter((s) => s.remoteAddr === first.remoteAddr).length, 2);
      await Promise.all([quiet.close(), chatty.close()]);
      await endpoint.close();
    });

    it(
      "caps concurrent peers at maxPeers: datagrams from more peers are dropped and counted as refused",
      T,
      async () => {
        const { endpoint, rec } = await peerEndpoint(driver, { perPeer: { maxPeers: 2, idleTimeout: 0 } });
        const [a, b, c] = await Promise.all([rawPeer(), rawPeer(), rawPeer()]);
        await a.send(frame(bytes("a")), endpoint.port);
        await b.send(frame(bytes("b")), endpoint.port);
        await a.waitFor(1);
        await b.waitFor(1);
        for (let i = 0; i < 3; i++) await c.send(frame(bytes(`c${i}`)), endpoint.port);
        await waitFor(() => endpoint.stats().refused === 3);
        await sleep(30);
        assert.equal(c.received.length, 0);
        assert.equal(endpoint.sessionCount, 2);
        const st = endpoint.stats();
        assert.equal(st.refused, 3);
        assert.equal(st.dropped, 3);
        assert.equal(rec.opened.length, 2);
        // A slot frees up: the next datagram from c gets a session.
        await endpoint.sessionFor(a.address)!.close();
        await c.send(frame(bytes("c again")), endpoint.port);
        await c.waitFor(1);
        assert.equal(decode(c.received[0].data).body, "c again");
        assert.equal(endpoint.sessionCount, 2);
        await Promise.all([a.close(), b.close(), c.close()]);
        await endpoint.close();
      },
    );

    it("refusing a peer in newSession or onOpen drops that peer only; it may try again", T, async () => {
      const [good, noSession, noOpen] = await Promise.all([rawPeer(), rawPeer(), rawPeer()]);
      const errors: GettyError[] = [];
      const endpoint = new UdpEndpoint<Uint8Array>({ port: 0, driver, perPeer: true });
      await endpoint.runEventLoop((s) => {
        if (s.remoteAddr.endsWith(`:${noSession.port}`)) throw new Error("not you");
        s.setPkgHandler(new LengthFieldCodec());
        s.setEventListener({
          onOpen: async (s) => {
            await sleep(5);
            if (s.remoteAddr.endsWith(`:${noOpen.port}`)) throw new Error("not you either");
          },
          onMessage: (s, p) => void s.writePkg(p),
          onError: (_s, e) => void errors.push(e),
        });
      });
      await noSession.send(frame(bytes("1")), endpoint.port);
      await noOpen.send(frame(bytes("2")), endpoint.port);
      await good.send(frame(bytes("3")), endpoint.port);
      await good.waitFor(1);
      await waitFor(() => endpoint.stats().refused === 2);
      assert.equal(endpoint.sessionCount, 1);
      assert.equal(errors.filter((e) => e.code === "ERR_HANDLER").length, 1, "the onOpen refusal reached onError");
      await noSession.send(frame(bytes("again")), endpoint.port);
      await waitFor(() => endpoint.stats().refused === 3, 2_000, "a new attempt, refused again");
      await good.send(frame(bytes("4")), endpoint.port);
      await good.waitFor(2);
      assert.equal(noSession.received.length + noOpen.received.length, 0);
      assert.equal(endpoint.stats().opened, 1);
      await Promise.all([good.close(), noSession.close(), noOpen.close()]);
      await endpoint.close();
    });

    it(
      "each peer session has its own cron and read timeout; a stalled peer does not hold up the others",
      T,
      async () => {
        let release!: () => void;
        const stalled = new Promise<void>((r) => (release = r));
        const crons = new Map<string, number>();
        const slow = await rawPeer();
        const fast = await rawPeer();
        const { endpoint, rec } = await peerEndpoint(
          driver,
          { session: { readTimeout: 300, cronPeriod: 20, inboundQueueLimit: 1 }, pausedBacklog: 2 },
          (s) => {
            const listener = {
              onOpen: (s: Session<Uint8Array>) => void rec.opened.push(s),
              onCron: (s: Session<Uint8Array>) => void crons.set(s.remoteAddr, (crons.get(s.remoteAddr) ?? 0) + 1),
              onMessage: async (s: Session<Uint8Array>, p: Uint8Array) => {
                if (s.remoteAddr.endsWith(`:${slow.port}`)) await stalled;
                await s.writePkg(p);
              },
              onError: (s: Session<Uint8Array>, error: GettyError) => void rec.errors.push({ session: s, error }),
              onClose: (s: Session<Uint8Array>, info: CloseInfo) => void rec.closed.push({ session: s, info }),
            };
            s.setEventListener(listener);
          },
        );
        for (let i = 0; i < 10; i++) await slow.send(frame(bytes(`s${i}`)), endpoint.port);
        for (let i = 0; i < 5; i++) {
          await fast.send(frame(bytes(`f${i}`)), endpoint.port);
          await sleep(5);
        }
        await fast.waitFor(5);
        assert.equal(slow.received.length, 0);
        assert.ok(endpoint.stats().dropped > 0, "the stalled peer's backlog overflowed");
        await waitFor(() =>
          (crons.get(`127.0.0.1:${fast.port}`) ?? 0) >= 2 && (crons.get(`127.0.0.1:${slow.port}`) ?? 0) >= 2
        );
        // fast goes quiet: its own read timeout closes it with ReadTimeoutError (unlike an idleTimeout eviction).
        const fastSession = endpoint.sessionFor(fast.address)!;
        const info = await within(fastSession.closed, 2_000, "read timeout");
        assert.ok(info.error instanceof ReadTimeoutError);
        assert.equal(info.initiator, "error");
        release();
        await slow.waitFor(4); // 1 handled + 1 queued + 2 held
        await Promise.all([slow.close(), fast.close()]);
        await endpoint.close();
      },
    );

    it("close() closes every peer session and the socket", T, async () => {
      const { endpoint, rec } = await peerEndpoint(driver);
      const peers = await Promise.all([rawPeer(), rawPeer(), rawPeer()]);
      for (const p of peers) await p.send(frame(bytes("hi")), endpoint.port);
      await Promise.all(peers.map((p) => p.waitFor(1)));
      assert.equal(endpoint.sessionCount, 3);
      const port = endpoint.port;
      await endpoint.close();
      assert.equal(rec.closed.length, 3);
      assert.ok(rec.closed.every((c) => c.info.initiator === "local" && c.session.state === "closed"));
      assert.equal(endpoint.sessionCount, 0);
      await peers[0].send(frame(bytes("late")), port); // nobody listens any more
      const again = new UdpEndpoint<Uint8Array>({ port, driver, perPeer: true });
      await again.runEventLoop(() => {});
      assert.equal(again.port, port);
      await again.close();
      await Promise.all(peers.map((p) => p.close()));
    });
  });
}
