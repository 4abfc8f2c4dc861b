// Message and datagram reads on transports with `readsInTurns` (Bun's WebSocket server and UDP sockets, the memory
// transport) are stamped with a read turn instead of a clock read each (src/read_turn.ts): the stamps may be late,
// never early, so a read timeout never fires before readTimeout has passed since the last message, and getActive()
// never reads older than a message that arrived. In memory, and over real WebSocket and UDP (turns on Bun, a clock
// read per message on Deno: the same guarantees either way).
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import {
  createMemorySessionPair,
  ReadTimeoutError,
  type Session,
  UdpClient,
  UdpEndpoint,
  WsClient,
  WsServer,
} from "../mod.ts";
import { latestReadTime, readTurn } from "../src/read_turn.ts";
import { current } from "./helpers/runtimes.ts";
import { assertNoLeaks, bytes, sleep, waitFor, within } from "./helpers/util.ts";

/** Keeps the event loop busy for `ms` (nothing else runs meanwhile: timers, I/O). */
function busy(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end) { /* spin */ }
}

/** The read timeout of the real-socket tests, ms. */
const READ_TIMEOUT = 200;

/**
 * Sends a package every 50 ms for 500 ms (more than twice the read timeout, so only the packages keep `session`
 * open), checking it stays open and its getActive() moves with them; then it must time out, no sooner than
 * READ_TIMEOUT after the last one was sent.
 */
async function keptAliveThenTimedOut<P>(session: Session<P>, send: () => Promise<unknown>): Promise<void> {
  const start = Date.now();
  let lastSent = 0;
  while (Date.now() - start < 500) {
    lastSent = Date.now();
    await send();
    await sleep(50);
    assert.equal(session.isClosed(), false, `closed ${Date.now() - lastSent} ms after a package`);
    assert.ok(session.getActive() >= lastSent, "getActive moved with the package");
  }
  const info = await within(session.closed, 5_000, "read timeout");
  assert.ok(info.error instanceof ReadTimeoutError, `closed by ${info.error?.code}`);
  assert.ok(Date.now() - lastSent >= READ_TIMEOUT, `timed out ${Date.now() - lastSent} ms after the last package`);
}

describe(`read turns on ${current}`, { timeout: 30_000 }, () => {
  after(assertNoLeaks);

  it("one turn for the reads of a busy stretch; its end is no earlier than the last of them", async () => {
    const turn = readTurn();
    assert.equal(readTurn(), turn, "a second read in the same stretch joins the open turn");
    assert.equal(turn.end, Infinity);
    const t = Date.now();
    assert.equal(latestReadTime(turn, t), t, "while open, now is the bound");
    busy(30);
    assert.equal(readTurn(), turn, "the turn stays open while the event loop is busy");
    const lastRead = Date.now();
    await new Promise((resolve) => setImmediate(resolve));
    assert.ok(turn.end >= lastRead, `end ${turn.end} is not before the last read ${lastRead}`);
    assert.ok(turn.end <= Date.now());
    assert.equal(latestReadTime(turn, turn.end + 1000), turn.end);
    assert.notEqual(readTurn(), turn, "a read after the turn closed opens another");
  });

  it("a message that arrives late in a long turn: the read timeout counts from it, not from the turn's start", async () => {
    const readTimeout = 150;
    let lastMessageAt = 0;
    const [a, b] = await createMemorySessionPair<Uint8Array>({
      framing: "message",
      b: (s) => {
        s.setReadTimeout(readTimeout);
        s.setEventListener({
          onMessage: (_s, m) => {
            // The first message keeps the event loop busy, so the second arrives 60 ms into the same turn.
            if (m[0] === 1) busy(60);
            lastMessageAt = Date.now();
          },
        });
      },
    });
    void a.send(new Uint8Array([1]));
    void a.send(new Uint8Array([2]));
    const info = await within(b.closed, 5_000, "read timeout");
    const closedAt = Date.now();
    assert.ok(info.error instanceof ReadTimeoutError, `closed by ${info.error?.code}`);
    assert.ok(
      closedAt - lastMessageAt >= readTimeout - 1,
      `timed out ${closedAt - lastMessageAt} ms after the last message (readTimeout ${readTimeout})`,
    );
    await a.close();
  });

  it("getActive() of a message session is never older than a message it received", async () => {
    const [a, b] = await createMemorySessionPair<Uint8Array>({ framing: "message" });
    const seen: number[] = [];
    b.setEventListener({
      onMessage: (s) => {
        busy(20);
        seen.push(Date.now());
        assert.ok(s.getActive() >= seen.at(-1)!, "inside onMessage");
      },
    });
    void a.send(bytes("x"));
    void a.send(bytes("y"));
    await waitFor(() => seen.length === 2);
    assert.ok(b.getActive() >= seen[1], "in the same turn");
    await sleep(20);
    assert.ok(b.getActive() >= seen[1], "after the turn closed");
    assert.ok(b.getActive() <= Date.now());
    await a.close();
    await b.closed;
  });

  it("over real WebSocket: messages keep the session alive; it times out readTimeout after the last one", async () => {
    let serverSession: Session<string | Uint8Array> | undefined;
    const server = new WsServer<string | Uint8Array>({ port: 0, session: { readTimeout: READ_TIMEOUT } });
    await server.runEventLoop((s) => void (serverSession = s));
    const client = new WsClient<string | Uint8Array>({ url: server.url!, reconnectAttempts: 0 });
    await client.runEventLoop(() => {});
    await waitFor(() => serverSession !== undefined);
    await keptAliveThenTimedOut(serverSession!, () => client.sessions[0].writePkg("tick"));
    await client.close();
    await server.close();
  });

  it("over real UDP: datagrams keep the endpoint session alive; it times out readTimeout after the last one", async () => {
    const endpoint = new UdpEndpoint<Uint8Array>({ port: 0, session: { readTimeout: READ_TIMEOUT } });
    await endpoint.runEventLoop(() => {});
    const client = new UdpClient<Uint8Array>({ host: "127.0.0.1", port: endpoint.port });
    await client.runEventLoop(() => {});
    await keptAliveThenTimedOut(endpoint.session!, () => client.sessions[0].writePkg(bytes("tick")));
    await client.close();
    await endpoint.close();
  });
});
