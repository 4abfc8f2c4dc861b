// The full test command: static checks, then the one test suite under Deno and under Bun.
// Usage: node scripts/test.mjs [--only deno|bun] [--no-static] [test files…]
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { bun, deno, root, setup } from "./setup.mjs";

setup();
// Debian's chromium for tests/ws_browser.test.ts (a real browser talking to the WebSocket server). CI sets
// GETTY_REQUIRE_BROWSER=1, so there a missing browser fails that test instead of skipping it.
if (!process.env.GETTY_NO_BROWSER) {
  const r = spawnSync("bash", ["tests/browser/setup.sh"], { cwd: root, stdio: "inherit" });
  if (r.status !== 0) console.error("browser setup failed: tests/ws_browser.test.ts cannot run");
}
const args = process.argv.slice(2);
const only = args.includes("--only") ? args[args.indexOf("--only") + 1] : undefined;
const noStatic = args.includes("--no-static");
const files = args.filter((a, i) => !a.startsWith("--") && args[i - 1] !== "--only");
const env = { ...process.env, GETTY_DENO: deno, GETTY_BUN: bun, NO_COLOR: "1" };

let passed = 0;
let failed = 0;
const failures = [];

function run(label, cmd, cmdArgs, parse) {
  console.log(`\n=== ${label}: ${[cmd.split("/").pop(), ...cmdArgs].join(" ")}`);
  const started = Date.now();
  const r = spawnSync(cmd, cmdArgs, { cwd: root, env, encoding: "utf8", maxBuffer: 256 * 1024 * 1024 });
  const out = (r.stdout ?? "") + (r.stderr ?? "");
  process.stdout.write(out);
  const counts = parse ? parse(out) : undefined;
  if (counts) {
    passed += counts.passed;
    failed += counts.failed;
  }
  const ok = r.status === 0 && (!counts || counts.failed === 0);
  if (!ok) failures.push(`${label} (exit ${r.status ?? r.signal})`);
  console.log(`=== ${label}: ${ok ? "ok" : "FAILED"} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

// Deno's summary: "ok | 3 passed (40 steps) | 0 failed" or "FAILED | 2 passed (38 steps) | 1 failed (2 steps)".
// node:test `it` blocks are steps, so count steps where Deno reports them.
function parseDeno(out) {
  const re = /(?:ok|FAILED) \| (\d+) passed(?: \((\d+) steps?\))? \| (\d+) failed(?: \((\d+) steps?\))?/g;
  const m = [...out.matchAll(re)].pop();
  if (!m) return { passed: 0, failed: 1 };
  return { passed: Number(m[2] ?? m[1]), failed: Math.max(Number(m[3]), Number(m[4] ?? 0)) };
}

function parseBun(out) {
  const p = out.match(/^\s*(\d+) pass$/m);
  const f = out.match(/^\s*(\d+) fail$/m);
  return p ? { passed: Number(p[1]), failed: f ? Number(f[1]) : 0 } : { passed: 0, failed: 1 };
}

if (!noStatic && only !== "bun") {
  run("deno fmt", deno, ["fmt", "--check"]);
  run("deno lint", deno, ["lint"]);
  run("deno check", deno, ["check", "mod.ts", "src/", "tests/", "examples/"]);
  run("deno doc --lint", deno, ["doc", "--lint", "mod.ts", "src/hono.ts"]);
  run("deno publish --dry-run", deno, ["publish", "--dry-run", "--allow-dirty"]);
}
const testFiles = files.length ? files : ["tests/"];
if (only !== "bun") {
  run("deno test", deno, ["test", "-A", "--no-check", ...testFiles], parseDeno);
  if (!files.length) {
    // Deno.test files with op/resource sanitizers (Bun does not discover *.deno.ts).
    const sanitized = readdirSync(join(root, "tests")).filter((f) => f.endsWith(".deno.ts")).map((f) => `tests/${f}`);
    run("deno sanitizers", deno, ["test", "-A", "--no-check", ...sanitized], parseDeno);
    // UDP once more with --unstable-net, so Deno.listenDatagram is tested too (the main run uses node:dgram).
    const udp = readdirSync(join(root, "tests")).filter((f) => /^udp.*\.(test|deno)\.ts$/.test(f)).map((f) =>
      `tests/${f}`
    );
    run("deno test --unstable-net (udp)", deno, ["test", "-A", "--no-check", "--unstable-net", ...udp], parseDeno);
  }
}
if (only !== "deno") {
  run(
    "bun test",
    bun,
    ["test", ...testFiles.map((f) => (f.startsWith(".") || f.startsWith("/") ? f : `./${f}`))],
    parseBun,
  );
}

console.log(`\n${failures.length ? `FAILED: ${failures.join(", ")}` : "all steps ok"}`);
console.log(`tests: ${passed} passed, ${failed} failed`);
process.exit(failures.length ? 1 : 0);
