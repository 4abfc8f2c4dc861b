/**
 * Picks the adapter for the runtime the code is running on. Adapters are loaded lazily, so a Bun process
 * never evaluates the Deno adapter and vice versa.
 *
 * @module
 */
import type { RuntimeAdapter } from "../transport.ts";

/** The runtime this process runs on. */
export type RuntimeName = "deno" | "bun";

/** Detects the current runtime, or throws when neither Deno nor Bun is running the code. */
export function detectRuntime(): RuntimeName {
  if (onJavaScriptCore()) return "bun";
  const g = globalThis as Record<string, unknown>;
  if (typeof g.Deno === "object" && g.Deno !== null) return "deno";
  throw new Error("getty runs on Deno or Bun; neither runtime was detected");
}

/**
 * Whether the engine is JavaScriptCore (Bun), whose costs differ from V8's where it matters for the hot path
 * (views of typed arrays: see codec/package_bytes.ts). False outside Bun, never throws.
 */
export function onJavaScriptCore(): boolean {
  const g = globalThis as Record<string, unknown>;
  return typeof g.Bun === "object" && g.Bun !== null;
}

let cached: Promise<RuntimeAdapter> | undefined;

/** The adapter for the current runtime (loaded once). */
export function runtimeAdapter(): Promise<RuntimeAdapter> {
  cached ??= detectRuntime() === "bun"
    ? import("./bun.ts").then((m) => m.bunAdapter)
    : import("./deno.ts").then((m) => m.denoAdapter);
  return cached;
}
