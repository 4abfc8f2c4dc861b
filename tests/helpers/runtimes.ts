// Paths of the pinned runtimes and helpers to run an example under the other runtime.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";
import { detectRuntime, type RuntimeName } from "../../src/runtime/select.ts";

/** Repository root. */
export const root: string = fileURLToPath(new URL("../../", import.meta.url).href);

/** Path of a runtime binary: $GETTY_DENO / $GETTY_BUN, else the pinned one in .tools/. */
export function runtimeBinary(name: RuntimeName): string {
  const fromEnv = name === "deno" ? process.env.GETTY_DENO : process.env.GETTY_BUN;
  const path = fromEnv ?? `${root}.tools/node_modules/.bin/${name}`;
  if (!existsSync(path)) throw new Error(`${name} binary not found at ${path}: run "npm run setup"`);
  return path;
}

/** The runtime running this test, and the other one. */
export const current: RuntimeName = detectRuntime();
/** The runtime not running this test. */
export const other: RuntimeName = current === "deno" ? "bun" : "deno";

/** Command line to run a script with a runtime. */
export function scriptArgs(name: RuntimeName, script: string, args: string[]): [string, string[]] {
  return name === "deno"
    ? [runtimeBinary("deno"), ["run", "-A", script, ...args]]
    : [runtimeBinary("bun"), [script, ...args]];
}

/** A running example process. */
export interface Running {
  readonly port: number;
  readonly lines: string[];
  readonly stderr: string[];
  stop(): Promise<number | null>;
}

/** Starts examples/echo_server.ts under `runtime` and resolves once it printed its `listening` line. */
export function startEchoServer(runtime: RuntimeName, args: string[]): Promise<Running> {
  const [cmd, argv] = scriptArgs(runtime, "examples/echo_server.ts", args);
  const child = spawn(cmd, argv, {
    cwd: root,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, NO_COLOR: "1" },
  });
  const lines: string[] = [];
  const stderr: string[] = [];
  child.stderr!.on("data", (d) => stderr.push(String(d)));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`echo server (${runtime}) did not start: ${stderr.join("")}`));
    }, 20_000);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`echo server (${runtime}) exited with ${code}: ${stderr.join("")}`));
    });
    createInterface({ input: child.stdout! }).on("line", (line) => {
      lines.push(line);
      const m = line.match(/^listening \w+ \S+:(\d+)$/);
      if (m) {
        clearTimeout(timer);
        resolve({
          port: Number(m[1]),
          lines,
          stderr,
          stop: () => {
            child.kill("SIGTERM");
            return exited;
          },
        });
      }
    });
  });
}

/** Runs a script to completion under `runtime`; resolves with its exit code and output. */
export function runScript(
  runtime: RuntimeName,
  script: string,
  args: string[],
  timeoutMs = 30_000,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const [cmd, argv] = scriptArgs(runtime, script, args);
  const child = spawn(cmd, argv, {
    cwd: root,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, NO_COLOR: "1" },
  });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d) => (stdout += d));
  child.stderr!.on("data", (d) => (stderr += d));
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    // "close", not "exit": it fires once stdout and stderr are drained, so no output is missed.
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
