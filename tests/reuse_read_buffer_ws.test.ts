// The `reuseReadBuffer` session option on WebSocket sessions: over the standard `WebSocket` (Deno's server sockets,
// the clients on both runtimes) a binary message of 1 KiB or more is detached once the session is done with it, so
// its memory is freed at once. What the session keeps itself (an async onMessage and the packages queued behind
// it, `readable`) must stay intact, and so must everything without the option. Real loopback sockets, both runtimes.
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { type Session, type SessionOptions, WsClient, WsServer } from "../mod.ts";
import { current } from "./helpers/runtimes.ts";
import { assertNoLeaks, pattern, sleep, waitFor } from "./helpers/util.ts";

type Msg = string | Uint8Array;
const T = { timeout: 60_000 };
/** Message sizes around the 1 KiB threshold, and one larger than a socket read. */
const SIZES = [100, 1023, 1024, 5000, 70_000];
const THRESHOLD = 1024;

/** An echo server; `keep` sees every package the server's onMessage got (after echoing it). */
async function echoServer(session: SessionOptions = {}, keep?: (pkg: Msg) => void) {
  const server = new WsServer<Msg>({ port: 0, session });
  await server.runEventLoop((s) =>
    s.setEventListener({
      onMessage: (s, m) => {
        s.send(m);
        keep?.(m);
      },
    })
  );
  return server;
}

/** One client session to `server`, configured by `listen`. */
async function clientOf(server: WsServer<Msg>, session: SessionOptions, listen: (s: Session<Msg>) => void) {
  const client = new WsClient<Msg>({ url: server.url!, session, reconnectAttempts: 0 });
  await client.runEventLoop(listen);
  return client;
}

/** Sends one message per size (message `i` is `pattern(SIZES[i], i)`). */
function sendAll(session: Session<Msg>): void {
  SIZES.forEach((n, i) => session.send(pattern(n, i)));
}

describe(`reuseReadBuffer on WebSocket sessions (${current})`, T, () => {
  after(assertNoLeaks);

  it("client: a message of 1 KiB or more is detached after a synchronous onMessage; smaller ones stay", async () => {
    const server = await echoServer();
    const kept: Uint8Array[] = [];
    const seen: Uint8Array[] = [];
    const client = await clientOf(server, { reuseReadBuffer: true }, (s) =>
      s.setEventListener({
        onMessage: (_s, m) => {
          seen.push((m as Uint8Array).slice()); // what the handler sees is the message, intact
          kept.push(m as Uint8Array);
        },
      }));
    sendAll(client.sessions[0]);
    await waitFor(() => seen.length === SIZES.length, 10_000, "every echo");
    SIZES.forEach((n, i) => {
      assert.deepEqual(seen[i], pattern(n, i), `echo ${i} (${n} B) intact in onMessage`);
      if (n >= THRESHOLD) assert.equal(kept[i].byteLength, 0, `${n} B message detached after onMessage`);
      else assert.deepEqual(kept[i], pattern(n, i), `${n} B message left as it was`);
    });
    await client.close();
    await server.close();
  });

  it("client: off by default, every kept message stays intact", async () => {
    const server = await echoServer();
    const kept: Uint8Array[] = [];
    const client = await clientOf(
      server,
      {},
      (s) => s.setEventListener({ onMessage: (_s, m) => void kept.push(m as Uint8Array) }),
    );
    sendAll(client.sessions[0]);
    await waitFor(() => kept.length === SIZES.length, 10_000, "every echo");
    SIZES.forEach((n, i) => assert.deepEqual(kept[i], pattern(n, i), `message ${i} (${n} B)`));
    await client.close();
    await server.close();
  });

  it("client: an async onMessage keeps its message and those queued behind it", async () => {
    const server = await echoServer();
    const kept: Uint8Array[] = [];
    const client = await clientOf(server, { reuseReadBuffer: true }, (s) =>
      s.setEventListener({
        onMessage: async (_s, m) => {
          kept.push(m as Uint8Array);
          await sleep(5);
          assert.ok((m as Uint8Array).byteLength > 0, "intact while the handler runs");
        },
      }));
    sendAll(client.sessions[0]);
    await waitFor(() => kept.length === SIZES.length, 10_000, "every echo");
    await sleep(20);
    SIZES.forEach((n, i) => assert.deepEqual(kept[i], pattern(n, i), `message ${i} (${n} B)`));
    await client.close();
    await server.close();
  });

  it("client: messages read through session.readable stay intact", async () => {
    const server = await echoServer();
    let session: Session<Msg> | undefined;
    const client = await clientOf(server, { reuseReadBuffer: true }, (s) => void (session = s));
    await waitFor(() => session !== undefined);
    sendAll(session!);
    const reader = session!.readable.getReader();
    const got: Uint8Array[] = [];
    while (got.length < SIZES.length) got.push((await reader.read()).value as Uint8Array);
    reader.releaseLock();
    SIZES.forEach((n, i) => assert.deepEqual(got[i], pattern(n, i), `message ${i} (${n} B)`));
    await client.close();
    await server.close();
  });

  it("server: echoes arrive intact; on Deno the server's kept messages are detached, on Bun left alone", async () => {
    const kept: Uint8Array[] = [];
    const server = await echoServer({ reuseReadBuffer: true }, (m) => kept.push(m as Uint8Array));
    const got: Uint8Array[] = [];
    const client = await clientOf(
      server,
      {},
      (s) => s.setEventListener({ onMessage: (_s, m) => void got.push(m as Uint8Array) }),
    );
    sendAll(client.sessions[0]);
    await waitFor(() => got.length === SIZES.length, 10_000, "every echo");
    SIZES.forEach((n, i) => {
      assert.deepEqual(got[i], pattern(n, i), `echo ${i} (${n} B)`);
      // Deno's server sockets are standard WebSockets; Bun's ServerWebSocket hands out Uint8Arrays of its own.
      const detached = current === "deno" && n >= THRESHOLD;
      if (detached) assert.equal(kept[i].byteLength, 0, `${n} B message detached on the server`);
      else assert.deepEqual(kept[i], pattern(n, i), `${n} B message kept intact on the server`);
    });
    await client.close();
    await server.close();
  });
});
