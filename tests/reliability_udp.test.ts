// UDP faults, once per driver available on the runtime running the suite (Deno: node:dgram, and
// Deno.listenDatagram when run with --unstable-net; Bun: Bun.udpSocket and node:dgram):
// - fuzzed datagrams (garbage, empty, oversized, truncated, trailing bytes, valid) against an oracle: valid ones
//   are echoed in order, every bad one is dropped with a typed onError, and the session never closes;
// - per-peer mode: a garbage peer only ever hurts its own session;
// - vanished peers (ICMP port unreachable) never crash anything; a client notices only through readTimeout;
// - many peers: maxPeers caps the sessions (the rest are refused and counted), idle ones are evicted;
// - write-side misuse fails with typed errors.
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import fc from "fast-check";
import {
  type GettyError,
  LengthFieldCodec,
  type PeerAddress,
  type Session,
  UdpClient,
  UdpEndpoint,
  type UdpEndpointOptions,
} from "../mod.ts";
import { concatBytes, typedCode } from "./helpers/faults.ts";
import { current } from "./helpers/runtimes.ts";
import { deadPort, frame, type RawPeer, rawPeer, udpDrivers } from "./helpers/udp.ts";
import { assertNoLeaks, bytes, collectUnhandled, pattern, sleep, text, waitFor, within } from "./helpers/util.ts";

const T = { timeout: 30_000 };
const codec = new LengthFieldCodec();
const RUNS = Number(process.env.GETTY_FUZZ_RUNS ?? 100);

/** What the endpoint must do with datagram `d` (the oracle of the datagram read path). */
function verdict(d: Uint8Array, max: number): "ok" | "ERR_CODEC" | "ERR_MESSAGE_TOO_LONG" {
  if (d.length > max) return "ERR_MESSAGE_TOO_LONG";
  if (d.length === 0) return "ERR_CODEC";
  try {
    const r = codec.read(undefined, d);
    return r !== undefined && "pkg" in r && r.length === d.length ? "ok" : "ERR_CODEC";
  } catch (e) {
    return typedCode(e, ["ERR_CODEC", "ERR_MESSAGE_TOO_LONG"]) as "ERR_CODEC";
  }
}

/** Random datagrams, biased towards the edges. */
const datagram = fc.oneof(
  fc.uint8Array({ maxLength: 700 }),
  fc.uint8Array({ maxLength: 600 }).map((b) => frame(b)), // valid, or over maxMsgLen
  fc.constant(new Uint8Array(0)),
  fc.tuple(fc.uint8Array({ minLength: 1, maxLength: 200 }), fc.integer({ min: 1, max: 100 })).map(([b, cut]) =>
    frame(b).subarray(0, Math.max(0, 4 + b.length - cut)) // truncated
  ),
  fc.tuple(fc.uint8Array({ maxLength: 200 }), fc.uint8Array({ minLength: 1, maxLength: 8 })).map(([b, extra]) =>
    concatBytes([frame(b), extra]) // trailing bytes
  ),
);

/** An endpoint that echoes each package to its sender and records errors per session. */
async function echoEndpoint(driver: "native" | "node", options: UdpEndpointOptions = {}) {
  const errors: Array<{ session: Session<Uint8Array>; error: GettyError }> = [];
  const endpoint = new UdpEndpoint<Uint8Array>({ port: 0, driver, ...options });
  await endpoint.runEventLoop((s) => {
    s.setPkgHandler(codec);
    s.setEventListener({
      onMessage: (s, pkg, from) =>
        void (options.perPeer ? s.writePkg(pkg) : s.writePkg(pkg, { to: from! })).catch(() => {}),
      onError: (s, error) => void errors.push({ session: s, error }),
    });
  });
  return { endpoint, errors };
}

/** Sends `ds` paced, then a marker from `marker`; waits until the marker came back (all before it was handled). */
async function sendAll(peer: RawPeer, port: number, ds: readonly Uint8Array[], marker: RawPeer, tag: string) {
  for (const d of ds) {
    await peer.send(d, port);
    await sleep(0);
  }
  const want = marker.received.length + 1;
  await marker.send(frame(bytes(tag)), port);
  await marker.waitFor(want, 5_000);
  assert.equal(text(marker.received[want - 1].data.subarray(4)), tag);
}

