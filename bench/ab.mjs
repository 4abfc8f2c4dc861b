#!/usr/bin/env node
// A/B on one core: two echo servers run at the same time, both pinned to CPU 0, each driven by its own load
// generator (both on CPU 1) with the same load. The kernel shares CPU 0 fairly between two saturated servers, so
// the ratio of their throughputs is the inverse ratio of their CPU cost per package, and a drift of the machine
// (other VMs, frequency) hits both at once. Used to judge small changes (a few %) that interleaved runs on a
// noisy machine cannot resolve; `run.mjs` remains the benchmark of record.
//
//   node bench/ab.mjs --runtime deno|bun --transport tcp|ws|udp --a FILE [--a-env K=V] --b FILE [--b-env K=V]
//                     [--conns 25] [--depth 16] [--size 64] [--rounds 3] [--duration 4]
//
// FILE is a server that takes `--transport T --host H --port P` and prints `listening T H:P` (the library's
// examples/echo_server.ts, the raw servers in bench/, or a copy of either from another checkout). Loads are per
// server, so `--conns 25` puts 50 connections on the machine. Prints one line per round and the median B/A.
import { execFileSync, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");
const { values: opt } = parseArgs({
  options: {
    runtime: { type: "string", default: "deno" },
    transport: { type: "string", default: "tcp" },
    a: { type: "string" },
    b: { type: "string" },
    "a-env": { type: "string", multiple: true, default: [] },
    "b-env": { type: "string", multiple: true, default: [] },
    conns: { type: "string", default: "25" },
    depth: { type: "string", default: "16" },
    size: { type: "string", default: "64" },
    rounds: { type: "string", default: "3" },
    duration: { type: "string", default: "4" },
  },
});
if (!opt.a || !opt.b) {
  console.error("usage: node bench/ab.mjs --runtime deno|bun --transport tcp|ws|udp --a FILE --b FILE [options]");
  process.exit(2);
}
const loadgen = path.join(root, "bench/.build/loadgen");
if (!existsSync(loadgen)) {
  console.error("bench/ab.mjs: build the load generator first (node bench/run.mjs builds bench/.build/loadgen)");
  process.exit(2);
}
try {
  execFileSync("taskset", ["-c", "0", "true"]);
} catch {
  console.error("bench/ab.mjs: taskset (util-linux) is required: both servers are pinned to CPU 0");
  process.exit(2);
}
const tools = path.join(root, ".tools/node_modules/.bin");
const env = { ...process.env, PATH: `${tools}:${process.env.PATH}` };

function startServer(file, extraEnv, port) {
  const argv = opt.runtime === "bun"
    ? ["bun", file]
    : ["deno", "run", "-A", ...(opt.transport === "udp" ? ["--unstable-net"] : []), file];
  argv.push("--transport", opt.transport, "--host", "127.0.0.1", "--port", String(port));
  const childEnv = { ...env };
  for (const kv of extraEnv) {
    const i = kv.indexOf("=");
    childEnv[kv.slice(0, i)] = kv.slice(i + 1);
  }
  const child = spawn("taskset", ["-c", "0", ...argv], {
    cwd: root,
    env: childEnv,
    stdio: ["ignore", "pipe", "ignore"],
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${file} did not start`)), 20_000);
    let out = "";
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/^listening \S+ \S+:(\d+)$/m);
      if (m) {
        clearTimeout(timer);
        resolve({ child, port: Number(m[1]) });
      }
    });
    child.on("exit", (code) => reject(new Error(`${file} exited (${code})`)));
  });
}

function runLoad(server) {
  const args = ["-c", "1", loadgen, "--transport", opt.transport, "--port", String(server.port)];
  if (opt.transport === "ws") args.push("--path", "/ws");
  args.push("--conns", opt.conns, "--depth", opt.depth, "--size", opt.size, "--warmup", "0.5");
  args.push("--duration", opt.duration, "--server-pid", String(server.child.pid));
  return new Promise((resolve) => {
    const child = spawn("taskset", args, { stdio: ["ignore", "pipe", "ignore"] });
    let out = "";
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (d) => (out += d));
    child.on("close", () => {
      const line = out.trim().split("\n").filter((l) => l.startsWith("{")).pop();
      resolve(line ? JSON.parse(line) : { errors: 1 });
    });
  });
}

const median = (xs) => [...xs].sort((x, y) => x - y)[xs.length >> 1];
const ratios = [];
const cpuRatios = [];
for (let round = 0; round < Number(opt.rounds); round++) {
  // Port 0: each server picks a free port. The pid given to the load generator is taskset's, which execs the
  // runtime, so it is the server's.
  const [a, b] = await Promise.all([startServer(opt.a, opt["a-env"], 0), startServer(opt.b, opt["b-env"], 0)]);
  const [ra, rb] = await Promise.all([runLoad(a), runLoad(b)]);
  a.child.kill("SIGKILL");
  b.child.kill("SIGKILL");
  if (ra.errors || rb.errors || !ra.msgs_per_s || !rb.msgs_per_s) {
    console.log(`round ${round + 1}: invalid (a errors ${ra.errors ?? "?"}, b errors ${rb.errors ?? "?"})`);
    continue;
  }
  const r = rb.msgs_per_s / ra.msgs_per_s;
  const c = rb.server_cpu_s_per_mpkg / ra.server_cpu_s_per_mpkg;
  ratios.push(r);
  cpuRatios.push(c);
  console.log(
    `round ${round + 1}: A ${Math.round(ra.msgs_per_s)} msgs/s, B ${Math.round(rb.msgs_per_s)} msgs/s, ` +
      `B/A throughput ${r.toFixed(3)}, CPU per package ${c.toFixed(3)}`,
  );
}
if (ratios.length === 0) process.exit(1);
console.log(`median B/A: throughput ${median(ratios).toFixed(3)}, CPU per package ${median(cpuRatios).toFixed(3)}`);
