/**
 * CPU cost of the library's shared timer: 100,000 sessions (50,000 in-memory pairs) each with an `onCron` every
 * 1,000 ms. Measured as process CPU time (`process.cpuUsage()`, all threads) over a window, minus a baseline
 * window with the same sessions alive but cron off; reported as % of one core. Target: < 5 %.
 *
 *   deno run -A --v8-flags=--expose-gc bench/cron.ts [--pairs 50000] [--period 1000] [--duration 10] [--settle 10]
 *     [--json]
 *   bun bench/cron.ts …
 *
 * Phases (each `duration` seconds of wall time, the process otherwise idle):
 *   1. idle:     nothing created yet (the runtime's own idle cost, for information);
 *   2. baseline: every pair open, listener with `onCron` set, cronPeriod 0 (nothing scheduled);
 *   3. cron:     `setCronPeriod(period)` on every session, spread evenly over one period (sessions of a real
 *                server open at different times), then one period to settle before measuring;
 *   4. baseline again: `setCronPeriod(0)` on every session. Cost = (3) − the lower of (2) and (4).
 * Each window starts with a full GC where the runtime offers one (`Bun.gc`, Deno `--v8-flags=--expose-gc`) and
 * a `settle` pause (10 s), so garbage from the setup is not billed to a window. The pause is that long because of
 * V8's memory reducer: about 8 s after a full collection, in a process allocating little, it runs one to three more
 * full collections (~100 ms of main thread plus helper threads each, on this 160 MB heap). With a 2.5 s pause they
 * fell inside a window at random (cron on, or either baseline), which moved the result between 2 % and 7 %.
 * A 10 ms probe timer runs in every phase and reports the worst event-loop lag (a 100,000-callback burst would
 * show up there). The number of `onCron` calls in the window is checked against sessions × window / period.
 *
 * @module
 */
import process from "node:process";
import { parseArgs } from "node:util";
import { createMemorySessionPair, type Session } from "../mod.ts";

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    pairs: { type: "string", default: "50000" },
    period: { type: "string", default: "1000" },
    duration: { type: "string", default: "10" },
    settle: { type: "string", default: "10" },
    json: { type: "boolean", default: false },
  },
});
const PAIRS = Number(values.pairs);
const PERIOD = Number(values.period);
const WINDOW_MS = Number(values.duration) * 1000;
const SETTLE_MS = Number(values.settle) * 1000;
const runtime = typeof (globalThis as { Bun?: unknown }).Bun !== "undefined" ? "bun" : "deno";
const log = (line: string) => {
  if (!values.json) console.log(line);
  else console.error(line);
};

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const cpuMicros = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

/** A full garbage collection when the runtime exposes one (Bun.gc; Deno with --v8-flags=--expose-gc). */
function collect(): void {
  const g = globalThis as { Bun?: { gc(force: boolean): void }; gc?: () => void };
  if (g.Bun) g.Bun.gc(true);
  else g.gc?.();
}

/**
 * Collects garbage left by setup, waits SETTLE_MS, then runs a 10 ms probe timer during `ms` and returns CPU µs
 * used, wall ms, and the worst lag of the probe.
 */
async function measure(ms: number): Promise<{ cpuUs: number; wallMs: number; maxLagMs: number; calls: number }> {
  collect();
  await sleep(SETTLE_MS); // concurrent sweeping and V8's memory reducer finish outside the window
  let maxLag = 0;
  let expected = performance.now() + 10;
  const probe = setInterval(() => {
    const now = performance.now();
    maxLag = Math.max(maxLag, now - expected);
    expected = now + 10;
  }, 10);
  const calls0 = cronCalls;
  const c0 = cpuMicros();
  const t0 = performance.now();
  await sleep(ms);
  const cpuUs = cpuMicros() - c0;
  const wallMs = performance.now() - t0;
  const calls = cronCalls - calls0;
  clearInterval(probe);
  return { cpuUs, wallMs, maxLagMs: maxLag, calls };
}

const pct = (cpuUs: number, wallMs: number) => (cpuUs / 1000 / wallMs) * 100;
let cronCalls = 0;

// 1. idle process
await sleep(500);
const idle = await measure(WINDOW_MS);
log(`[cron] ${runtime}: idle process ${pct(idle.cpuUs, idle.wallMs).toFixed(2)} % of a core`);

