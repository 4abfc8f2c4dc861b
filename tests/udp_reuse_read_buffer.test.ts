// The `reuseReadBuffer` session option on UDP endpoints, once per driver of the runtime running the suite. Deno's
// native driver (--unstable-net) hands datagrams over uncopied once the session released a few in a row; every
// other driver gives each datagram a buffer of its own. Echoes stay intact everywhere, and so does a datagram the
// session keeps (an async onMessage) even when it came uncopied. Real loopback sockets.
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { LengthFieldCodec, type Session, UdpEndpoint, type UdpEndpointOptions } from "../mod.ts";
import { current } from "./helpers/runtimes.ts";
import { frame, rawPeer, udpDrivers } from "./helpers/udp.ts";
import { assertNoLeaks, pattern, sleep } from "./helpers/util.ts";

const T = { timeout: 30_000 };
const COUNT = 12;
/** Datagram `i` carries `body(i)`: sizes vary, so a later datagram overwrites only part of an earlier one's bytes. */
const body = (i: number) => pattern(200 + 37 * i, i);

/** An endpoint whose handler echoes every package, keeps it, and is async for the package numbers in `slow`. */
async function endpoint(driver: "native" | "node", options: UdpEndpointOptions, slow: Set<number>) {
  const kept: Uint8Array[] = [];
  const ep = new UdpEndpoint<Uint8Array>({ port: 0, driver, ...options });
  await ep.runEventLoop((s: Session<Uint8Array>) => {
    s.setPkgHandler(new LengthFieldCodec());
    s.setEventListener({
      onMessage: (s, pkg, from) => {
        s.send(pkg.slice(), { to: from! });
        kept.push(pkg);
        if (slow.has(kept.length - 1)) return sleep(10);
      },
    });
  });
  return { ep, kept };
}

/** Sends `COUNT` datagrams one at a time, each after the echo of the one before; checks every echo. */
async function pingPong(port: number): Promise<void> {
  const peer = await rawPeer();
  try {
    for (let i = 0; i < COUNT; i++) {
      await peer.send(frame(body(i)), port);
      await peer.waitFor(i + 1);
      assert.deepEqual(peer.received[i].data, frame(body(i)), `echo ${i}`);
    }
  } finally {
    await peer.close();
  }
}

for (const driver of udpDrivers()) {
  const uncopied = current === "deno" && driver === "native";
  describe(`reuseReadBuffer on a UDP endpoint (${current}, ${driver})`, T, () => {
    after(assertNoLeaks);

    it(`echoes intact; kept packages ${uncopied ? "are overwritten once datagrams come uncopied" : "stay intact"}`, async () => {
      const { ep, kept } = await endpoint(driver, { session: { reuseReadBuffer: true } }, new Set());
      await pingPong(ep.port);
      const intact = kept.map((p, i) => p.length === body(i).length && p.every((b, j) => b === body(i)[j]));
      // The first datagrams are copies (nothing released yet); on Deno's driver later ones are views of the one
      // receive buffer, which the next datagram overwrites.
      assert.deepEqual(intact.slice(0, 4), [true, true, true, true], "the first datagrams are copies");
      if (uncopied) assert.ok(intact.slice(5, COUNT - 1).every((ok) => !ok), `overwritten: ${intact}`);
      else assert.ok(intact.every((ok) => ok), `intact: ${intact}`);
      await ep.close();
    });

    it("a datagram the session keeps (async onMessage) stays intact, uncopied or not", async () => {
      const { ep, kept } = await endpoint(driver, { session: { reuseReadBuffer: true } }, new Set([6, 9]));
      await pingPong(ep.port);
      await sleep(30);
      assert.deepEqual(kept[6], body(6), "package 6, kept by its async handler");
      assert.deepEqual(kept[9], body(9), "package 9, kept by its async handler");
      await ep.close();
    });

    it("off by default: every kept package stays intact", async () => {
      const { ep, kept } = await endpoint(driver, {}, new Set());
      await pingPong(ep.port);
      kept.forEach((p, i) => assert.deepEqual(p, body(i), `package ${i}`));
      await ep.close();
    });
  });
}
