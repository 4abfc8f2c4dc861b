// The leak check used by every suite's after-hook must be able to fail: a forgotten server, client or
// session is reported on both runtimes.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createMemorySessionPair, TcpClient, TcpServer } from "../mod.ts";
import { assertNoLeaks, checkLeaks } from "./helpers/util.ts";

describe("leak check", () => {
  it("fails while a server or client is still running, and passes once they are closed", async () => {
    await assertNoLeaks();
    const server = new TcpServer({ port: 0 });
    await server.runEventLoop(() => {});
    await assert.rejects(checkLeaks(50), /servers\/clients still running/);
    const client = new TcpClient({ host: "127.0.0.1", port: server.port });
    await client.runEventLoop(() => {});
    await assert.rejects(checkLeaks(50), /still running/);
    await client.close();
    await server.close();
    await assertNoLeaks();
  });

  it("fails while a session is open (even one with no timers)", async () => {
    const [a, b] = await createMemorySessionPair();
    await assert.rejects(checkLeaks(50), /sessions still open/);
    await a.close();
    await b.closed;
    await assertNoLeaks();
  });
});