for (const driver of udpDrivers()) {
  describe(`udp faults (${current}, driver ${driver})`, T, () => {
    after(assertNoLeaks);

    it(
      "fuzzed datagrams to a default-mode endpoint: valid ones echoed in order, bad ones dropped with typed onError",
      T,
      async () => {
        const max = 512;
        const { endpoint, errors } = await echoEndpoint(driver, { session: { maxMsgLen: max } });
        const peer = await rawPeer();
        const marker = await rawPeer();
        const session = endpoint.session!;
        let run = 0;
        try {
          await fc.assert(
            fc.asyncProperty(fc.array(datagram, { minLength: 1, maxLength: 10 }), async (ds) => {
              const echoedBefore = peer.received.length;
              const errorsBefore = errors.length;
              await sendAll(peer, endpoint.port, ds, marker, `marker ${run++}`);
              const verdicts = ds.map((d) => verdict(d, max));
              const ok = ds.filter((_, i) => verdicts[i] === "ok");
              await peer.waitFor(echoedBefore + ok.length, 2_000);
              assert.deepEqual(peer.received.slice(echoedBefore).map((r) => r.data), ok, "valid datagrams echoed");
              const got = errors.slice(errorsBefore).map((e) =>
                typedCode(e.error, ["ERR_CODEC", "ERR_MESSAGE_TOO_LONG"])
              );
              assert.deepEqual(got, verdicts.filter((v) => v !== "ok"), "one typed error per bad datagram");
              assert.equal(session.state, "open");
            }),
            { numRuns: Math.ceil(RUNS / 5) },
          );
          assert.equal(endpoint.stats().errors, errors.length);
          assert.equal(endpoint.isClosed(), false);
        } finally {
          await Promise.all([peer.close(), marker.close()]);
          await endpoint.close();
        }
      },
    );

    it(
      "per-peer mode: a garbage peer gets typed errors on its own session; the other peers are untouched",
      T,
      async () => {
        const max = 256;
        const { endpoint, errors } = await echoEndpoint(driver, {
          perPeer: { idleTimeout: 0 },
          session: { maxMsgLen: max },
        });
        const bad = await rawPeer();
        const good = await Promise.all([rawPeer(), rawPeer()]);
        try {
          const junk = fc.sample(datagram, { numRuns: 60, seed: 42 });
          let goodSent = 0;
          for (const [i, d] of junk.entries()) {
            await bad.send(d, endpoint.port);
            if (i % 6 === 0) {
              for (const g of good) await g.send(frame(pattern(50, goodSent)), endpoint.port);
              goodSent++;
            }
            await sleep(0);
          }
          await sendAll(bad, endpoint.port, [], good[0], "end");
          const expectedBad = junk.map((d) => verdict(d, max)).filter((v) => v !== "ok");
          await waitFor(() => errors.length >= expectedBad.length, 3_000, "errors");
          await Promise.all(good.map((g) => g.waitFor(goodSent)));
          const badSession = endpoint.sessionFor(bad.address)!;
          assert.ok(badSession && badSession.state === "open", "the garbage peer's session lives on");
          assert.deepEqual(errors.map((e) => typedCode(e.error, ["ERR_CODEC", "ERR_MESSAGE_TOO_LONG"])), expectedBad);
          assert.ok(errors.every((e) => e.session === badSession), "errors only on the garbage peer's session");
          for (const g of good) {
            assert.deepEqual(
              g.received.filter((r) => r.data.length === 54).map((r) => r.data),
              Array.from({ length: goodSent }, (_, i) => frame(pattern(50, i))),
            );
            assert.equal(endpoint.sessionFor(g.address)?.state, "open");
          }
          assert.equal(endpoint.sessionCount, 3);
        } finally {
          await Promise.all([bad.close(), ...good.map((g) => g.close())]);
          await endpoint.close();
        }
      },
    );

    it(
      "vanished peers (ICMP unreachable) in per-peer mode: no crash, no unhandled rejection; a client notices via readTimeout",
      T,
      async () => {
        const unhandled = await collectUnhandled(async () => {
          const { endpoint } = await echoEndpoint(driver, { perPeer: { idleTimeout: 0 } });
          const peers = await Promise.all(Array.from({ length: 12 }, () => rawPeer()));
          for (const p of peers) await p.send(frame(bytes("hello")), endpoint.port);
          await Promise.all(peers.map((p) => p.waitFor(1)));
          // Half of them vanish; the endpoint keeps writing to their sessions.
          const gone = peers.slice(0, 6);
          const stay = peers.slice(6);
          const addrs: PeerAddress[] = gone.map((p) => p.address);
          await Promise.all(gone.map((p) => p.close()));
          for (let i = 0; i < 10; i++) {
            for (const a of addrs) {
              const r = await endpoint.sessionFor(a)!.writePkg(bytes(`to the void ${i}`)).then(() => "ok", (e) => e);
              assert.equal(r, "ok", "a datagram to a vanished peer still resolves (UDP promises no delivery)");
            }
            for (const p of stay) await p.send(frame(bytes(`live ${i}`)), endpoint.port);
            await sleep(2);
          }
          await Promise.all(stay.map((p) => p.waitFor(11)));
          assert.equal(endpoint.sessionCount, 12);
          assert.ok([...endpoint.sessions].every((s) => s.state === "open"));
          // A client whose server vanished: writes resolve, and only readTimeout ends the session, typed.
          const client = new UdpClient<Uint8Array>({
            host: "127.0.0.1",
            port: await deadPort(),
            driver,
            session: { readTimeout: 300 },
          });
          await client.runEventLoop((s) => s.setPkgHandler(codec));
          const s = client.sessions[0];
          for (let i = 0; i < 3; i++) await s.writePkg(bytes(`ping ${i}`));
          const info = await within(s.closed, 3_000, "the client session to time out");
          assert.equal(info.initiator, "error");
          assert.equal(typedCode(info.error), "ERR_READ_TIMEOUT");
          await assert.rejects(s.writePkg(bytes("after")), (e: unknown) => typedCode(e) === "ERR_SESSION_CLOSED");
          await client.close();
          await Promise.all(stay.map((p) => p.close()));
          await endpoint.close();
        });
        assert.deepEqual(unhandled, []);
      },
    );

    it(
      "many peers: maxPeers caps the sessions, the rest are refused and counted; idle peers are evicted",
      T,
      async () => {
        const maxPeers = 100;
        const idleTimeout = 500;
        const { endpoint } = await echoEndpoint(driver, { perPeer: { maxPeers, idleTimeout } });
        const peers = await Promise.all(Array.from({ length: 150 }, () => rawPeer()));
        try {
          for (const [i, p] of peers.entries()) {
            await p.send(frame(bytes(`peer ${i}`)), endpoint.port);
            if (i % 10 === 9) await sleep(1);
          }
          await waitFor(() => endpoint.stats().opened + endpoint.stats().refused >= 150, 5_000, "all peers seen");
          await waitFor(() => peers.filter((p) => p.received.length === 1).length === maxPeers, 5_000, "replies");
          await sleep(50);
          const served = peers.filter((p) => p.received.length === 1);
          const refused = peers.filter((p) => p.received.length === 0);
          assert.equal(served.length, maxPeers);
          assert.equal(refused.length, 50);
          for (const p of served) assert.equal(text(p.received[0].data.subarray(4)), `peer ${peers.indexOf(p)}`);
          let st = endpoint.stats();
          assert.equal(st.opened, maxPeers);
          assert.equal(st.refused, 50);
          assert.ok(st.dropped >= 50, `dropped ${st.dropped}`);
          assert.equal(endpoint.sessionCount, maxPeers);
          // Silence: every peer is evicted after idleTimeout, as a clean close.
          await waitFor(() => endpoint.sessionCount === 0, idleTimeout + 3_000, "eviction");
          st = endpoint.stats();
          assert.equal(st.evicted, maxPeers);
          // Room again: the refused peers now get sessions.
          for (const p of refused) await p.send(frame(bytes("again")), endpoint.port);
          await Promise.all(refused.map((p) => p.waitFor(1)));
          assert.equal(endpoint.sessionCount, 50);
          console.log(
            `  [udp/${current}/${driver}] 150 peers, maxPeers ${maxPeers}: ${maxPeers} served, 50 refused ` +
              `(dropped ${st.dropped}), ${st.evicted} evicted after ${idleTimeout} ms idle, then 50 admitted`,
          );
        } finally {
          await Promise.all(peers.map((p) => p.close()));
          await endpoint.close();
        }
      },
    );

    it(
      "write-side misuse fails typed: no `to`, > 65,507 bytes, after close; the session stays open until closed",
      T,
      async () => {
        const { endpoint } = await echoEndpoint(driver);
        const s = endpoint.session!;
        try {
          await assert.rejects(s.writePkg(bytes("nowhere")), (e: unknown) => typedCode(e) === "ERR_INVALID_OPTION");
          await assert.rejects(
            s.writeBytes(new Uint8Array(65_508), { to: { hostname: "127.0.0.1", port: 9 } }),
            (e: unknown) => typedCode(e) === "ERR_MESSAGE_TOO_LONG",
          );
          await assert.rejects(s.writeBytesArray(bytes("x")), (e: unknown) => typedCode(e) === "ERR_INVALID_OPTION");
          assert.equal(s.state, "open");
        } finally {
          await endpoint.close();
        }
        await assert.rejects(
          s.writePkg(bytes("late"), { to: { hostname: "127.0.0.1", port: 9 } }),
          (e: unknown) => typedCode(e) === "ERR_SESSION_CLOSED",
        );
        await assert.rejects(endpoint.runEventLoop(() => {}), (e: unknown) => typedCode(e) === "ERR_ENDPOINT_CLOSED");
      },
    );
  });
}
