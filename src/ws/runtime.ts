/**
 * Picks the WebSocket adapter for the runtime the code runs on, loaded lazily like the TCP one.
 *
 * @module
 */
import { detectRuntime } from "../runtime/select.ts";
import type { WsRuntime } from "./types.ts";

let cached: Promise<WsRuntime> | undefined;

/** The WebSocket adapter of the current runtime (loaded once). */
export function wsRuntime(): Promise<WsRuntime> {
  cached ??= detectRuntime() === "bun"
    ? import("../runtime/bun_ws.ts").then((m) => m.bunWsRuntime)
    : import("../runtime/deno_ws.ts").then((m) => m.denoWsRuntime);
  return cached;
}
