// Observability: endpoint counters as Prometheus text, and the optional hono route that serves them.
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { Hono } from "hono";
import { LengthFieldCodec, prometheusText, TcpClient, TcpServer } from "../mod.ts";
import { metricsRoute } from "../src/hono.ts";
import { assertNoLeaks, bytes, waitFor } from "./helpers/util.ts";

describe("metrics", () => {
  after(assertNoLeaks);

  it("renders every counter of each endpoint, labelled, and serves them from a hono route", async () => {
    const server = new TcpServer<Uint8Array>({ port: 0 });
    await server.runEventLoop((s) => {
      s.setPkgHandler(new LengthFieldCodec());
      s.setEventListener({ onMessage: (s, p) => void s.writePkg(p) });
    });
    const client = new TcpClient<Uint8Array>({ host: "127.0.0.1", port: server.port });
    await client.runEventLoop((s) => s.setPkgHandler(new LengthFieldCodec()));
    for (let i = 0; i < 3; i++) await client.sessions[0].writePkg(bytes("abc"));
    await waitFor(() => server.stats().writePkgs === 3);

    const text = prometheusText({ api: server, 'up"stream': client });
    assert.match(text, /^# TYPE getty_open gauge$/m);
    assert.match(text, /^getty_open\{endpoint="api",type="TCP_SERVER"\} 1$/m);
    assert.match(text, /^# TYPE getty_read_pkgs_total counter$/m);
    assert.match(text, /^getty_read_pkgs_total\{endpoint="api",type="TCP_SERVER"\} 3$/m);
    assert.match(text, /^getty_read_bytes_total\{endpoint="api",type="TCP_SERVER"\} 21$/m);
    assert.match(text, /^getty_write_pkgs_total\{endpoint="up\\"stream",type="TCP_CLIENT"\} 3$/m);
    assert.match(text, /^getty_errors_total\{endpoint="api",type="TCP_SERVER"\} 0$/m);

    const app = new Hono();
    app.get("/metrics", metricsRoute({ api: server }));
    const res = await app.request("/metrics");
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
    assert.match(await res.text(), /^getty_opened_total\{endpoint="api",type="TCP_SERVER"\} 1$/m);
    await client.close();
    await server.close();
  });
});
