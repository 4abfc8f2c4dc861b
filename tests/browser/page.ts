// The page tests/browser/run.mjs loads: its script talks to our WebSocket endpoints from a real browser and
// reports the outcome as `window.__result` ({ ok, checks, errors }).

/** The HTML of the test page; `okPath` must accept the page's origin, `refusedPath` must refuse it. */
export function browserTestPage(okPath: string, refusedPath: string, protocol: string): string {
  return `<!doctype html><meta charset="utf-8"><title>getty ws browser test</title>
<script type="module">
const errors = [];
const checks = {};
const wsUrl = (path) => location.origin.replace(/^http/, "ws") + path;
const bytes = (n, seed) => { const b = new Uint8Array(n); for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 255; return b; };
const same = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
function expect(name, cond, detail) { checks[name] = !!cond; if (!cond) errors.push(name + (detail ? ": " + detail : "")); }
async function main() {
  const ws = new WebSocket(wsUrl(${JSON.stringify(okPath)}), [${JSON.stringify(protocol)}, "other"]);
  ws.binaryType = "arraybuffer";
  const inbox = [];
  let wake;
  ws.onmessage = (e) => { inbox.push(e.data); wake?.(); };
  const next = async () => { while (inbox.length === 0) await new Promise((r) => { wake = r; setTimeout(r, 5000); }); return inbox.shift(); };
  await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = () => reject(new Error("open failed")); });
  expect("subprotocol", ws.protocol === ${JSON.stringify(protocol)}, ws.protocol);
  const welcome = await next();
  expect("welcome is text", typeof welcome === "string" && welcome === "welcome", String(welcome));
  const greeting = await next();
  expect("server binary is binary", greeting instanceof ArrayBuffer && same(new Uint8Array(greeting), [9, 8, 7]));
  ws.send("hello ✓");
  const echoed = await next();
  expect("text echo stays text", echoed === "echo:hello ✓", String(echoed));
  ws.send(new Uint8Array([1, 2, 3, 255]));
  const reversed = await next();
  expect("binary echo stays binary", reversed instanceof ArrayBuffer && same(new Uint8Array(reversed), [255, 3, 2, 1]));
  const big = bytes(1 << 20, 7);
  ws.send(big);
  const bigBack = await next();
  expect("1 MiB binary", bigBack instanceof ArrayBuffer && same(new Uint8Array(bigBack), big.slice().reverse()));
  const bigText = "x".repeat(1 << 20);
  ws.send(bigText);
  const bigTextBack = await next();
  expect("1 MiB text", bigTextBack === "echo:" + bigText);
  const closed = new Promise((resolve) => { ws.onclose = (e) => resolve(e.code); });
  ws.close(4000, "bye from the browser");
  expect("clean close", (await closed) === 4000);
  const refused = new WebSocket(wsUrl(${JSON.stringify(refusedPath)}));
  const refusedCode = await new Promise((resolve) => { refused.onopen = () => resolve("opened"); refused.onclose = (e) => resolve(e.code); });
  expect("origin refused", refusedCode === 1006, String(refusedCode));
}
main().catch((e) => errors.push("exception: " + e.message)).finally(() => {
  window.__result = { ok: errors.length === 0, checks, errors, userAgent: navigator.userAgent };
});
</script>`;
}
