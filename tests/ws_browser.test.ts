// A real browser as the WebSocket client: Debian's Chromium (headless, through playwright-core in a node child
// process) loads a page served by this process and exchanges text and binary messages with getty sessions.
// Needs chromium (tests/browser/setup.sh installs it); skipped, with a message, when it is missing (failed
// instead when GETTY_REQUIRE_BROWSER is set).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import process from "node:process";
import { after, describe, it } from "node:test";
import { type CloseInfo, type Session, WsHandler } from "../mod.ts";
import { browserTestPage } from "./browser/page.ts";
import { assertNoLeaks, waitFor } from "./helpers/util.ts";
import { current, root } from "./helpers/runtimes.ts";
import { serveFetch } from "./helpers/ws.ts";

type Msg = string | Uint8Array;
const CHROMIUM = process.env.GETTY_CHROMIUM ?? "/usr/bin/chromium";
const PROTOCOL = "getty.test";

/** Runs tests/browser/run.mjs against `url`; resolves with its exit code and output. */
function runBrowser(url: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.env.GETTY_NODE ?? "node", ["tests/browser/run.mjs", url, "40000"], {
    cwd: root,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d) => (stdout += d));
  child.stderr!.on("data", (d) => (stderr += d));
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    child.on("close", (code) => { // after stdout/stderr are drained, unlike "exit"
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe(`ws on ${current}: a real browser (headless Chromium)`, { timeout: 90_000 }, () => {
  after(assertNoLeaks);

  it("exchanges text and binary messages, 1 MiB each way, subprotocol, close code, origin refusal", {
    timeout: 90_000,
  }, async (t) => {
    if (!existsSync(CHROMIUM)) {
      const why = `no chromium at ${CHROMIUM}: run bash tests/browser/setup.sh`;
      if (process.env.GETTY_REQUIRE_BROWSER) assert.fail(why);
      return t.skip(why);
    }
    const closes: CloseInfo[] = [];
    let origin = "";
    const ok = new WsHandler<Msg>((s: Session<Msg>) => {
      s.setEventListener({
        onOpen: (s) => {
          void s.writePkg("welcome");
          void s.writePkg(new Uint8Array([9, 8, 7]));
        },
        onMessage: (s, m) => void s.writePkg(typeof m === "string" ? `echo:${m}` : m.slice().reverse()),
        onClose: (_s, info) => void closes.push(info),
      });
    }, {
      protocols: [PROTOCOL],
      onUpgrade: (request) => void (origin = request.headers.get("origin") ?? ""),
      session: { maxMsgLen: 2 << 20 },
    });
    let pageOrigin = "";
    const refused = new WsHandler<Msg>(() => {}, { origins: ["https://somewhere.else.example"] });
    const server = serveFetch((request, srv) => {
      const path = new URL(request.url).pathname;
      if (path === "/ws") return ok.fetch(request, srv);
      if (path === "/ws-refused") return refused.fetch(request, srv);
      if (path === "/") {
        return new Response(browserTestPage("/ws", "/ws-refused", PROTOCOL), {
          headers: { "content-type": "text/html; charset=utf-8" },
        });
      }
      return new Response("not found", { status: 404 });
    });
    pageOrigin = `http://127.0.0.1:${server.port}`;
    try {
      const r = await runBrowser(`${pageOrigin}/`);
      const line = r.stdout.split("\n").find((l) => l.startsWith("RESULT "));
      assert.ok(line, `browser reported nothing (exit ${r.code}): ${r.stderr}`);
      const result = JSON.parse(line.slice("RESULT ".length));
      assert.deepEqual(result.errors, [], `browser checks failed: ${JSON.stringify(result)}`);
      assert.equal(result.ok, true);
      assert.match(result.userAgent, /Chrome\//);
      assert.equal(r.code, 0);
      assert.equal(origin, pageOrigin, "the browser sent its Origin");
      await waitFor(() => closes.length === 1);
      assert.deepEqual({ ...closes[0] }, { initiator: "peer", code: 4000, reason: "bye from the browser" });
      assert.equal(refused.stats().refused, 1, "the origin allow-list refused the browser");
      assert.equal(refused.stats().opened, 0);
    } finally {
      await ok.close();
      await refused.close();
      await server.close();
    }
  });
});
