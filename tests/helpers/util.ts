// Small test utilities shared by the suites (node:test + node:assert/strict run under deno test and bun test).
import assert from "node:assert/strict";
import { scheduler } from "../../src/scheduler.ts";
import { liveSessionCount } from "../../src/session.ts";
import { liveEndpointCount } from "../../src/endpoint_core.ts";

/** Waits until `cond()` is truthy, polling every 5 ms; fails after `timeoutMs`. */
export async function waitFor(cond: () => unknown, timeoutMs = 5_000, what = "condition"): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(5);
  }
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Bytes of a string. */
export function bytes(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

/** Text of bytes. */
export function text(data: Uint8Array): string {
  return new TextDecoder().decode(data);
}

/** A deterministic pattern of `n` bytes starting at `seed`, for integrity checks. */
export function pattern(n: number, seed = 0): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 31 + seed) & 0xff;
  return out;
}

/** Rejects with a clear message if `p` does not settle within `ms`. */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout>;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Leak check for after-hooks: every session must be closed and gone from the shared timer. A test that
 * forgets to close a session, server or client fails here (on both runtimes).
 */
export function assertNoLeaks(): Promise<void> {
  return checkLeaks(3_000);
}

/** The leak check with a chosen grace period, in ms. */
export async function checkLeaks(graceMs: number): Promise<void> {
  const clean = () => liveSessionCount() === 0 && scheduler.size === 0 && liveEndpointCount() === 0;
  await waitFor(clean, graceMs, "sessions to close").catch(() => {});
  assert.equal(liveEndpointCount(), 0, `${liveEndpointCount()} servers/clients still running: one was not closed`);
  assert.equal(liveSessionCount(), 0, `${liveSessionCount()} sessions still open: a session was not closed`);
  assert.equal(scheduler.size, 0, `${scheduler.size} timer entries still scheduled`);
}

/** Collects unhandled rejections while `fn` runs (works on Deno and Bun via globalThis events / process). */
export async function collectUnhandled(fn: () => Promise<void>): Promise<unknown[]> {
  const seen: unknown[] = [];
  const onEvent = (e: Event) => {
    seen.push((e as PromiseRejectionEvent).reason);
    e.preventDefault();
  };
  const onProcess = (reason: unknown) => seen.push(reason);
  const proc = (globalThis as {
    process?: { on(e: string, f: (r: unknown) => void): void; off(e: string, f: (r: unknown) => void): void };
  }).process;
  globalThis.addEventListener?.("unhandledrejection", onEvent);
  proc?.on("unhandledRejection", onProcess);
  try {
    await fn();
    await sleep(50);
  } finally {
    globalThis.removeEventListener?.("unhandledrejection", onEvent);
    proc?.off("unhandledRejection", onProcess);
  }
  return seen;
}
