// Opens a page in a real headless Chromium (Debian's, driven by playwright-core) and reports what its script
// found. Used by tests/ws_browser.test.ts, which serves the page and the WebSocket endpoints it talks to:
//
//   node tests/browser/run.mjs <url> [timeoutMs]
//
// The page must set `globalThis.__result` to a JSON-able object with a boolean `ok`. Prints one line
// `RESULT <json>` on stdout and exits 0 when ok, 1 when not, 2 when the browser or page failed. Chromium is
// $GETTY_CHROMIUM or /usr/bin/chromium (install it with tests/browser/setup.sh). Each run uses a fresh
// profile directory, removed afterwards; the whole run is bounded by timeoutMs (default 30 s).
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { chromium } from "playwright-core";

const [url, timeoutArg] = process.argv.slice(2);
if (!url) {
  console.error("usage: node tests/browser/run.mjs <url> [timeoutMs]");
  process.exit(2);
}
const timeoutMs = Number(timeoutArg ?? 30_000);
const executablePath = process.env.GETTY_CHROMIUM ?? "/usr/bin/chromium";
if (!existsSync(executablePath)) {
  console.error(`chromium not found at ${executablePath}: run tests/browser/setup.sh (or set GETTY_CHROMIUM)`);
  process.exit(2);
}

const profile = mkdtempSync(join(tmpdir(), "getty-chromium-"));
let context;
const killer = setTimeout(() => {
  console.error(`browser run exceeded ${timeoutMs} ms`);
  cleanup().finally(() => process.exit(2));
}, timeoutMs);

async function cleanup() {
  try {
    await context?.close();
  } catch {
    // already gone
  }
  rmSync(profile, { recursive: true, force: true });
}

let code = 2;
try {
  // launchPersistentContext passes the fresh profile as --user-data-dir.
  context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
    timeout: timeoutMs,
  });
  const page = context.pages()[0] ?? await context.newPage();
  page.on("console", (m) => console.error(`[page ${m.type()}] ${m.text()}`));
  page.on("pageerror", (e) => console.error(`[page error] ${e.message}`));
  await page.goto(url, { timeout: timeoutMs });
  await page.waitForFunction(() => globalThis.__result !== undefined, null, { timeout: timeoutMs, polling: 50 });
  const result = await page.evaluate(() => globalThis.__result);
  console.log(`RESULT ${JSON.stringify(result)}`);
  code = result && result.ok === true ? 0 : 1;
} catch (error) {
  console.error(`browser run failed: ${error instanceof Error ? error.message : error}`);
  code = 2;
} finally {
  clearTimeout(killer);
  await cleanup();
}
process.exit(code);