// 2. create the sessions, cron off
const listener = { onCron: () => void cronCalls++ };
const sessions: Session<Uint8Array>[] = [];
const tCreate = performance.now();
const BATCH = 1000;
for (let i = 0; i < PAIRS; i += BATCH) {
  const batch = [];
  for (let j = i; j < Math.min(PAIRS, i + BATCH); j++) {
    batch.push(createMemorySessionPair<Uint8Array>({
      session: { cronPeriod: 0 },
      a: (s) => s.setEventListener(listener),
      b: (s) => s.setEventListener(listener),
    }));
  }
  for (const [a, b] of await Promise.all(batch)) sessions.push(a, b);
}
const createS = (performance.now() - tCreate) / 1000;
log(`[cron] created ${sessions.length} sessions in ${createS.toFixed(1)} s`);
const baseline = await measure(WINDOW_MS);
log(`[cron] baseline (sessions, cron off) ${pct(baseline.cpuUs, baseline.wallMs).toFixed(2)} % of a core`);

// 3. cron on, spread over one period
const slices = Math.max(1, Math.round(PERIOD / 10));
const perSlice = Math.ceil(sessions.length / slices);
for (let k = 0; k < slices; k++) {
  for (const s of sessions.slice(k * perSlice, (k + 1) * perSlice)) s.setCronPeriod(PERIOD);
  await sleep(PERIOD / slices);
}
await sleep(PERIOD + 500);
const cron = await measure(WINDOW_MS);
const calls = cron.calls;
const expectedCalls = (sessions.length * cron.wallMs) / PERIOD;
log(`[cron] cron on: ${pct(cron.cpuUs, cron.wallMs).toFixed(2)} % of a core`);

// 4. cron off again: a second baseline, so a disturbance in one baseline window shows (and the lower is used).
for (const s of sessions) s.setCronPeriod(0);
const baseline2 = await measure(WINDOW_MS);
log(`[cron] baseline again (cron off) ${pct(baseline2.cpuUs, baseline2.wallMs).toFixed(2)} % of a core`);
const basePct = Math.min(pct(baseline.cpuUs, baseline.wallMs), pct(baseline2.cpuUs, baseline2.wallMs));

const result = {
  runtime,
  sessions: sessions.length,
  periodMs: PERIOD,
  windowS: Number((cron.wallMs / 1000).toFixed(3)),
  settleS: SETTLE_MS / 1000,
  idlePct: Number(pct(idle.cpuUs, idle.wallMs).toFixed(3)),
  baselinePct: Number(pct(baseline.cpuUs, baseline.wallMs).toFixed(3)),
  baseline2Pct: Number(pct(baseline2.cpuUs, baseline2.wallMs).toFixed(3)),
  cronPct: Number(pct(cron.cpuUs, cron.wallMs).toFixed(3)),
  costPct: Number((pct(cron.cpuUs, cron.wallMs) - basePct).toFixed(3)),
  gc: typeof (globalThis as { gc?: unknown }).gc === "function" || runtime === "bun",
  cronCallsPerS: Math.round(calls / (cron.wallMs / 1000)),
  cronCallsRatio: Number((calls / expectedCalls).toFixed(4)),
  maxLagMs: {
    idle: round1(idle.maxLagMs),
    baseline: round1(Math.max(baseline.maxLagMs, baseline2.maxLagMs)),
    cron: round1(cron.maxLagMs),
  },
  createS: Number(createS.toFixed(2)),
  rssMiB: Math.round(process.memoryUsage().rss / 1048576),
};
function round1(x: number): number {
  return Math.round(x * 10) / 10;
}
log(
  `[cron] cost ${result.costPct.toFixed(2)} % of a core ` +
    `(target < 5 %), ${result.cronCallsPerS} onCron/s (${(result.cronCallsRatio * 100).toFixed(1)} % of expected), ` +
    `worst timer lag ${result.maxLagMs.cron} ms with cron, ${result.maxLagMs.baseline} ms without, RSS ${result.rssMiB} MiB`,
);
// Exit once the result is written: process.exit() right after console.log can drop it when stdout is a pipe.
process.stdout.write(values.json ? `${JSON.stringify(result)}\n` : "", () => process.exit(0));
